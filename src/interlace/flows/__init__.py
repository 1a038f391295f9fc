"""Event-driven flows: ``source → steps → sink``, acknowledged end to end."""

__all__: list[str] = []
