"""The ``functions:`` section's written forms, turned into the one the schema validates.

``functions:`` may be a list of definitions, a mapping (``include:``, ``embedding_model:`` and
``definitions:`` keys, every other key a function named by it), and ``include:`` globs name files
(relative to the configuration file) each holding one definition, a list, or a mapping by name. All of
it becomes ``functions.definitions``, a list; every moved value keeps the line — and, for an included
file, the file — it was written at, so validation errors still read ``file:line``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from interlace.core.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from interlace.config.schema import Config

__all__ = ["Located", "function_model_errors", "gather_functions"]

Path_ = tuple[str | int, ...]
_SECTION_KEYS = frozenset({"include", "definitions", "embedding_model"})
_ROOT: Path_ = ("functions",)
_DEFS: Path_ = ("functions", "definitions")


class Located(Protocol):
    """Plain data's lines (and files, for included parts) by path, and the problems found."""

    filename: str
    lines: dict[Path_, int]
    files: dict[Path_, str]
    errors: list[ConfigError]


def _move(located: Located, old: Path_, new: Path_, lines: dict[Path_, int], file: str | None) -> None:
    for path, line in list(lines.items()):
        if path[: len(old)] == old:
            target = new + path[len(old) :]
            located.lines[target] = line
            if file is not None:
                located.files[target] = file


def _definitions(value: Any, at: Path_) -> list[tuple[Path_, dict[str, Any]]]:
    """``(path, definition)`` of a file's or section's definitions (a list, a mapping by name, one)."""
    if isinstance(value, list):
        return [((*at, index), item) for index, item in enumerate(value)]
    if isinstance(value, dict):
        if "name" in value and "model" in value:
            return [(at, value)]
        found = []
        for name, item in value.items():
            if isinstance(item, dict):
                found.append(((*at, name), {"name": name, **item} if "name" not in item else item))
            else:
                found.append(((*at, name), item))
        return found
    return [(at, value)]


def gather_functions(
    plain: dict[str, Any],
    located: Located,
    base: Path,
    load: Callable[[Path], tuple[Any, Located]],
) -> None:
    """Rewrite ``plain["functions"]`` into ``{include, definitions: [...], ...}`` (in place)."""
    section = plain.get("functions")
    if section is None:
        return
    gathered: list[Any] = []
    lines = dict(located.lines)
    if isinstance(section, dict):
        for path, item in _definitions(section.get("definitions") or [], (*_ROOT, "definitions")):
            _move(located, path, (*_DEFS, len(gathered)), lines, None)
            gathered.append(item)
        named = {k: v for k, v in section.items() if k not in _SECTION_KEYS}
        for path, item in _definitions(named, _ROOT):
            _move(located, path, (*_DEFS, len(gathered)), lines, None)
            gathered.append(item)
        out = {k: v for k, v in section.items() if k in _SECTION_KEYS}
        includes = section.get("include") or []
    elif isinstance(section, list):
        for path, item in _definitions(section, _ROOT):
            _move(located, path, (*_DEFS, len(gathered)), lines, None)
            gathered.append(item)
        out, includes = {}, []
    else:
        return  # the schema names the wrong type
    for pattern in includes if isinstance(includes, list) else []:
        if isinstance(pattern, str):
            _include(pattern, gathered, located, base, load)
    out["definitions"] = gathered
    plain["functions"] = out


def _include(
    pattern: str,
    gathered: list[Any],
    located: Located,
    base: Path,
    load: Callable[[Path], tuple[Any, Located]],
) -> None:
    """Append the definitions of the files ``pattern`` matches, keeping their files and lines."""
    matched = sorted(base.glob(pattern))
    if not matched:
        located.errors.append(
            ConfigError(
                f"functions.include '{pattern}' matches no file (relative to {base})",
                file=located.filename,
                line=located.lines.get((*_ROOT, "include")),
            )
        )
    for file in matched:
        try:
            value, part = load(file)
        except ConfigError as exc:
            located.errors.append(exc)
            continue
        located.errors.extend(part.errors)
        for path, item in _definitions(value, ()):
            target = (*_DEFS, len(gathered))
            _move(located, path, target, part.lines, str(file))
            located.files[target] = str(file)
            located.lines.setdefault(target, part.lines.get(path, 1))
            gathered.append(item)


def function_model_errors(config: Config, located: Located) -> list[ConfigError]:
    """Each function (and confidence fallback) naming a model alias that is not configured."""
    known = set(config.models)
    problems: list[ConfigError] = []
    for index, definition in enumerate(config.functions.definitions):
        at: Path_ = (*_DEFS, index)
        for key, alias in (
            ("model", definition.model),
            ("fallback_model", definition.confidence.fallback_model),
        ):
            if alias is None or alias in known:
                continue
            path = (*at, key) if key == "model" else (*at, "confidence", key)
            problems.append(
                ConfigError(
                    f"function '{definition.name}' {key} '{alias}' is not a model — add it under models: "
                    f"or fix the name (models: {', '.join(sorted(known)) or 'none'})",
                    file=located.files.get(at, located.filename),
                    line=located.lines.get(path, located.lines.get(at)),
                )
            )
    return problems
