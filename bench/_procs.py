"""Processes for the benchmark: the fake upstream and the gateway, started on 127.0.0.1, stopped by PID.

Every process started here is registered in a :class:`Processes` and stopped by its PID (SIGTERM, then
SIGKILL) when the benchmark ends, fails or is interrupted. Children run in their own session, so a
Ctrl-C reaches only the orchestrator, which then stops them in order.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HOST = "127.0.0.1"
CHAT_PATH = "/v1/chat/completions"
_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A failure the user can act on; the message names the fix."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def venv_bin(name: str) -> Path:
    """A console script next to this interpreter (the project's .venv when run via make bench)."""
    candidates = [
        Path(sys.executable).parent / name,
        Path(__file__).resolve().parents[1] / ".venv/bin" / name,
    ]
    for path in candidates:
        if path.exists():
            return path
    raise BenchError(f"cannot find '{name}' next to {sys.executable}: run `make venv-dev`, then `make bench`")


def system_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (user, nice, system, irq, softirq, steal)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / _TICKS


def _status_of(pid: int, key: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    return None


def _cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


class Proc:
    """One started process: its log file, /proc figures and a bounded stop."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self.spawned_at = time.perf_counter()
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def _status(self, key: str) -> int | None:
        return _status_of(self.pid, key)

    def rss_kib(self) -> int | None:
        return self._status("VmRSS")

    def peak_rss_kib(self) -> int | None:
        return self._status("VmHWM")

    def cpu_seconds(self) -> float:
        """User + system CPU time so far (this process only; the gateway and upstream do not fork)."""
        return _cpu_of(self.pid)

    def tree(self) -> list[int]:
        """This process and its descendants (LiteLLM may run its server in a child process)."""
        pids, index = [self.pid], 0
        while index < len(pids):
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{pids[index]}/task").iterdir():
                    pids += [int(c) for c in (task / "children").read_text().split()]
            index += 1
        return pids

    def tree_rss_kib(self) -> int | None:
        sizes = [_status_of(pid, "VmRSS") for pid in self.tree()]
        return sum(s for s in sizes if s is not None) or None

    def tree_cpu_seconds(self) -> float:
        return sum(_cpu_of(pid) for pid in self.tree())

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in text[-lines:]) or "    (empty log)"

    def stop(self, grace: float = 12.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.popen.wait(5)


class Processes:
    """Every process the benchmark started, stopped newest first."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []

    def start(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> Proc:
        proc = Proc(name, argv, log, dict(env if env is not None else os.environ, PYTHONUNBUFFERED="1"))
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc) -> None:
        proc.stop()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        while self.procs:
            self.stop(self.procs[-1])


def post_json(
    port: int, path: str, body: dict, timeout: float = 5.0, key: str | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    try:
        conn.request("POST", path, json.dumps(body), headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def chat_body(model: str) -> dict:
    return {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hello"}]}


def check_chat(port: int, model: str, key: str | None = None) -> None:
    """One chat completion must answer 200 with a 'choices' list, or the benchmark measures errors."""
    status, raw = post_json(port, CHAT_PATH, chat_body(model), key=key)
    try:
        choices = json.loads(raw).get("choices")
    except (ValueError, AttributeError):
        choices = None
    if status != 200 or not isinstance(choices, list):
        raise BenchError(
            f"POST {CHAT_PATH} on port {port} (model {model!r}) answered {status}: {raw[:300]!r}"
        )


def wait_for_chat(proc: Proc, port: int, model: str, timeout: float = 60.0, key: str | None = None) -> float:
    """Poll with chat completions until one succeeds; seconds since the process was spawned."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not proc.alive():
            raise BenchError(
                f"{proc.name} exited with code {proc.popen.returncode} before answering; its log "
                f"({proc.log}):\n{proc.log_tail()}\nrun `{' '.join(proc.argv)}` by hand to see why"
            )
        try:
            status, raw = post_json(port, CHAT_PATH, chat_body(model), timeout=5.0, key=key)
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if status == 200:
                return time.perf_counter() - proc.spawned_at
            last = f"HTTP {status}: {raw[:200]!r}"
        time.sleep(0.005)
    raise BenchError(
        f"{proc.name} gave no successful chat completion within {timeout:.0f}s ({last}); "
        f"its log ({proc.log}):\n{proc.log_tail()}"
    )


def upstream_argv() -> list[str]:
    """The fake OpenAI upstream, on uvloop when this version of it offers ``--loop uvloop``."""
    argv = [sys.executable, "-m", "interlace.testing.server", "--protocol", "openai", "--host", HOST]
    help_text = subprocess.run(
        [*argv, "--help"], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    if "uvloop" in help_text:
        argv += ["--loop", "uvloop"]
    return argv


def start_upstream(procs: Processes, workdir: Path, argv: list[str]) -> tuple[Proc, int]:
    port = free_port()
    proc = procs.start("fake upstream", [*argv, "--port", str(port)], workdir / "upstream.log")
    wait_for_chat(proc, port, "echo")
    return proc, port


# the default production policies: virtual keys (made with `interlace keys create`), a per-key and a
# per-model rate limit far above what the benchmark sends; metrics, the request log and the audit log
# are on by default
POLICIES = "auth: {virtual_keys: true}\n"
MODEL_LIMITS = "    limits: {rpm: 1000000000, tpm: 1000000000000}\n"


def write_config(
    path: Path, upstream_port: int, state_dir: Path, extra: str = "", *, policies: bool = False
) -> Path:
    path.write_text(
        "# generated by bench/run.py\n"
        + extra
        + (POLICIES if policies else "")
        + f"server: {{host: {HOST}}}\n"
        f"state: {{dir: {json.dumps(str(state_dir))}}}\n"
        "models:\n"
        "  bench:\n" + (MODEL_LIMITS if policies else "") + "    deployments:\n"
        "      - provider: openai\n"
        "        model: echo\n"
        f"        base_url: http://{HOST}:{upstream_port}/v1\n"
        # the same upstream behind 10 deployments: what routing over many candidates costs
        "  bench10:\n"
        "    strategy: least_in_flight\n"
        "    deployments:\n"
        + "".join(
            f"      - {{provider: openai, model: echo, base_url: 'http://{HOST}:{upstream_port}/v1'}}\n"
            for _ in range(10)
        )
    )
    return path


def start_gateway(
    procs: Processes, workdir: Path, config: Path, label: str, key: str | None = None
) -> tuple[Proc, int, float]:
    """``interlace serve`` on a free port, once a chat completion through it succeeded.

    Returns the process, its port and the cold start: seconds from spawn to that first success.
    """
    port = free_port()
    argv = [str(venv_bin("interlace")), "serve", "--config", str(config), "--port", str(port)]
    proc = procs.start(f"interlace serve ({label})", argv, workdir / f"gateway-{label}.log")
    return proc, port, wait_for_chat(proc, port, "bench", key=key)


def create_key(config: Path) -> str:
    """A virtual key for the policies gateway, made the way an operator does: ``interlace keys create``."""
    argv = [
        str(venv_bin("interlace")), "keys", "create", "--config", str(config), "--tenant", "bench",
        "--name", "bench", "--rpm", "1000000000", "--tpm", "1000000000000",
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    secrets = [w for w in done.stdout.split() if w.startswith("ik_") and w.count("_") >= 2]
    if done.returncode != 0 or not secrets:
        raise BenchError(f"`{' '.join(argv)}` failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return secrets[0]
