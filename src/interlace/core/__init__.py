"""The core: canonical operations, the error tree and the ports adapters implement.

It imports no adapter, no web framework and no broker client.
"""

__all__: list[str] = []
