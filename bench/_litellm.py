"""The LiteLLM proxy as a third target: installed on first use into its own venv, configured like Interlace.

The lock ``bench/litellm/requirements.txt`` (hash-pinned, made with pip-compile from
``requirements.in``) is installed with ``pip install --require-hashes --no-deps`` into
``bench/.venvs/litellm-<version>/`` (git-ignored), once; a ``.installed`` marker holding the lock's hash
makes later runs skip the install. The proxy gets one model (``bench`` → ``openai/echo`` at the fake
upstream), a master key, no database, no retries, no callbacks, and the environment variables that
stop its telemetry and its network look-ups (the model cost map is read from the package).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from _procs import HOST, BenchError, Proc, Processes, free_port, wait_for_chat

BENCH = Path(__file__).resolve().parent
LOCK = BENCH / "litellm" / "requirements.txt"
VERSION = "1.108.14"
VENV = BENCH / ".venvs" / f"litellm-{VERSION}"
MASTER_KEY = "sk-bench-litellm-master"

# no telemetry, no phoning home, no admin UI or docs to build, quiet logs
ENV = {
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOG": "ERROR",
    "LITELLM_MODE": "PRODUCTION",
    "DISABLE_ADMIN_UI": "True",
    "NO_DOCS": "True",
    "NO_REDOC": "True",
    "DISABLE_SCHEMA_UPDATE": "True",
    "ANONYMIZED_TELEMETRY": "False",
    "DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


def ensure_litellm(log: list[str]) -> Path:
    """The proxy's console script, installing the pinned lock into its own venv on first use."""
    script = VENV / "bin" / "litellm"
    marker = VENV / ".installed"
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if script.exists() and marker.exists() and marker.read_text().strip() == digest:
        return script
    print(f"installing the LiteLLM proxy {VERSION} into {VENV} (once; a few minutes)", file=sys.stderr)
    python = os.environ.get("BENCH_LITELLM_PYTHON", sys.executable)
    steps = [
        [python, "-m", "venv", "--clear", str(VENV)],
        [
            str(VENV / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--require-hashes",
            "--no-deps",
            "-r",
            str(LOCK),
        ],
    ]
    for argv in steps:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)
        if done.returncode != 0:
            raise BenchError(
                f"installing LiteLLM failed ({' '.join(argv[:4])} …, exit {done.returncode}):\n"
                f"{(done.stdout + done.stderr).strip()[-1500:]}\nrerun with --no-litellm to skip it"
            )
    marker.write_text(digest + "\n")
    log.append(f"installed litellm {VERSION} into {VENV.relative_to(BENCH.parent)}")
    return script


def write_config(path: Path, upstream_port: int) -> Path:
    config = {
        "model_list": [
            {
                "model_name": "bench",
                "litellm_params": {
                    "model": "openai/echo",
                    "api_base": f"http://{HOST}:{upstream_port}/v1",
                    "api_key": "sk-bench-upstream",
                },
            }
        ],
        "litellm_settings": {
            "num_retries": 0,
            "request_timeout": 30,
            "telemetry": False,
            "callbacks": [],
            "success_callback": [],
            "failure_callback": [],
            "drop_params": True,
        },
        "router_settings": {"num_retries": 0, "allowed_fails": 1000000},
        "general_settings": {
            "master_key": MASTER_KEY,
            "disable_spend_logs": True,
            "disable_error_logs": True,
            "disable_reset_budget": True,
            "background_health_checks": False,
        },
    }
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


def start_litellm(
    procs: Processes, logs: Path, script: Path, config: Path, label: str
) -> tuple[Proc, int, float]:
    """``litellm --config … --port …`` (one uvicorn worker); cold start = spawn → first chat answer."""
    port = free_port()
    argv = [str(script), "--config", str(config), "--host", HOST, "--port", str(port), "--num_workers", "1"]
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_HOST", "REDIS_URL"}}
    proc = procs.start(f"litellm {label}", argv, logs / f"litellm-{label}.log", env={**env, **ENV})
    return proc, port, wait_for_chat(proc, port, "bench", timeout=180, key=MASTER_KEY)
