"""Steps without a model: ``map`` (JSONata), ``filter`` and ``route`` (CEL).

CEL sees ``payload``, ``key`` (``""`` when none), ``headers`` and ``id``. An expression that fails on
a message (a missing field, a wrong type) refuses that message for good
(:class:`~interlace.core.errors.MessageRejected`): the flow dead-letters it with the step's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interlace.core.errors import MessageRejected
from interlace.flows.engine import SINK_ATTRIBUTE
from interlace.flows.steps._calls import place

if TYPE_CHECKING:
    from collections.abc import Sequence

    from interlace.flows.message import Message
    from interlace.flows.services import FlowServices
    from interlace.flows.steps.config import FilterStepConfig, MapStepConfig, RouteStepConfig

__all__ = ["FilterStep", "MapStep", "RouteStep", "cel_value", "compile_cel"]


def compile_cel(source: str) -> Any:
    import cel  # noqa: PLC0415

    return cel.compile(source)


def cel_value(program: Any, message: Message, what: str) -> Any:
    """``program`` evaluated on ``message``; a failure is the message's, not the flow's."""
    activation = {
        "payload": message.payload,
        "key": message.key or "",
        "headers": message.headers,
        "id": message.id,
    }
    try:
        return program.execute(activation)
    except Exception as exc:  # the CEL runtime raises KeyError, TypeError, ValueError …
        msg = f"{what} '{program.source}' failed on message {message.id}: {type(exc).__name__}: {exc}"
        raise MessageRejected(msg) from None


class MapStep:
    def __init__(self, config: MapStepConfig, services: FlowServices | None = None) -> None:
        import jsonata  # type: ignore[import-untyped]  # noqa: PLC0415

        del services
        self.config = config
        self.name = config.name or "map"
        self._expression = jsonata.Jsonata(config.expression)

    async def process(self, message: Message) -> Sequence[Message]:
        try:
            value = self._expression.evaluate(message.payload)
        except Exception as exc:  # the evaluator raises its own JException
            msg = f"map '{self.config.expression}' failed on message {message.id}: {exc}"
            raise MessageRejected(msg) from None
        return [message.derive(place(message.payload, self.config.into, value))]


class FilterStep:
    def __init__(self, config: FilterStepConfig, services: FlowServices | None = None) -> None:
        del services
        self.name = config.name or "filter"
        self._program = compile_cel(config.expression)

    async def process(self, message: Message) -> Sequence[Message]:
        keep = cel_value(self._program, message, "filter")
        if not isinstance(keep, bool):
            msg = f"filter '{self._program.source}' gave {type(keep).__name__}, not a bool, on {message.id}"
            raise MessageRejected(msg)
        return [message] if keep else []


class RouteStep:
    def __init__(self, config: RouteStepConfig, services: FlowServices | None = None) -> None:
        del services
        self.name = config.name or "route"
        self.default = config.default
        self._cases = [(compile_cel(case.when), case.sink) for case in config.cases]

    async def process(self, message: Message) -> Sequence[Message]:
        for program, sink in self._cases:
            if cel_value(program, message, "route") is True:
                return [
                    message.derive(message.payload, attributes={**message.attributes, SINK_ATTRIBUTE: sink})
                ]
        if self.default is None:  # the flow's default sink
            return [message]
        return [
            message.derive(message.payload, attributes={**message.attributes, SINK_ATTRIBUTE: self.default})
        ]
