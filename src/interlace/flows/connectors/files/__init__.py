"""Files: a watched directory of JSON lines or CSV (source) and an fsync'd JSON-lines file (sink)."""

__all__: list[str] = []
