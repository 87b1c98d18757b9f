"""The HTTP contract's plumbing, shared by the monolith and every service:
request ids, the JSON access log, JSON errors, the body limit, strict string
fields, millisecond timestamps, pagination, probes, outgoing service calls."""
