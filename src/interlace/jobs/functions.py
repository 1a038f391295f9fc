"""AI functions as jobs: ``{"operation": "function", "request": {"name", "version"?, "input"}}``.

The request mirrors ``POST /v1/functions/{name}`` (``/versions/{version}``): ``input`` is the body
that endpoint takes, checked against the function's input schema when the job is submitted (a 400
naming the field, ``request.input.customer.email``). The worker runs it through
:meth:`~interlace.functions.runner.FunctionRunner.run`, which admits the call itself (endpoint family
``functions``), so this executor is *self-gated*: the worker hands it the routing context and the
recording, and it settles the admission the runner reports through ``on_admit``. The stored result is
``FunctionResult.to_json()``; an answer that stays invalid after the re-asks (``function_output_invalid``)
fails the job at once with that error body: another attempt would only spend tokens again.

A batch line's ``url`` may name a function (``/v1/functions/NAME`` or
``/v1/functions/NAME/versions/VERSION``) with the input object as its ``body``, as the sync endpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import Field

from interlace.config._base import Strict
from interlace.core.errors import FunctionNotFound, RequestError
from interlace.functions.runner import ENDPOINT, check_input
from interlace.gateway.bodies import validate

if TYPE_CHECKING:
    from interlace.core.principal import Principal
    from interlace.functions.runner import FunctionRunner
    from interlace.gateway.recording import Recording
    from interlace.observability.record import Usage
    from interlace.routing.context import RouteContext
    from interlace.security.gate import Admission

__all__ = ["FunctionCall", "FunctionExecutor", "FunctionJobRequest"]

_URL: Final = re.compile(r"^/v1/functions/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?$")


class FunctionJobRequest(Strict):
    """The ``request`` of a function job."""

    name: str = Field(min_length=1, description="The function's name, as in POST /v1/functions/{name}.")
    version: str | None = Field(None, min_length=1, description="A version; the latest when omitted.")
    input: dict[str, Any] = Field(description="The function's input object, as its sync endpoint takes.")


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """A decoded function job: which version of which function, on what input."""

    name: str
    version: str
    input: dict[str, Any]
    model: str
    """The function's model alias (what the job list shows as ``model``)."""


@dataclass(slots=True)
class FunctionExecutor:
    """Runs function jobs through a :class:`~interlace.functions.runner.FunctionRunner`."""

    runner: FunctionRunner
    name: str = "function"
    endpoint: str = ENDPOINT
    path: str = "/v1/functions/{name}"
    gated: Literal[False] = False

    def decode(self, body: dict[str, Any]) -> FunctionCall:
        parsed = validate(FunctionJobRequest, body)
        try:
            definition = self.runner.registry.get(parsed.name, parsed.version)
        except FunctionNotFound as exc:
            raise RequestError(
                exc.message, param="version" if parsed.version else "name", code="function_not_found"
            ) from None
        try:
            check_input(definition, parsed.input)
        except RequestError as exc:
            named = exc.with_message(exc.message)
            named.param = _dotted("input", exc.param or "")
            raise named from None
        return FunctionCall(
            name=definition.name,
            version=definition.version,
            input=parsed.input,
            model=definition.config.model,
        )

    def request_for(self, url: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The job request of a batch line to ``url`` (its body: the input), if ``url`` is a function's."""
        found = _URL.match(url)
        if found is None:
            return None
        request: dict[str, Any] = {"name": found["name"], "input": body}
        if found["version"] is not None:
            request["version"] = found["version"]
        return request

    async def execute(
        self, principal: Principal, ctx: RouteContext, rec: Recording, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Run the call (the runner admits it); the answer ``POST /v1/functions/{name}`` would give."""
        call = self.decode(body)

        def admitted(admission: Admission[Any]) -> None:
            rec.admission = admission  # settled once the attempt is recorded

        def spent(usage: Usage) -> None:
            rec.usage = usage  # a call that fails after re-asks has still spent tokens

        result = await self.runner.run(
            principal, call.name, call.version, call.input, ctx=ctx, on_admit=admitted, on_usage=spent
        )
        rec.confidence = result.confidence
        return result.to_json()


def _dotted(prefix: str, pointer: str) -> str:
    """A JSON pointer (``/items/0/name``) as the jobs API names fields (``input.items[0].name``)."""
    out = prefix
    for part in pointer.split("/")[1:] if pointer.startswith("/") else ([pointer] if pointer else []):
        token = part.replace("~1", "/").replace("~0", "~")
        out += f"[{token}]" if token.isdigit() else f".{token}"
    return out
