"""The decoder of Postgres's built-in ``pgoutput`` logical replication protocol (version 1).

Each logical decoding row holds one binary protocol message; :class:`PgOutputDecoder` turns them into
typed values (:class:`Begin`, :class:`Commit`, :class:`Relation`, :class:`Insert`, :class:`Update`,
:class:`Delete`, :class:`Truncate`, :class:`TypeInfo`, :class:`Origin`, :class:`LogicalMessage`) and
keeps the relations it has seen, so a change's tuple maps to ``{column: value}``. Values arrive in
Postgres's text output format and are converted to JSON by the column's type OID
(:func:`text_to_json`): booleans, integers and floats become numbers, ``json``/``jsonb`` are parsed,
``bytea`` becomes base64, one-dimensional arrays of those become lists; everything else (``numeric``
— kept exact —, timestamps, dates, uuids, text …) stays the text Postgres gives. A TOASTed column
that an update did not change is left out of ``new``.

Layout reference: "Logical Replication Message Formats" in the Postgres manual. Integers are
big-endian; strings are NUL-terminated; timestamps are microseconds since 2000-01-01 UTC.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "Begin",
    "Column",
    "Commit",
    "Delete",
    "Insert",
    "LogicalMessage",
    "Origin",
    "PgOutputDecoder",
    "PgOutputError",
    "Relation",
    "Truncate",
    "TypeInfo",
    "Update",
    "format_lsn",
    "text_to_json",
]

_EPOCH_2000 = datetime(2000, 1, 1, tzinfo=UTC)
_BOOL, _BYTEA, _INT8, _INT2, _INT4, _OID, _JSON, _FLOAT4, _FLOAT8, _JSONB = (
    16, 17, 20, 21, 23, 26, 114, 700, 701, 3802,
)  # fmt: skip
_INTEGER_TYPES = frozenset({_INT8, _INT2, _INT4, _OID})
_FLOAT_TYPES = frozenset({_FLOAT4, _FLOAT8})
_ARRAY_ELEMENTS = {
    1000: _BOOL, 1001: _BYTEA, 1005: _INT2, 1007: _INT4, 1016: _INT8, 1021: _FLOAT4, 1022: _FLOAT8,
    199: _JSON, 3807: _JSONB, 1009: 25, 1015: 25, 2951: 25, 1231: 1700, 1185: 1184, 1115: 1114,
}  # fmt: skip


class PgOutputError(ValueError):
    """A message that is not valid pgoutput (protocol version 1)."""


def format_lsn(lsn: int) -> str:
    """An LSN in Postgres's text form (``16/B374D848``)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def _timestamp(micros: int) -> datetime:
    return _EPOCH_2000 + timedelta(microseconds=micros)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type_oid: int
    type_modifier: int
    is_key: bool


@dataclass(frozen=True, slots=True)
class Begin:
    final_lsn: int
    commit_ts: datetime
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    flags: int
    commit_lsn: int
    end_lsn: int
    commit_ts: datetime


@dataclass(frozen=True, slots=True)
class Relation:
    oid: int
    namespace: str
    name: str
    replica_identity: str
    columns: tuple[Column, ...]

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass(frozen=True, slots=True)
class Insert:
    relation: Relation
    new: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Update:
    relation: Relation
    new: dict[str, Any]
    old: dict[str, Any] | None = None
    """The whole old row (``REPLICA IDENTITY FULL``), else ``None``."""
    key: dict[str, Any] | None = None
    """The old key columns, sent only when the key changed."""


@dataclass(frozen=True, slots=True)
class Delete:
    relation: Relation
    old: dict[str, Any] | None = None
    key: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Truncate:
    relations: tuple[Relation, ...]
    cascade: bool
    restart_identity: bool


@dataclass(frozen=True, slots=True)
class TypeInfo:
    oid: int
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Origin:
    commit_lsn: int
    name: str


@dataclass(frozen=True, slots=True)
class LogicalMessage:
    transactional: bool
    lsn: int
    prefix: str
    content: bytes


