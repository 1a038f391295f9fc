"""The HTTP gateway: ASGI app, routes per API family, SSE, error encoding."""

__all__: list[str] = []
