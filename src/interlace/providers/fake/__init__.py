"""A deterministic in-process provider with configurable latency and faults, for tests and drills."""

from interlace.providers.fake.provider import FakeProvider

__all__ = ["FakeProvider"]
