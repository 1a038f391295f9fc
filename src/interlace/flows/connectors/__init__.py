"""Flow connectors: one package per system, each with ``config.py`` and its ``source.py``/``sink.py``."""

__all__: list[str] = []
