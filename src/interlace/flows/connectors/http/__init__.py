"""HTTP endpoint sink: POST each message (or the batch) with retries and backoff."""

__all__: list[str] = []
