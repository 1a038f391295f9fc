"""Virtual API keys: issued once, stored as a hash, verified from memory, scoped and limited.

- :mod:`~interlace.security.keys.model`: the key, its format (``ik_<id>_<secret>``) and hashing;
- :mod:`~interlace.security.keys.spec`: what a caller asks for (validated, errors naming the field);
- :mod:`~interlace.security.keys.store`: the ``api_keys`` rows (admin API, CLI, cache refreshes);
- :mod:`~interlace.security.keys.cache`: every key in memory, refreshed in the background.
"""

from interlace.security.keys.cache import CachedKey, KeyCache
from interlace.security.keys.model import ApiKey, IssuedKey, format_key, parse_duration, parse_key
from interlace.security.keys.spec import KeyLimits, KeySpec, RotateSpec
from interlace.security.keys.store import KeyStore

__all__ = [
    "ApiKey",
    "CachedKey",
    "IssuedKey",
    "KeyCache",
    "KeyLimits",
    "KeySpec",
    "KeyStore",
    "RotateSpec",
    "format_key",
    "parse_duration",
    "parse_key",
]