Decoded = Begin | Commit | Relation | Insert | Update | Delete | Truncate | TypeInfo | Origin | LogicalMessage


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            msg = f"message truncated at byte {self.pos} (needs {size} more)"
            raise PgOutputError(msg)
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def int8(self) -> int:
        return int(self.take(1)[0])

    def int16(self) -> int:
        value: int = struct.unpack(">h", self.take(2))[0]
        return value

    def int32(self) -> int:
        value: int = struct.unpack(">i", self.take(4))[0]
        return value

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def int64(self) -> int:
        value: int = struct.unpack(">q", self.take(8))[0]
        return value

    def string(self) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise PgOutputError(f"unterminated string at byte {self.pos}")
        text = self.data[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return text


class PgOutputDecoder:
    """Decodes pgoutput messages; remembers relations (and custom types) across calls."""

    def __init__(self) -> None:
        self.relations: dict[int, Relation] = {}
        self.types: dict[int, TypeInfo] = {}

    def decode(self, data: bytes) -> Decoded:
        reader = _Reader(bytes(data))
        kind = reader.take(1)
        handler = self._handlers.get(kind)
        if handler is None:
            raise PgOutputError(f"unknown pgoutput message type {kind!r}")
        return handler(self, reader)

    def _begin(self, r: _Reader) -> Begin:
        return Begin(final_lsn=r.int64(), commit_ts=_timestamp(r.int64()), xid=r.uint32())

    def _commit(self, r: _Reader) -> Commit:
        return Commit(
            flags=r.int8(), commit_lsn=r.int64(), end_lsn=r.int64(), commit_ts=_timestamp(r.int64())
        )

    def _relation(self, r: _Reader) -> Relation:
        oid, namespace, name = r.uint32(), r.string(), r.string()
        identity = chr(r.int8())
        columns = []
        for _ in range(r.int16()):
            flags, column_name = r.int8(), r.string()
            columns.append(Column(column_name, r.uint32(), r.int32(), is_key=bool(flags & 1)))
        relation = Relation(oid, namespace or "pg_catalog", name, identity, tuple(columns))
        self.relations[oid] = relation
        return relation

    def _relation_of(self, r: _Reader) -> Relation:
        oid = r.uint32()
        relation = self.relations.get(oid)
        if relation is None:
            raise PgOutputError(f"change for relation {oid} before its Relation message")
        return relation

    def _tuple(self, r: _Reader, relation: Relation) -> dict[str, Any]:
        count = r.int16()
        if count != len(relation.columns):
            raise PgOutputError(
                f"{relation.qualified_name}: tuple has {count} columns, relation has {len(relation.columns)}"
            )
        row: dict[str, Any] = {}
        for column in relation.columns:
            kind = r.take(1)
            if kind == b"n":
                row[column.name] = None
            elif kind == b"u":
                continue  # unchanged TOAST value: not sent
            elif kind in (b"t", b"b"):
                raw = r.take(r.int32())
                row[column.name] = (
                    text_to_json(raw.decode("utf-8"), column.type_oid)
                    if kind == b"t"
                    else base64.b64encode(raw).decode("ascii")
                )
            else:
                raise PgOutputError(f"unknown tuple column kind {kind!r}")
        return row

    def _insert(self, r: _Reader) -> Insert:
        relation = self._relation_of(r)
        if r.take(1) != b"N":
            raise PgOutputError("insert without a new tuple")
        return Insert(relation, self._tuple(r, relation))

    def _update(self, r: _Reader) -> Update:
        relation = self._relation_of(r)
        old = key = None
        marker = r.take(1)
        if marker == b"O":
            old = self._tuple(r, relation)
            marker = r.take(1)
        elif marker == b"K":
            key = _key_only(self._tuple(r, relation), relation)
            marker = r.take(1)
        if marker != b"N":
            raise PgOutputError("update without a new tuple")
        return Update(relation, self._tuple(r, relation), old=old, key=key)

    def _delete(self, r: _Reader) -> Delete:
        relation = self._relation_of(r)
        marker = r.take(1)
        if marker == b"O":
            return Delete(relation, old=self._tuple(r, relation))
        if marker == b"K":
            return Delete(relation, key=_key_only(self._tuple(r, relation), relation))
        raise PgOutputError("delete without an old tuple or key")

    def _truncate(self, r: _Reader) -> Truncate:
        count, options = r.int32(), r.int8()
        relations = tuple(
            self.relations[oid] for oid in (r.uint32() for _ in range(count)) if oid in self.relations
        )
        return Truncate(relations, cascade=bool(options & 1), restart_identity=bool(options & 2))

    def _type(self, r: _Reader) -> TypeInfo:
        info = TypeInfo(oid=r.uint32(), namespace=r.string(), name=r.string())
        self.types[info.oid] = info
        return info

    def _origin(self, r: _Reader) -> Origin:
        return Origin(commit_lsn=r.int64(), name=r.string())

    def _message(self, r: _Reader) -> LogicalMessage:
        flags, lsn, prefix = r.int8(), r.int64(), r.string()
        return LogicalMessage(
            transactional=bool(flags & 1), lsn=lsn, prefix=prefix, content=r.take(r.int32())
        )

    _handlers: ClassVar[dict[bytes, Callable[[PgOutputDecoder, _Reader], Decoded]]] = {
        b"B": _begin,
        b"C": _commit,
        b"R": _relation,
        b"I": _insert,
        b"U": _update,
        b"D": _delete,
        b"T": _truncate,
        b"Y": _type,
        b"O": _origin,
        b"M": _message,
    }


def _key_only(row: dict[str, Any], relation: Relation) -> dict[str, Any]:
    return {c.name: row.get(c.name) for c in relation.columns if c.is_key}


def text_to_json(text: str, type_oid: int) -> Any:  # noqa: PLR0911 — one return per type family
    """One column value from Postgres's text output to a JSON value, by the column's type."""
    if type_oid in _INTEGER_TYPES:
        return int(text)
    if type_oid in _FLOAT_TYPES:
        value = float(text)
        return value if math.isfinite(value) else text  # NaN and ±Infinity are not JSON numbers
    if type_oid == _BOOL:
        return text == "t"
    if type_oid in (_JSON, _JSONB):
        return json.loads(text)
    if type_oid == _BYTEA:
        return base64.b64encode(bytes.fromhex(text[2:]) if text.startswith("\\x") else text.encode()).decode()
    element = _ARRAY_ELEMENTS.get(type_oid)
    if element is not None and text.startswith("{"):
        return [None if item is None else text_to_json(item, element) for item in _parse_array(text)]
    return text


def _parse_array(text: str) -> list[str | None]:
    """The items of a one-dimensional array literal (``{1,NULL,"a,b"}``); nested arrays stay text."""
    inner = text[1:-1]
    items: list[str | None] = []
    if not inner:
        return items
    i, n = 0, len(inner)
    while i <= n:
        if i < n and inner[i] == '"':
            i += 1
            chars: list[str] = []
            while inner[i] != '"':
                if inner[i] == "\\":
                    i += 1
                chars.append(inner[i])
                i += 1
            items.append("".join(chars))
            i += 2  # closing quote and the comma
        else:
            end = inner.find(",", i)
            end = n if end < 0 else end
            token = inner[i:end]
            items.append(None if token == "NULL" else token)  # noqa: S105 — not a password
            i = end + 1
    return items
