"""Shared by both translation directions: malformed input becomes an Interlace error naming the field."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from interlace.core.errors import InterlaceError, RequestError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__: list[str] = []

JSON = dict[str, Any]
ErrorClass = type[InterlaceError]

_CHAT_ID_PREFIX: Final = "chatcmpl-"


_JSON_KINDS: Final = (
    (bool, "boolean"),
    (int | float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def _kind(value: Any) -> str:
    """The JSON type name of a decoded value, for error messages."""
    if value is None:
        return "null"
    return next((name for kind, name in _JSON_KINDS if isinstance(value, kind)), type(value).__name__)


def _invalid(where: str, expected: str, value: Any, error: ErrorClass) -> InterlaceError:
    if value is None:
        return error(f"`{where}` is required.", param=where)
    return error(f"`{where}` must be {expected}, got {_kind(value)}.", param=where)


def _as_object(value: Any, where: str, error: ErrorClass = RequestError) -> JSON:
    if not isinstance(value, dict):
        raise _invalid(where, "an object", value, error)
    return value


def _as_array(value: Any, where: str, error: ErrorClass = RequestError) -> list[Any]:
    if not isinstance(value, list):
        raise _invalid(where, "an array", value, error)
    return value


def _as_string(value: Any, where: str, error: ErrorClass = RequestError) -> str:
    if not isinstance(value, str):
        raise _invalid(where, "a string", value, error)
    return value


def _as_int(value: Any, where: str, *, minimum: int = 0, error: ErrorClass = RequestError) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(where, "an integer", value, error)
    if value < minimum:
        raise error(f"`{where}` must be at least {minimum}, got {value}.", param=where)
    return value


def _as_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(where, "a number", value, RequestError)
    return float(value)


def _body(value: Any, what: str, error: ErrorClass = RequestError) -> JSON:
    if not isinstance(value, dict):
        raise error(f"The {what} must be a JSON object, got {_kind(value)}.")
    return value


def _block_type(block: JSON, where: str, error: ErrorClass = RequestError) -> str:
    return _as_string(block.get("type"), f"{where}.type", error)


def _count(usage: Mapping[str, Any], key: str) -> int:
    value = usage.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _chat_id(message_id: str) -> str:
    """``msg_X`` → ``chatcmpl-X`` (from_anthropic maps back), so ids survive a round trip."""
    if message_id.startswith(_CHAT_ID_PREFIX):
        return message_id
    return _CHAT_ID_PREFIX + message_id.removeprefix("msg_")


def _text_blocks(text: str) -> list[JSON]:
    return [{"type": "text", "text": text}] if text.strip() else []


def _encode_arguments(arguments: Any) -> str:
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
