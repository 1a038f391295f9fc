"""wrk, the load generator: make sure it is installed, run it bounded in time, parse bench/chat.lua's JSON."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
from pathlib import Path

from _procs import BenchError

LUA = Path(__file__).with_name("chat.lua")
_MARK = "BENCH_JSON "


def ensure_wrk(log: list[str]) -> str:
    """The path of wrk; installs Debian's package when missing and we are root, else names the command."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise BenchError("wrk is not installed: run `sudo apt-get install -y wrk`, then `make bench` again")
    if not shutil.which("apt-get"):
        raise BenchError("wrk is not installed and there is no apt-get: install wrk 4.x by hand")
    log.append("wrk is missing: apt-get install -y wrk")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", "wrk"]
    if subprocess.run(install, env=env, timeout=600, check=False).returncode != 0:
        # a fresh container often has no package lists yet
        subprocess.run(["apt-get", "update"], env=env, timeout=600, check=False)
        subprocess.run(install, env=env, timeout=600, check=False)
    found = shutil.which("wrk")
    if not found:
        raise BenchError("`apt-get install -y wrk` did not install wrk: install it by hand and rerun")
    return found


def wrk_version(wrk: str) -> str:
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
    words = (out.stdout + out.stderr).split()  # "wrk debian/4.1.0-3+b2 [epoll] Copyright ..."
    return f"wrk {words[1].rsplit('/', 1)[-1]}" if len(words) > 1 else "wrk (unknown version)"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    wrk: str,
    *,
    url: str,
    model: str,
    threads: int,
    connections: int,
    seconds: float,
    key: str | None = None,
) -> dict:
    """One bounded wrk run; the parsed summary plus wrk's own CPU time (to show it is not the bottleneck).

    wrk's CPU comes from RUSAGE_CHILDREN: the servers are still running (not reaped), so the only
    child reaped during the run is wrk itself.
    """
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(LUA),
        url,
        "--",
        model,
        *([key] if key else []),
    ]
    cpu_before = _children_cpu()
    began = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise BenchError(f"wrk did not finish within {seconds + 30:.0f}s: {' '.join(argv)}") from None
    finally:
        if proc.poll() is None:  # interrupted: stop it by PID before the servers go
            proc.kill()
            proc.wait()
    wall = time.perf_counter() - began
    line = next((ln for ln in out.splitlines() if ln.startswith(_MARK)), None)
    if proc.returncode != 0 or line is None:
        raise BenchError(f"wrk failed (exit {proc.returncode}): {' '.join(argv)}\n{out.strip()[-1500:]}")
    result = json.loads(line[len(_MARK) :])
    seconds_run = result["duration_us"] / 1e6
    result["wall_s"] = round(wall, 3)
    result["rps"] = result["requests"] / seconds_run if seconds_run else 0.0
    result["error_count"] = sum(result["errors"].values())
    result["wrk_cpu_s"] = round(_children_cpu() - cpu_before, 3)
    result["wrk_cpu_pct"] = round(100 * result["wrk_cpu_s"] / seconds_run, 1) if seconds_run else 0.0
    result["argv"] = " ".join(argv[1:-1] if key else argv[1:]) + (" KEY" if key else "")
    return result
