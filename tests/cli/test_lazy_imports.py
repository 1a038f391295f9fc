"""``interlace serve`` imports only the subsystems its configuration uses.

Each check runs in a fresh interpreter (this one has long imported everything) that loads what the
server of ``interlace serve`` loads for a configuration — its entry point, the configuration, the
runtime and the ASGI app — and lists ``sys.modules``. It never holds the command line (typer, Rich). A
minimal configuration must not import Redis, the OpenTelemetry SDK, jsonschema, Jinja2, PyJWT or a
flow's engine, connectors or broker clients; the same probe with those features configured shows
that it does see them when they are used.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import httpx
import openai
import pytest

if TYPE_CHECKING:
    from pathlib import Path

PROBE = """
import json, sys
from pathlib import Path

from interlace.cli.serve import main  # what `interlace serve` replaces itself with
from interlace.config.loader import load_config
from interlace.gateway.app import build_app
from interlace.runtime import Runtime

build_app(Runtime(load_config(Path(sys.argv[1]))))
print(json.dumps(sorted(sys.modules)))
"""

MINIMAL = """
state: {dir: STATE}
models:
  m:
    deployments:
      - {provider: openai, model: echo, base_url: 'http://127.0.0.1:9/v1'}
"""

EVERYTHING = (
    MINIMAL
    + """
redis: {url: 'redis://127.0.0.1:9/0'}
telemetry: {otlp_endpoint: 'http://127.0.0.1:9'}
auth:
  oidc:
    issuers:
      - issuer: 'http://127.0.0.1:9/realm'
        audience: interlace
        jwks_url: 'http://127.0.0.1:9/realm/jwks'
        claims: {tenant: acme}
functions:
  - name: summarise
    model: m
    prompt: 'Summarise {{ text }}'
    input_schema: {type: object, properties: {text: {type: string}}}
    output_schema: {type: object, properties: {summary: {type: string}}}
"""
)

# the optional subsystems: a top-level package, or a module prefix, and what turns it on
OPTIONAL = {
    "redis": "redis:",
    "opentelemetry.sdk": "telemetry.otlp_endpoint",
    "jsonschema": "functions:",
    "jinja2": "functions:",
    "jwt": "auth.oidc",
}
BROKER_CLIENTS = ("aiokafka", "aio_pika", "aiomqtt", "nats", "asyncpg", "psycopg", "jsonata")
# the command line and its console libraries (uvicorn imports click, which is small)
COMMAND_LINE = ("typer", "rich", "pygments", "interlace.cli.main")
# the serving path speaks plain SQL; these load with the first migration, job, usage or audit read
DATABASE_TOOLKIT = ("sqlalchemy", "alembic")
FLOW_RUNTIME = ("interlace.flows.engine", "interlace.flows.process", "interlace.flows.build")


def _serve_imports(tmp_path: Path, config: str) -> set[str]:
    path = tmp_path / "interlace.yaml"
    path.write_text(config.replace("STATE", json.dumps(str(tmp_path / "state"))))
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def _loaded(modules: set[str], prefix: str) -> list[str]:
    return sorted(m for m in modules if m == prefix or m.startswith(prefix + "."))


def test_a_minimal_configuration_imports_no_optional_subsystem(tmp_path: Path) -> None:
    modules = _serve_imports(tmp_path, MINIMAL)
    for prefix, setting in OPTIONAL.items():
        assert not _loaded(modules, prefix), f"{prefix} is imported without {setting} configured"
    assert not [m for m in BROKER_CLIENTS if _loaded(modules, m)]
    assert not [m for m in FLOW_RUNTIME if m in modules]
    assert not [m for m in COMMAND_LINE if _loaded(modules, m)]
    assert not [m for m in DATABASE_TOOLKIT if _loaded(modules, m)]
    connectors = [
        m
        for m in _loaded(modules, "interlace.flows.connectors")
        if m.rsplit(".", 1)[-1] in {"source", "sink"}
    ]
    assert not connectors, f"flow connectors imported without flows: {connectors}"


def test_the_probe_sees_the_subsystems_a_configuration_turns_on(tmp_path: Path) -> None:
    modules = _serve_imports(tmp_path, EVERYTHING)
    for prefix in OPTIONAL:
        assert _loaded(modules, prefix), f"{prefix} is not imported although configured"
    assert not [m for m in COMMAND_LINE if _loaded(modules, m)]


POLICIES = """
auth: {virtual_keys: true}
state: {dir: STATE}
models:
  echo:
    limits: {rpm: 100000, tpm: 100000000}
    deployments:
      - {provider: fake, model: echo}
"""


def test_a_gateway_with_the_default_policies_serves_without_the_database_toolkit(tmp_path: Path) -> None:
    """``interlace serve`` with virtual keys, rate limits, the event log and the audit log on: it
    migrates a new database (in a child), authenticates, limits, answers and records requests, and
    every module the server imported (``-X importtime``, which it inherits) leaves SQLAlchemy,
    Alembic, typer and Rich out."""
    config = tmp_path / "interlace.yaml"
    config.write_text(POLICIES.replace("STATE", json.dumps(str(tmp_path / "state"))))
    port = _free_port()
    log = tmp_path / "server.log"  # a file: the import lines alone would fill a pipe
    output = log.open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "interlace",
            "serve",
            "--config",
            str(config),
            "--port",
            str(port),
        ],
        stderr=output,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url)
        created = subprocess.run(
            [sys.executable, "-m", "interlace", "keys", "create", "--config", str(config), "--tenant", "acme",
             "--name", "probe", "--rpm", "1000"],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        key = next(word for word in created.stdout.split() if word.startswith("ik_") and word.count("_") >= 2)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
        deadline = time.monotonic() + 30
        while True:  # the key cache picks the new key up on a miss
            try:
                answer = client.chat.completions.create(
                    model="echo", messages=[{"role": "user", "content": "hi"}]
                )
                break
            except openai.AuthenticationError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert answer.choices[0].message.content == "echo: hi"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(
                base_url=f"{url}/v1", api_key="ik_0123456789abcdef_" + "y" * 43, max_retries=0
            ).models.list()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
        output.close()
    errors = log.read_text()
    assert server.returncode == 0, errors[-2000:]
    # two interpreters wrote import lines: the command line, then the server that replaced it
    # (os.execv, the same process); each one's lines end with its `site` before its own imports
    modules = [line.split("|")[-1].strip() for line in errors.splitlines() if line.startswith("import time:")]
    starts = [n for n, name in enumerate(modules) if name == "site"]
    assert len(starts) == 2, starts
    command_line, server_imports = set(modules[: starts[1]]), set(modules[starts[1] :])
    assert "typer" in command_line
    assert "interlace.gateway.app" in server_imports
    assert not [m for m in server_imports if m.split(".")[0] in (*DATABASE_TOOLKIT, *COMMAND_LINE)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz").status_code == 200:
                return
        time.sleep(0.05)
    raise AssertionError(f"{url} never became ready")
