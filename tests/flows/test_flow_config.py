"""``flows:`` configuration: every error names its file:line and what to write; the registry's
types are the only ones accepted."""

from __future__ import annotations

import pytest

from interlace.config import parse_config
from interlace.config.flows import FlowConfig
from interlace.core.errors import ConfigError
from interlace.flows.registry import SINKS, SOURCES, STEPS

WEBHOOK = "flows:\n  f:\n    source: {type: webhook}\n"
SINK = "    sink: {type: files, path: o}\n"


def errors_of(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, filename="flows.yaml")
    return str(caught.value)


def test_a_valid_flow_parses_with_its_defaults() -> None:
    config = parse_config(
        """
flows:
  tickets:
    source: {type: webhook}
    steps:
      - {type: filter, expression: 'payload.priority != "spam"'}
      - {type: map, expression: '{"text": subject & ". " & body}', name: text}
      - type: route
        cases: [{when: 'payload.text.contains("refund")', sink: billing}]
    sinks:
      billing: {type: files, path: b.jsonl}
      rest: {type: http, url: "http://127.0.0.1:1/x"}
"""
    )
    flow = config.flows["tickets"]
    assert flow.max_in_flight == 64
    assert flow.ordering == "none"
    assert flow.retry.attempts == 3
    assert [s.type for s in flow.steps] == ["filter", "map", "route"]
    assert flow.sink_names == ["billing", "rest"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "flows:\n  f:\n    source: {type: nats2}\n    sink: {type: files, path: o}\n",
            "flows.yaml:3: 'flows.f.source'",
        ),
        (
            "flows:\n  f:\n    source: {type: webhook}\n    sink:\n      type: files\n      pth: o\n",
            "flows.yaml:6: unknown key 'flows.f.sink.pth' — did you mean 'path'?",
        ),
        (
            "flows:\n  f:\n    source: {type: webhook}\n    sink:\n      type: files\n",
            "flows.yaml:4: 'flows.f.sink.path' is required",
        ),
        (
            WEBHOOK + "    steps:\n      - {type: filter, expression: 'a >'}\n" + SINK,
            "flows.yaml:5: 'flows.f.steps[0].expression': not a valid CEL expression",
        ),
        (
            WEBHOOK + "    steps:\n      - {type: map, expression: '{a:'}\n" + SINK,
            "not a valid JSONata expression",
        ),
        (
            WEBHOOK + "    steps:\n      - {type: summarise}\n" + SINK,
            "flows.yaml:5: 'flows.f.steps[0]'",
        ),
        ("flows:\n  f:\n    source: {type: webhook}\n", "a flow needs exactly one of sink: or sinks:"),
        (
            WEBHOOK
            + "    steps:\n      - type: route\n        cases: [{when: 'true', sink: nowhere}]\n"
            + "    sinks: {a: {type: files, path: o}}\n",
            "routes to 'nowhere', which is not under sinks: (a)",
        ),
        ("flows:\n  9f:\n    source: {type: webhook}\n    sink: {type: files, path: o}\n", "flow name '9f'"),
        (
            WEBHOOK + SINK + "    max_in_flight: 0\n",
            "flows.yaml:5: 'flows.f.max_in_flight'",
        ),
    ],
)
def test_errors_point_at_the_line_and_say_what_to_write(text: str, expected: str) -> None:
    assert expected in errors_of(text)


def test_an_unknown_type_lists_the_known_ones() -> None:
    message = errors_of("flows:\n  f:\n    source: {type: kafak}\n    sink: {type: files, path: o}\n")
    for entry in SOURCES:
        assert f"'{entry.type}'" in message
    message = errors_of("flows:\n  f:\n    source: {type: webhook}\n    sink: {type: s3}\n")
    assert all(f"'{entry.type}'" in message for entry in SINKS)


def test_every_registry_entry_names_a_config_with_a_literal_type_and_a_loadable_factory() -> None:
    for entries in (SOURCES, SINKS, STEPS):
        types = [entry.type for entry in entries]
        assert len(types) == len(set(types))
        for entry in entries:
            assert callable(entry.load()), entry.factory


def test_flow_config_is_immutable_and_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        FlowConfig.model_validate(
            {"source": {"type": "webhook"}, "sink": {"type": "files", "path": "o"}, "x": 1}
        )
