"""The request log: one JSON line per request, never prompt or completion text unless configured."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import httpx
import pytest
from tests.conftest import GatewayFactory, fake_models_yaml
from tests.support.gateway import GatewayServer
from tests.support.observe import Records

from interlace.config.schema import LogsConfig
from interlace.observability.logs import REQUEST_LOGGER, RequestLog, configure_logging
from interlace.observability.record import RequestRecord, Usage

SECRET = "zebra-secret-42"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def start(make_gateway: GatewayFactory, logs: str = "") -> tuple[GatewayServer, Records]:
    yaml = fake_models_yaml(echo={}, cut={"fault": "cut_stream"})
    if logs:
        yaml += f"observability:\n  logs: {{{logs}}}\n"
    server = make_gateway(yaml)
    records = Records()
    server.runtime.observers.add(records)  # after the request log: a record seen here was logged
    return server, records


def exercise(server: GatewayServer) -> list[str]:
    """One request of each kind, each carrying SECRET; the request ids answered."""
    url = server.url
    messages = [{"role": "user", "content": f"tell me about {SECRET}"}]
    ids = []
    plain = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "echo", "messages": messages, "user": "user-77"},
        headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"},
    )
    ids.append(plain.headers["x-request-id"])
    for model in ("echo", "cut"):
        body = {"model": model, "messages": messages, "stream": True}
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as streamed:
            streamed.read()
            ids.append(streamed.headers["x-request-id"])
    missing = httpx.post(f"{url}/v1/chat/completions", json={"model": SECRET, "messages": messages})
    ids.append(missing.headers["x-request-id"])
    anthropic = httpx.post(
        f"{url}/v1/messages", json={"model": "echo", "max_tokens": 10, "messages": messages}
    )
    ids.append(anthropic.headers["x-request-id"])
    embedded = httpx.post(f"{url}/v1/embeddings", json={"model": "echo", "input": SECRET})
    ids.append(embedded.headers["x-request-id"])
    return ids


def lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == REQUEST_LOGGER]


def test_one_json_line_per_request_and_no_text(
    make_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=REQUEST_LOGGER)
    server, records = start(make_gateway)
    ids = exercise(server)
    records.wait(len(ids))
    logged = lines(caplog)
    assert [line["request_id"] for line in logged] == ids
    plain, streamed, cut, missing, anthropic, embedded = logged
    assert plain["trace_id"] == TRACE
    assert (plain["model"], plain["served_model"], plain["deployment"]) == ("echo", "echo", "echo/0")
    assert (plain["status"], plain["error_code"], plain["attempts"], plain["fallback"]) == (
        200,
        None,
        1,
        False,
    )
    assert plain["input_tokens"] == 4
    assert plain["output_tokens"] == 5
    assert plain["latency_ms"] > 0
    assert (plain["event"], plain["level"], plain["logger"]) == ("request", "info", REQUEST_LOGGER)
    assert plain["timestamp"].endswith("Z")
    assert streamed["stream"] is True
    assert streamed["partial"] is False
    assert streamed["ttft_ms"] > 0
    assert (cut["status"], cut["error_code"], cut["partial"]) == (502, "stream_interrupted", True)
    assert cut["tokens_estimated"] is True
    assert cut["output_tokens"] > 0
    assert (missing["status"], missing["error_code"], missing["served_model"]) == (
        404,
        "model_not_found",
        None,
    )
    assert (anthropic["endpoint"], anthropic["operation"], anthropic["status"]) == (
        "/v1/messages",
        "chat",
        200,
    )
    assert (embedded["operation"], embedded["input_tokens"]) == ("embeddings", 1)
    # no prompt, completion or caller's user id in any line (the unknown model name is the client's own)
    for line in (plain, streamed, cut, anthropic, embedded):
        assert "prompt" not in line
        assert "completion" not in line
        assert SECRET not in json.dumps(line)
    assert "user-77" not in caplog.text
    assert not any(SECRET in r.getMessage() for r in caplog.records if r.name != REQUEST_LOGGER)


def test_text_only_when_configured(make_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=REQUEST_LOGGER)
    server, records = start(make_gateway, "include_content: true")
    ids = exercise(server)
    records.wait(len(ids))
    plain, streamed, cut, _, anthropic, embedded = lines(caplog)
    question = [{"role": "user", "content": f"tell me about {SECRET}"}]
    assert plain["prompt"] == question
    assert plain["completion"] == f"echo: tell me about {SECRET}"
    assert streamed["completion"] == f"echo: tell me about {SECRET}"
    assert cut["completion"]
    assert f"echo: tell me about {SECRET}".startswith(cut["completion"])  # what was delivered
    assert anthropic["prompt"] == question
    assert embedded["prompt"] == SECRET


def test_off_when_configured(make_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=REQUEST_LOGGER)
    server, records = start(make_gateway, "request_log: false")
    records.wait(len(exercise(server)))
    assert lines(caplog) == []


def test_console_format(make_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=REQUEST_LOGGER)
    server, records = start(make_gateway, "format: console")
    reply = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "echo", "messages": [{"role": "user", "content": SECRET}]},
    )
    records.wait(1)
    (line,) = [r.getMessage() for r in caplog.records if r.name == REQUEST_LOGGER]
    assert f"request_id={reply.headers['x-request-id']}" in line
    assert "status=200" in line
    assert SECRET not in line


def _record(**fields: Any) -> RequestRecord:
    base: dict[str, Any] = {
        "request_id": "r-1",
        "operation": "chat",
        "endpoint": "/v1/chat/completions",
        "started_at": 1_800_000_000.0,
        "duration_s": 0.25,
        "status": 200,
        "requested_model": "gpt",
        "usage": Usage(prompt_tokens=3, completion_tokens=4),
    }
    return RequestRecord(**{**base, **fields})


def test_configure_logging_renders_every_record_off_the_loop() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    output = configure_logging(LogsConfig(), stream=out)
    try:
        RequestLog().observe(_record(prompt=[{"content": SECRET}], completion=SECRET))
        RequestLog(include_content=True).observe(_record(request_id="r-2", prompt="p", completion="c"))
        logging.getLogger("interlace.example").warning("disk %s full", "/tmp")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("interlace.example").exception("failed")
    finally:
        output.close()
    assert root.handlers == handlers
    assert root.level == level
    first, second, warning, failure = (json.loads(line) for line in out.getvalue().splitlines())
    assert (first["request_id"], first["latency_ms"], first["input_tokens"]) == ("r-1", 250.0, 3)
    assert SECRET not in json.dumps(first)
    assert (second["prompt"], second["completion"]) == ("p", "c")
    assert (warning["event"], warning["level"], warning["logger"]) == (
        "disk /tmp full",
        "warning",
        "interlace.example",
    )
    assert "ValueError: boom" in failure["exception"]


def test_a_long_unknown_model_name_is_clipped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=REQUEST_LOGGER)
    RequestLog().observe(_record(requested_model="m" * 10_000, status=404))
    (line,) = lines(caplog)
    assert line["model"] == "m" * 128


def test_configure_logging_in_console_format() -> None:
    out = io.StringIO()
    output = configure_logging(LogsConfig(format="console"), stream=out)
    try:
        RequestLog(format="console").observe(_record())
        logging.getLogger("interlace.example").warning("plain %s", "words")
    finally:
        output.close()
    request, warning = out.getvalue().splitlines()
    assert "request_id=r-1" in request
    assert "latency_ms=250.0" in request
    assert "plain words" in warning
    assert "[warning" in warning
