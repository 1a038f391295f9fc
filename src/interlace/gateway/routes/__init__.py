"""Route handlers, one module per API family."""

__all__: list[str] = []
