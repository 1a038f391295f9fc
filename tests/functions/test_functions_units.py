"""The parts of AI functions that need no network: templates, versions, parsing, golden checks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from interlace.config.functions import Assertion, FunctionConfig
from interlace.core.errors import FunctionNotFound, RequestError
from interlace.functions.definition import FunctionDefinition, component_prefix
from interlace.functions.evaluation import MISSING, _Checker, percentile, select
from interlace.functions.registry import FunctionRegistry
from interlace.functions.runner import FunctionResult
from interlace.functions.structured import parse_answer, strict_compatible
from interlace.functions.template import PromptTemplate


def _llm(**extra: Any) -> FunctionConfig:
    base: dict[str, Any] = {
        "name": "f",
        "model": "gpt",
        "prompt": "Say {{ word }}",
        "output_schema": {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}},
    }
    return FunctionConfig.model_validate({**base, **extra})


def test_templates_render_input_fields_strictly_and_in_a_sandbox() -> None:
    template = PromptTemplate("{{ name }} / {{ input | json }} / {{ tags | join(',') }}", limit=1000)
    assert template.render({"name": "<b>", "tags": ["x", "y"]}) == (
        '<b> / {"name": "<b>", "tags": ["x", "y"]} / x,y'  # nothing is HTML-escaped
    )
    with pytest.raises(RequestError, match="'missing' is undefined") as undefined:
        PromptTemplate("{{ missing }}", limit=100).render({})
    assert undefined.value.code == "template_error"
    with pytest.raises(RequestError) as unsafe:
        PromptTemplate("{{ name.__class__.__mro__ }}", limit=100).render({"name": "x"})
    assert unsafe.value.code == "template_error"
    with pytest.raises(RequestError) as mutating:
        PromptTemplate("{{ tags.append(1) }}", limit=100).render({"tags": []})
    assert mutating.value.code == "template_error"
    with pytest.raises(RequestError, match="max_prompt_chars=10") as long:
        PromptTemplate("{{ text }}", limit=10).render({"text": "x" * 11})
    assert long.value.code == "prompt_too_large"


def test_latest_is_the_highest_version_by_numeric_ordering() -> None:
    registry = FunctionRegistry([_llm(version=v) for v in ("2", "10", "1.5", "2.0rc1", "beta")])
    assert [d.version for d in registry.versions("f")] == ["1.5", "2.0rc1", "2", "10", "beta"]
    assert registry.get("f").version == "beta"  # names that do not parse sort after versions
    assert FunctionRegistry([_llm(version=v) for v in ("2", "10", "1.5")]).get("f").version == "10"
    with pytest.raises(FunctionNotFound, match=r"Versions: 1\.5, 2, 10"):
        FunctionRegistry([_llm(version=v) for v in ("2", "10", "1.5")]).get("f", "3")


def test_component_names_follow_name_and_version() -> None:
    assert component_prefix("classify_ticket", "2.1") == "ClassifyTicketV2_1"
    assert component_prefix("dup-check", "1") == "DupCheckV1"


def _answer(content: str) -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": content}}]}


def test_answers_are_parsed_through_a_code_fence_and_validated() -> None:
    definition = FunctionDefinition(_llm())
    assert parse_answer(definition, _answer('```json\n{"a": 1}\n```')).output == {"a": 1}
    wrong = parse_answer(definition, _answer('{"a": "one"}'))
    assert wrong.output is None
    assert wrong.problems == [{"path": "/a", "message": "'one' is not of type 'integer'"}]
    missing = parse_answer(definition, _answer("{}"))
    assert missing.problems[0]["path"] == "/a"
    assert parse_answer(definition, _answer("")).problems[0]["message"] == "the answer is empty"


def test_strict_mode_only_for_closed_fully_required_schemas() -> None:
    closed = {"type": "object", "additionalProperties": False, "required": ["a"], "properties": {"a": {}}}
    assert strict_compatible(closed)
    assert not strict_compatible({**closed, "additionalProperties": True})
    assert not strict_compatible({**closed, "required": []})
    nested = {**closed, "properties": {"a": {"type": "object", "properties": {"b": {"type": "string"}}}}}
    assert not strict_compatible(nested)


def test_select_reads_dotted_paths_and_json_pointers() -> None:
    document = {"tags": [{"name": "x"}], "a/b": 1}
    assert select(document, "tags[0].name") == "x"
    assert select(document, "/tags/0/name") == "x"
    assert select(document, "/a~1b") == 1
    assert select(document, None) is document
    assert select(document, "tags[3]") is MISSING
    assert select(document, "/nope") is MISSING


@pytest.mark.parametrize(
    ("assertion", "ok"),
    [
        ({"path": "label", "exact": "billing"}, True),
        ({"path": "label", "exact": "shipping"}, False),
        ({"subset": {"label": "billing"}}, True),
        ({"subset": {"label": "billing", "extra": 1}}, False),
        ({"path": "label", "regex": "^bill"}, True),
        ({"path": "label", "regex": "^ship"}, False),
        ({"path": "scores", "json_schema": {"type": "object", "required": ["billing"]}}, True),
        ({"path": "scores", "json_schema": {"type": "array"}}, False),
        ({"label": "billing"}, True),
        ({"label": "shipping"}, False),
        ({"path": "confidence", "at_least": 0.5, "at_most": 1}, True),
        ({"path": "confidence", "at_least": 0.95}, False),
        ({"path": "nothing", "exact": None}, False),
    ],
)
def test_assertions(assertion: dict[str, Any], ok: bool) -> None:
    result = FunctionResult(
        function="f",
        version="1",
        output={"label": "billing", "scores": {"billing": 0.9, "shipping": 0.1}},
        confidence=0.9,
    )
    checker = _Checker(runner=None)  # type: ignore[arg-type]  # similarity is not asked for here
    problem = asyncio.run(checker.check(Assertion.model_validate(assertion), result))
    assert (problem is None) is ok, problem


def test_an_assertion_names_exactly_one_check() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Assertion.model_validate({"label": "a", "regex": "b"})
    with pytest.raises(ValueError, match="does not compile"):
        Assertion.model_validate({"regex": "("})


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile([], 0.5)) == (10.0, 19.0, 0.0)
