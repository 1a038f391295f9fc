"""HTTP webhooks: ``POST /v1/flows/{name}/events`` into the flow inbox table, consumed with leases."""

__all__: list[str] = []
