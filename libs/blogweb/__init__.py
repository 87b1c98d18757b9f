"""The HTTP contract's plumbing, for every component that serves it:
request ids, the JSON access log, JSON errors, the body limit, strict string
fields, millisecond timestamps, pagination and probes."""
