"""The flow event log: messages appended to the ``flow_events`` table (also the default dead letters)."""

__all__: list[str] = []
