"""Load ``interlace.yaml``: parse with line numbers, resolve ``${ENV}`` secrets, validate.

Every error is a :class:`ConfigError` whose text reads ``file:line: what is wrong — what to write``.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from interlace.config._function_tree import function_model_errors, gather_functions
from interlace.config.schema import Config
from interlace.core.errors import ConfigError

__all__ = ["SECRET_FIELDS", "ConfigErrors", "load_config", "parse_config"]

#: Fields that hold credentials: they must be ``${ENV_VAR}`` references, never plain text.
SECRET_FIELDS = frozenset({"api_key", "master_key", "admin_key", "hmac_key"})

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WHOLE_ENV_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")

Path_ = tuple[str | int, ...]


class ConfigErrors(ConfigError):
    """Several configuration problems at once; ``errors`` holds each, ``str()`` lists them all."""

    def __init__(self, errors: list[ConfigError]) -> None:
        first = errors[0]
        super().__init__("; ".join(e.message for e in errors), file=first.file, line=first.line)
        self.message = "\n".join(e.message for e in errors)
        self.errors = errors

    def __str__(self) -> str:
        return self.message


def load_config(path: str | Path, environ: typing.Mapping[str, str] | None = None) -> Config:
    """Read and validate a configuration file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "no such configuration file — pass an existing file with --config, "
            "or omit it to run the embedded default",
            file=str(file),
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the file ({exc.strerror})", file=str(file)) from None
    return parse_config(text, filename=str(file), environ=os.environ if environ is None else environ)


def parse_config(
    text: str, *, filename: str = "<config>", environ: typing.Mapping[str, str] | None = None
) -> Config:
    """Validate configuration text; ``environ`` resolves ``${ENV}`` references."""
    try:
        tree = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"YAML syntax error: {problem}", file=filename, line=line) from None
    if tree is None:
        tree = CommentedMap()
    if not isinstance(tree, CommentedMap):
        raise ConfigError(
            "the top level must be a mapping (server:, auth:, models:, …)", file=filename, line=1
        )

    resolver = _Resolver(filename, os.environ if environ is None else environ)
    plain = resolver.plain(tree, ())
    # functions: list/mapping forms and include: files, relative to this file (config._function_tree)
    gather_functions(plain, resolver, Path(filename).parent, lambda f: _load_part(f, resolver.env))
    if resolver.errors:
        raise ConfigErrors(resolver.errors)
    try:
        config = Config.model_validate(plain)
    except ValidationError as exc:
        raise ConfigErrors(
            [_explain(err, resolver.lines, filename, resolver.files) for err in exc.errors(include_url=False)]
        ) from None
    problems = function_model_errors(config, resolver)
    if problems:
        raise ConfigErrors(problems)
    return config


def _load_part(file: Path, env: typing.Mapping[str, str]) -> tuple[Any, _Resolver]:
    """An included file's plain data, with its own lines (``functions.include``)."""
    try:
        tree = YAML(typ="rt").load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the file ({exc.strerror})", file=str(file)) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or "invalid YAML"
        raise ConfigError(f"YAML syntax error: {problem}", file=str(file), line=line) from None
    part = _Resolver(str(file), env)
    return part.plain(tree, ()), part


