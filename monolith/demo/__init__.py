"""Demo tooling: loads a realistic data set into the monolith (``manage.py seed``).

Tooling, not business logic: it is the one place allowed to write both apps'
models directly, because it bulk-loads them.
"""
