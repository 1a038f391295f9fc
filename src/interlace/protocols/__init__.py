"""Wire-protocol translation between the canonical OpenAI Chat Completions shape and other protocols.

Everything below this package is pure: dicts in, dicts out, no I/O.
"""

__all__: list[str] = []
