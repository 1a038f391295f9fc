"""Prompt templates: Jinja2 in its immutable sandbox, strict about undefined names, bounded in size.

A template renders over the function's validated input: each top-level field is a variable, and
``input`` is the whole object (``{{ input | json }}``). The sandbox forbids attribute access to
internals and mutating calls; an undefined name is an error, not an empty string; nothing is
HTML-escaped (prompts are not HTML). The rendered text is bounded: past ``limit`` characters the
request is refused (400) before any model is called.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from interlace.core.errors import RequestError

if TYPE_CHECKING:
    from jinja2 import Template

__all__ = ["PromptTemplate", "compile_template"]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
    )
    env.filters["json"] = _json
    return env


def compile_template(source: str) -> Template:
    """The compiled template; ``ValueError`` naming the line when it does not compile."""
    try:
        return _environment().from_string(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" (template line {line})" if line else ""
        raise ValueError(f"{exc.message or exc}{where}") from None


class PromptTemplate:
    """A compiled template with its rendered-size limit."""

    __slots__ = ("_template", "limit", "source")

    def __init__(self, source: str, *, limit: int) -> None:
        self.source = source
        self.limit = limit
        self._template = compile_template(source)

    def render(self, data: dict[str, Any]) -> str:
        """The prompt for ``data``; a 400 when a name is undefined, a rule is broken or it is too long."""
        try:
            text = self._template.render({**data, "input": data})
        except SecurityError as exc:
            raise RequestError(
                f"The prompt template is not allowed to do that: {exc}", code="template_error"
            ) from None
        except TemplateError as exc:
            raise RequestError(
                f"The prompt template cannot be rendered for this input: {exc.message or exc}",
                code="template_error",
            ) from None
        if len(text) > self.limit:
            raise RequestError(
                f"The rendered prompt has {len(text)} characters, more than the function's "
                f"max_prompt_chars={self.limit}.",
                code="prompt_too_large",
            )
        return text
