"""The audit chain: the canonical form of an entry, its hash, and verification of a chain of entries.

An *entry* is a JSON object (see :mod:`interlace.security.audit.entry`) with a sequence number
``seq`` and the algorithm ``alg`` it is chained with. Its hash covers the previous entry's hash and
the entry itself::

    hash(n) = H(hash(n-1) ‖ canonical(entry n))        hash(0) = GENESIS ("0" * 64)

where ``canonical`` is JSON with keys sorted, no whitespace, UTF-8 — and no floats: an entry holds
only strings, integers, booleans, ``null``, lists and objects, so every JSON implementation writes
it byte for byte the same and an auditor can recompute a hash with any tool. ``H`` is

* ``hmac-sha256`` — HMAC-SHA256 with ``audit.hmac_key`` when one is configured. Someone who can
  write the database but does not hold the key cannot compute a valid hash: any edit, insertion or
  re-forged tail is detected at the first entry touched.
* ``sha256`` — plain SHA-256 otherwise. Accidental and naive tampering is detected, but a writer who
  rewrites an entry *and recomputes every later hash* produces a valid chain; only a head anchored
  outside the database (the head's ``seq`` and ``hash``, published or stored elsewhere) catches it.

Truncating the tail (deleting the newest entries) leaves a valid shorter chain: it is detected
against the chain-head row of the database (unless that is rewritten too) or an external anchor.

:class:`ChainVerifier` checks rows in their stored order, one at a time (it keeps one row of
lookahead and a bounded window of recent hashes), and names the first problem: ``edited`` (an entry
no longer matches its hash, or its link was re-forged), ``deleted`` (entries are missing),
``reordered`` (an entry is not at its place), ``inserted`` (an entry that is not part of the chain),
or ``unverifiable`` (a keyed entry and no key).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "ALG_HMAC",
    "ALG_SHA256",
    "GENESIS",
    "ChainProblem",
    "ChainRow",
    "ChainVerifier",
    "Verification",
    "canonical",
    "content_digest",
    "entry_hash",
    "link_hash",
    "verify_rows",
]

GENESIS: Final = "0" * 64
"""The previous hash of entry 1."""

ALG_HMAC: Final = "hmac-sha256"
ALG_SHA256: Final = "sha256"

ProblemKind = Literal["edited", "deleted", "reordered", "inserted", "unverifiable"]

_WINDOW = 4096
"""Recent hashes remembered to recognise an inserted run of entries."""


_LEAVES: Final = frozenset({str, int, bool, type(None)})
"""Types that hold no float (exactly these: a subclass is looked into)."""


def canonical(entry: dict[str, Any]) -> bytes:
    """The entry as canonical JSON: sorted keys, no whitespace, UTF-8; a float is a ``TypeError``."""
    _reject_floats(entry)
    return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)


def _reject_floats(value: Any) -> None:
    if isinstance(value, float):
        msg = f"an audit entry holds no floats (got {value!r}): write integers or strings"
        raise TypeError(msg)
    if isinstance(value, dict):
        items: Iterable[Any] = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return
    for item in items:
        if type(item) not in _LEAVES:
            _reject_floats(item)


def entry_hash(prev_hash: str, entry: dict[str, Any], key: bytes | None) -> str:
    """``H(prev_hash ‖ canonical(entry))`` as hex: HMAC-SHA256 with ``key``, else SHA-256."""
    return link_hash(prev_hash, canonical(entry), key)


def link_hash(prev_hash: str, canonical_entry: bytes, key: bytes | None) -> str:
    """``H(prev_hash ‖ canonical_entry)`` as hex, for an entry already in its canonical form."""
    message = prev_hash.encode("ascii") + canonical_entry
    if key is not None:
        return hmac.digest(key, message, "sha256").hex()
    return hashlib.sha256(message).hexdigest()


def content_digest(value: Any) -> str | None:
    """SHA-256 (hex) of request or answer content: a string's UTF-8 bytes, else its sorted-key JSON."""
    if value is None:
        return None
    data = value.encode() if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One stored entry: the entry as hashed, its link and its hash, and where it is stored."""

    entry: dict[str, Any]
    prev_hash: str
    hash: str
    position: int | None = None
    """The sequence number it is stored under (the database's key); ``None`` in a file."""

    @property
    def seq(self) -> int | None:
        value = self.entry.get("seq")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """The first place the chain is broken."""

    seq: int
    """The first sequence number that is wrong (the first missing one for ``deleted``)."""
    kind: ProblemKind
    reason: str


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of a verification."""

    checked: int
    """Entries read."""
    head_seq: int
    """The last entry verified in order (0 when none): anchor it outside the database."""
    head_hash: str
    problem: ChainProblem | None = None
    unkeyed: int = 0
    """Entries chained with plain SHA-256 before the first keyed one (written before a key was set)."""

    @property
    def ok(self) -> bool:
        return self.problem is None


class ChainVerifier:
    """Checks rows fed in their stored order; stops at the first problem (see the module's notes).

    ``start`` is the sequence number the rows must begin with (1: the whole chain, from
    :data:`GENESIS`); ``None`` takes the first row's number and link as given (an export that starts
    mid-chain). ``subset`` accepts gaps between increasing sequence numbers (a tenant's export): each
    entry is then checked against its own hash, and its link only when it follows its predecessor.
    """

    def __init__(self, key: bytes | None, *, start: int | None = 1, subset: bool = False) -> None:
        self._key = key
        self._subset = subset
        self._pending: ChainRow | None = None
        self._expected_seq: int | None = start
        self._expected_prev = GENESIS
        self._recent: OrderedDict[str, int] = OrderedDict()
        self._keyed_seen = False
        self.checked = 0
        self.unkeyed = 0
        self.problem: ChainProblem | None = None

    def feed(self, row: ChainRow) -> bool:
        """Take the next row; ``False`` once a problem was found (later rows are not needed)."""
        if self.problem is not None:
            return False
        self.checked += 1
        pending, self._pending = self._pending, row
        if pending is not None:
            self._check(pending, row)
        return self.problem is None

    def finish(self) -> Verification:
        """Check the last row and report."""
        pending, self._pending = self._pending, None
        if pending is not None and self.problem is None:
            self._check(pending, None)
        head_seq = (self._expected_seq or 1) - 1
        return Verification(
            checked=self.checked,
            head_seq=head_seq,
            head_hash=self._expected_prev if head_seq else GENESIS,
            problem=self.problem,
            unkeyed=self.unkeyed,
        )

    def _valid(self, row: ChainRow) -> bool | None:
        """Whether the row's hash matches its content; ``None`` when it cannot be checked."""
        alg = row.entry.get("alg")
        if alg == ALG_HMAC:
            if self._key is None:
                return None
            self._keyed_seen = True
        elif alg == ALG_SHA256:
            if self._keyed_seen:  # a downgrade: every entry after a keyed one is keyed
                return False
        else:
            return False
        try:
            computed = entry_hash(row.prev_hash, row.entry, self._key if alg == ALG_HMAC else None)
        except (TypeError, orjson.JSONEncodeError, UnicodeEncodeError):
            return False
        return hmac.compare_digest(computed, row.hash)

    def _check(self, row: ChainRow, after: ChainRow | None) -> None:
        seq = row.seq
        if self._expected_seq is None:  # the first row anchors an export that starts mid-chain
            self._expected_seq = seq if seq is not None and seq > 1 else 1
            if self._expected_seq != 1:
                self._expected_prev = row.prev_hash
        if self._subset and seq is not None and seq > self._expected_seq:
            self._expected_seq, self._expected_prev = seq, row.prev_hash
        expected, prev = self._expected_seq, self._expected_prev
        valid = self._valid(row)
        if valid is None:
            self._fail(expected, "unverifiable", f"entry {seq} is keyed ({ALG_HMAC}): set the audit key")
            return
        placed = seq == expected and row.position in {None, expected}
        if valid and placed and hmac.compare_digest(row.prev_hash, prev):
            self._accept(row, expected)
            return
        self._classify(row, after, expected, valid=valid)

    def _accept(self, row: ChainRow, seq: int) -> None:
        if row.entry.get("alg") == ALG_SHA256:
            self.unkeyed += 1
        self._recent[row.hash] = seq
        if len(self._recent) > _WINDOW:
            self._recent.popitem(last=False)
        self._expected_seq, self._expected_prev = seq + 1, row.hash

    def _fail(self, seq: int, kind: ProblemKind, reason: str) -> None:
        self.problem = ChainProblem(seq, kind, reason)

    def _classify(self, row: ChainRow, after: ChainRow | None, expected: int, *, valid: bool) -> None:
        seq, prev = row.seq, self._expected_prev
        resumes = after is not None and after.seq == expected and after.prev_hash == prev
        if valid and seq is not None and seq < expected and row.hash in self._recent:
            self._fail(expected, "inserted", f"entry {seq} appears again at {expected}")
        elif valid and row.prev_hash in self._recent and self._recent[row.prev_hash] != expected - 1:
            first = self._recent[row.prev_hash] + 1
            self._fail(
                first,
                "inserted",
                f"entry {seq} links to entry {first - 1}: the entries between were inserted",
            )
        elif (
            valid
            and seq is not None
            and seq != expected
            and (
                (after is not None and after.seq == expected)
                or (row.position is not None and row.position != seq)
            )
        ):
            self._fail(expected, "reordered", f"entry {seq} is stored where entry {expected} belongs")
        elif resumes:
            self._fail(expected, "inserted", f"the entry at {expected} is not part of the chain")
        elif not valid:
            self._fail(expected, "edited", f"entry {expected} does not match its hash: it was changed")
        elif seq is not None and seq > expected:
            missing = f"{expected}" if seq == expected + 1 else f"{expected}-{seq - 1}"
            self._fail(expected, "deleted", f"entries {missing} are missing (deleted, or moved)")
        elif seq is not None and seq < expected:
            self._fail(seq, "reordered", f"entry {seq} is stored after entry {expected - 1}")
        else:
            self._fail(
                expected,
                "edited",
                f"entry {expected} does not link to entry {expected - 1}'s hash: one of them was re-hashed",
            )


def verify_rows(
    rows: Iterable[ChainRow], key: bytes | None, *, start: int | None = 1, subset: bool = False
) -> Verification:
    """Verify rows in their stored order (see :class:`ChainVerifier`)."""
    verifier = ChainVerifier(key, start=start, subset=subset)
    for row in rows:
        if not verifier.feed(row):
            break
    return verifier.finish()
