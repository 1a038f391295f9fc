"""The ``interlace`` command line."""

__all__: list[str] = []
