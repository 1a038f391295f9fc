"""Golden cases: run a function's cases and check each output, so a model or prompt change is tested.

A case has an ``input`` and either ``expect`` (the whole output, exactly) or ``assertions``, each one
of: ``exact`` (a value), ``subset`` (an object's keys and values), ``regex`` (the value as text),
``json_schema``, ``label`` (a classify function's top label), ``similar_to`` (embedding cosine
similarity of the value as text to a text, at least ``min_similarity``, embedded with
``functions.embedding_model``), ``at_least``/``at_most`` (a number). ``path`` selects the part of the
output an assertion looks at (``tags[0].name`` or ``/tags/0/name``); ``confidence`` and
``needs_review`` select the result's fields of those names.

A case passes when the call succeeds and every check holds; a failed call (an invalid answer after
its re-asks, an upstream error) is a failed case with the error as its reason. :func:`run_cases`
returns every outcome with the pass rate, latency percentiles and the summed cost.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from interlace.core.errors import InterlaceError
from interlace.core.operations import EmbeddingRequest
from interlace.core.principal import ANONYMOUS
from interlace.functions.runner import cosine
from interlace.routing.context import RouteContext

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from interlace.config.functions import Assertion, FunctionCase
    from interlace.core.principal import Principal
    from interlace.functions.runner import FunctionResult, FunctionRunner

__all__ = ["MISSING", "CaseOutcome", "EvaluationSummary", "percentile", "run_cases", "select"]

MISSING: Final = object()
"""What :func:`select` returns for a path that leads nowhere."""
_STEP = re.compile(r"[^.\[\]]+|\[(\d+)\]")


@dataclass(slots=True, kw_only=True)
class CaseOutcome:
    name: str
    passed: bool
    failures: list[str] = field(default_factory=list)
    latency_s: float = 0.0
    cost_usd: float = 0.0
    output: dict[str, Any] | None = None
    confidence: float | None = None


@dataclass(slots=True, kw_only=True)
class EvaluationSummary:
    function: str
    version: str
    model: str
    outcomes: list[CaseOutcome]

    @property
    def passed(self) -> int:
        return sum(1 for o in self.outcomes if o.passed)

    @property
    def pass_rate(self) -> float:
        return self.passed / len(self.outcomes) if self.outcomes else 0.0

    @property
    def cost_usd(self) -> float:
        return sum(o.cost_usd for o in self.outcomes)

    def latency(self, share: float) -> float:
        return percentile([o.latency_s for o in self.outcomes], share)


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-int(share * 1000) * len(ordered) // 1000)))
    return ordered[rank - 1]


def select(document: Any, path: str | None) -> Any:
    """The part of ``document`` at ``path`` (``a.b[0]`` or ``/a/b/0``); a sentinel when absent."""
    if not path:
        return document
    if path.startswith("/"):
        steps: list[str | int] = [
            int(p) if p.isdigit() else p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")
        ]
    else:
        steps = [int(m.group(1)) if m.group(1) else m.group(0) for m in _STEP.finditer(path)]
    node = document
    for step in steps:
        if isinstance(node, dict) and str(step) in node:
            node = node[str(step)]
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            return MISSING
    return node


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


class _Checker:
    def __init__(self, runner: FunctionRunner) -> None:
        self.runner = runner

    async def similarity(self, a: str, b: str) -> float:
        op = EmbeddingRequest(model=self.runner.embedding_model, inputs=[a, b])
        result = await self.runner.router.embed(op, RouteContext())
        return cosine(result.vectors[0], result.vectors[1])

    async def check(self, assertion: Assertion, result: FunctionResult) -> str | None:  # noqa: PLR0911
        document = {**result.output}
        path = assertion.path
        if path in {"confidence", "needs_review"}:
            value: Any = getattr(result, path)
        else:
            value = select(document, path)
        where = f"at {path}" if path else "the output"
        if value is MISSING:
            return f"{where}: nothing there"
        if "exact" in assertion.model_fields_set:
            return None if value == assertion.exact else f"{where}: {value!r} != {assertion.exact!r}"
        if assertion.subset is not None:
            if not isinstance(value, dict):
                return f"{where}: not an object"
            wrong = {k: value.get(k) for k, v in assertion.subset.items() if value.get(k) != v}
            return f"{where}: differs at {wrong!r}, expected {assertion.subset!r}" if wrong else None
        if assertion.regex is not None:
            found = re.search(assertion.regex, _text(value))
            return None if found else f"{where}: {_text(value)!r} does not match /{assertion.regex}/"
        if assertion.json_schema is not None:
            errors = list(Draft202012Validator(assertion.json_schema).iter_errors(value))
            return f"{where}: {errors[0].message}" if errors else None
        if assertion.label is not None:
            label = document.get("label")
            return None if label == assertion.label else f"label {label!r}, expected {assertion.label!r}"
        if assertion.similar_to is not None:
            score = await self.similarity(_text(value), assertion.similar_to)
            if score < assertion.min_similarity:
                return f"{where}: similarity {score:.3f} < {assertion.min_similarity}"
            return None
        return _bounds(assertion, value, where)


def _bounds(assertion: Assertion, value: Any, where: str) -> str | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return f"{where}: {value!r} is not a number"
    if assertion.at_least is not None and value < assertion.at_least:
        return f"{where}: {value} < {assertion.at_least}"
    if assertion.at_most is not None and value > assertion.at_most:
        return f"{where}: {value} > {assertion.at_most}"
    return None


async def _one(
    runner: FunctionRunner,
    checker: _Checker,
    case: FunctionCase,
    index: int,
    *,
    name: str,
    version: str | None,
    model: str | None,
    principal: Principal,
) -> CaseOutcome:
    label = case.name or f"case {index + 1}"
    try:
        result = await runner.run(principal, name, version, case.input, model=model)
    except InterlaceError as exc:
        return CaseOutcome(name=label, passed=False, failures=[f"{exc.code}: {exc.message}"])
    failures: list[str] = []
    if case.expect is not None and result.output != case.expect:
        failures.append(f"output {result.output!r} != expected {case.expect!r}")
    for assertion in case.assertions:
        problem = await checker.check(assertion, result)
        if problem is not None:
            failures.append(problem)
    return CaseOutcome(
        name=label,
        passed=not failures,
        failures=failures,
        latency_s=result.latency_s,
        cost_usd=result.cost_usd,
        output=result.output,
        confidence=result.confidence,
    )


async def run_cases(
    runner: FunctionRunner,
    name: str,
    version: str | None = None,
    *,
    cases: Sequence[FunctionCase] | None = None,
    model: str | None = None,
    principal: Principal = ANONYMOUS,
    on_case: Callable[[CaseOutcome], None] | None = None,
) -> EvaluationSummary:
    """Run ``cases`` (default: the function's own) one after another; ``on_case`` sees each outcome."""
    definition = runner.registry.get(name, version)
    checker = _Checker(runner)
    outcomes: list[CaseOutcome] = []
    chosen = definition.config.cases if cases is None else cases
    for index, case in enumerate(chosen):
        outcome = await _one(
            runner,
            checker,
            case,
            index,
            name=name,
            version=definition.version,
            model=model,
            principal=principal,
        )
        outcomes.append(outcome)
        if on_case is not None:
            on_case(outcome)
    return EvaluationSummary(
        function=name,
        version=definition.version,
        model=model or definition.config.model,
        outcomes=outcomes,
    )
