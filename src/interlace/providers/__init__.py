"""Outbound adapters to model upstreams; one package per protocol, each with the same shape."""

__all__: list[str] = []
