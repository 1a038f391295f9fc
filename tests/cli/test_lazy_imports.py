"""``interlace serve`` imports only the subsystems its configuration uses.

Each check runs in a fresh interpreter (this one has long imported everything) that loads what the
server of ``interlace serve`` loads for a configuration — its entry point, the configuration, the
runtime and the ASGI app — and lists ``sys.modules``. It never holds the command line (typer). A
minimal configuration must not import Redis, the OpenTelemetry SDK, jsonschema, Jinja2, PyJWT or a
flow's engine, connectors or broker clients; the same probe with those features configured shows
that it does see them when they are used.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

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
COMMAND_LINE = ("typer", "interlace.cli.main")  # (uvicorn imports click)
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
