"""Consumer side of the event bus: topology, a Celery worker per service, dead letters.

Add `"blogbus.bus"` (and `"blogbus.inbox"`) to INSTALLED_APPS for the
`bus_declare`, `bus_consume` and `bus_replay_dead` management commands.
See libs/README.md ("Consuming events with a Celery worker") and
docs/adr/0002-celery-consumers.md.
"""