class _Resolver:
    """Turns the YAML tree into plain data, noting each path's line and resolving ``${ENV}``."""

    def __init__(self, filename: str, env: typing.Mapping[str, str]) -> None:
        self.filename = filename
        self.env = env
        self.lines: dict[Path_, int] = {}
        self.files: dict[Path_, str] = {}
        """The file of a path that was written in an included file (``functions.include``)."""
        self.errors: list[ConfigError] = []

    def plain(self, node: Any, path: Path_) -> Any:
        if isinstance(node, CommentedMap):
            out: dict[str, Any] = {}
            for key, value in node.items():
                child = (*path, str(key))
                self.lines[child] = node.lc.key(key)[0] + 1
                out[str(key)] = self.plain(value, child)
            return out
        if isinstance(node, CommentedSeq):
            items: list[Any] = []
            for index, value in enumerate(node):
                child = (*path, index)
                self.lines[child] = node.lc.item(index)[0] + 1
                items.append(self.plain(value, child))
            return items
        if isinstance(node, str):
            return self.string(node, path)
        return node

    def string(self, value: str, path: Path_) -> str:
        line = _line_of(path, self.lines)
        field = path[-1] if path else ""
        if field in SECRET_FIELDS and not _WHOLE_ENV_REF.match(value.strip()):
            var = {
                "api_key": "OPENAI_API_KEY",
                "admin_key": "INTERLACE_ADMIN_KEY",
                "hmac_key": "INTERLACE_AUDIT_KEY",
            }.get(str(field), "INTERLACE_MASTER_KEY")
            self.errors.append(
                ConfigError(
                    f"'{field}' holds a plain-text secret — write `{field}: ${{{var}}}` "
                    f"and export {var} in the environment",
                    file=self.filename,
                    line=line,
                )
            )
            return value

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.env:
                self.errors.append(
                    ConfigError(
                        f"environment variable {name} is not set — export {name}=… before starting, "
                        f"or remove '{_dotted(path)}'",
                        file=self.filename,
                        line=line,
                    )
                )
                return ""
            return self.env[name]

        return _ENV_REF.sub(substitute, value)


def _explain(
    err: Any, lines: dict[Path_, int], filename: str, files: dict[Path_, str] | None = None
) -> ConfigError:
    tagged: Path_ = tuple(err["loc"])
    loc = _untagged(tagged, lines)
    line = _line_of(loc, lines)
    found = files or {}
    filename = next((found[loc[:end]] for end in range(len(loc), 0, -1) if loc[:end] in found), filename)
    where = _dotted(loc) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(tagged[:-1])
        guess = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean '{guess[0]}'?" if guess else f"allowed here: {', '.join(sorted(allowed))}"
        return ConfigError(f"unknown key '{where}' — {hint}", file=filename, line=line)
    if kind == "missing":
        return ConfigError(f"'{where}' is required — add it", file=filename, line=line)
    message = str(err["msg"]).removeprefix("Value error, ")
    return ConfigError(f"'{where}': {message}", file=filename, line=line)


def _untagged(loc: Path_, lines: dict[Path_, int]) -> Path_:
    """``loc`` without the tags a discriminated union adds (``flows.f.sink.files.path`` → ``….sink.path``).

    A part is a tag when the mapping it would be a key of was written with a ``type:`` key and the
    part itself was not written there.
    """
    out: list[str | int] = []
    dropped = False
    for index, part in enumerate(loc):
        here = (*out, part)
        last = index == len(loc) - 1
        if isinstance(part, str) and not (dropped or last) and here not in lines and (*out, "type") in lines:
            dropped = True
            continue
        dropped = False
        out.append(part)
    return tuple(out)


def _line_of(path: Path_, lines: dict[Path_, int]) -> int | None:
    for end in range(len(path), 0, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _allowed_keys(path: Path_) -> list[str]:
    """The keys the schema accepts at ``path`` (for 'did you mean' hints)."""
    annotation: Any = Config
    for part in path:
        annotation = _unwrap(annotation)
        tagged = _member(annotation, part)
        if tagged is not None:  # a discriminated union's member, named by its tag in the error location
            annotation = tagged
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif typing.get_origin(annotation) in {dict, list}:
            annotation = typing.get_args(annotation)[-1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _member(annotation: Any, tag: str | int) -> Any:
    """The member of a union on ``type`` whose tag is ``tag`` (flow sources, sinks, steps), or None."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) not in {typing.Union, types.UnionType}:
        return None
    for member in typing.get_args(annotation):
        field = getattr(member, "model_fields", {}).get("type")
        if field is not None and tag in typing.get_args(field.annotation):
            return member
    return None


def _unwrap(annotation: Any) -> Any:
    if typing.get_origin(annotation) in {typing.Union, types.UnionType}:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation
