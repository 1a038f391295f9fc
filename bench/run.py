"""Benchmark the gateway's overhead against calling the same fake upstream directly, and LiteLLM's.

    .venv/bin/python bench/run.py [--duration 10] [--repeat 3] [--concurrency 1,16,64,256] [--quick]
                                  [--no-litellm] [--no-extras] [--soak N] [--out DIR]

Starts the fake OpenAI upstream, ``interlace serve`` twice (bare, and with the default production
policies: a virtual key, rate limits, metrics, request and audit logs) and the LiteLLM proxy (installed
into bench/.venvs/ on first use) on 127.0.0.1, loads each with wrk (bench/chat.lua), measures cold
start, memory and streaming (time to first chunk, gaps between chunks), and writes
``latest.md`` and ``latest.json`` to --out (default bench/results). Every process it starts is stopped
by PID at the end, on errors and on Ctrl-C. Exit codes: 0 ok, 1 error responses during the load,
2 a setup failure (the message names the fix), 130 interrupted. Machine noise never fails a run.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _report
from _litellm import MASTER_KEY, ensure_litellm, start_litellm
from _litellm import write_config as write_litellm_config
from _procs import (
    HOST,
    BenchError,
    Proc,
    Processes,
    check_chat,
    create_key,
    start_gateway,
    start_upstream,
    system_busy_seconds,
    upstream_argv,
)
from _procs import write_config as _write_config
from _sink import TraceSink
from _stream import measure_streaming
from _wrk import ensure_wrk, run_wrk, wrk_version

BENCH = Path(__file__).resolve().parent
COLD_STARTS = 3
LITELLM_COLD_STARTS = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=None, help="seconds per measured run (10)")
    parser.add_argument("--warmup", type=float, default=None, help="seconds of warm-up before each run (2)")
    parser.add_argument("--repeat", type=int, default=None, help="repeats of the throughput runs (3)")
    parser.add_argument("--concurrency", default=None, help="comma-separated connection counts (1,16,64,256)")
    parser.add_argument("--streams", type=int, default=None, help="streamed requests per target (200)")
    parser.add_argument(
        "--quick", action="store_true", help="CI: 2 s runs, c=1,16, 1 repeat, 50 streams, no LiteLLM"
    )
    parser.add_argument(
        "--litellm",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure the LiteLLM proxy too (default: yes, except with --quick)",
    )
    parser.add_argument(
        "--extras",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the routing (10 deployments) and observability variants (default: yes)",
    )
    parser.add_argument(
        "--soak",
        type=int,
        default=None,
        metavar="N",
        help="send N requests (c=16) to each gateway and report RSS before/after "
        "(default 20000; 0 skips; the issue's check is --soak 1000000)",
    )
    parser.add_argument(
        "--soak-warmup",
        type=float,
        default=None,
        metavar="SECONDS",
        help="load before the soak's first RSS reading (default 65: past the rate limits' minute)",
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="where latest.md/json go")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    quick = {"duration": 2.0, "warmup": 1.0, "repeat": 1, "concurrency": "1,16", "streams": 50,
             "litellm": False, "soak": 2000, "soak_warmup": 2.0}  # fmt: skip
    full = {"duration": 10.0, "warmup": 2.0, "repeat": 3, "concurrency": "1,16,64,256", "streams": 200,
            "litellm": True, "soak": 20000, "soak_warmup": 65.0}  # fmt: skip
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    try:
        args.concurrency = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    except ValueError:
        parser.error("--concurrency takes comma-separated integers, e.g. 1,16,64")
    if not args.concurrency or min(args.concurrency) < 1 or args.repeat < 1 or args.duration < 1:
        parser.error("--concurrency values, --repeat and --duration (seconds) must be at least 1")
    return args


class Progress:
    def __init__(self, total: int) -> None:
        self.total, self.done, self.began = total, 0, time.perf_counter()

    def step(self, text: str) -> None:
        self.done += 1
        print(f"[{self.done}/{self.total}] {text} …", file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        print(f"      {text}", file=sys.stderr, flush=True)


def wrk_threads(connections: int) -> int:
    # 2 cores: one wrk thread drives the direct upstream far past the gateway's rate (see the wrk CPU
    # column); a second thread only takes CPU from the servers under test.
    del connections
    return 1


class Target:
    """One thing under load: where it listens, the model and key to send, the process to watch."""

    def __init__(self, name: str, port: int, model: str, proc: Proc, key: str | None = None) -> None:
        self.name, self.port, self.model, self.proc, self.key = name, port, model, proc, key

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/v1/chat/completions"

    def wrk_args(self, wrk: str, connections: int) -> dict:
        return {
            "wrk": wrk,
            "url": self.url,
            "model": self.model,
            "key": self.key,
            "threads": wrk_threads(connections),
            "connections": connections,
        }


def measured_run(target: Target, upstream: Proc, label: str, wrk_args: dict, seconds: float) -> dict:
    """One wrk run plus the CPU the gateway, the upstream, wrk and everything else used meanwhile."""
    gateway = None if target.proc is upstream else target.proc
    before = (gateway.tree_cpu_seconds() if gateway else 0.0, upstream.cpu_seconds(), system_busy_seconds())
    run = run_wrk(**wrk_args, seconds=seconds)
    after = (gateway.tree_cpu_seconds() if gateway else 0.0, upstream.cpu_seconds(), system_busy_seconds())
    for proc in (target.proc, upstream):
        if not proc.alive():
            raise BenchError(f"{proc.name} died during {label}; its log:\n{proc.log_tail()}")
    gw, up, busy = (b - a for a, b in zip(before, after, strict=True))
    secs = run["duration_us"] / 1e6
    run.update(
        gateway_cpu_pct=round(100 * gw / secs, 1),
        upstream_cpu_pct=round(100 * up / secs, 1),
        # other processes on the machine: noise the figures above cannot show
        other_cpu_pct=round(max(0.0, 100 * (busy - gw - up - run["wrk_cpu_s"]) / secs), 1),
        gateway_cpu_us_per_request=round(1e6 * gw / max(run["requests"], 1), 1),
        upstream_cpu_us_per_request=round(1e6 * up / max(run["requests"], 1), 1),
    )
    return run


def measure_throughput(
    args, *, targets: dict[str, Target], upstream: Proc, wrk, progress, errors
) -> list[dict]:
    runs = []
    names = list(targets)
    for repeat in range(1, args.repeat + 1):
        for c in args.concurrency:
            # alternate which target goes first, so slow drift does not always favour one of them
            order = names if repeat % 2 else list(reversed(names))
            for name in order:
                target = targets[name]
                label = f"{name} c={c} (repeat {repeat}/{args.repeat})"
                progress.step(label)
                common = target.wrk_args(wrk, c)
                warm = run_wrk(**common, seconds=args.warmup)
                run = measured_run(target, upstream, label, common, args.duration)
                run.update(repeat=repeat, concurrency=c, target=name, warmup_errors=warm["error_count"])
                runs.append(run)
                lat = run["latency_us"]
                progress.note(
                    f"{run['rps']:,.0f} req/s · p50 {lat['p50'] / 1000:.3f} ms"
                    f" · p99 {lat['p99'] / 1000:.3f} ms · errors {run['error_count']}"
                    f" · CPU: wrk {run['wrk_cpu_pct']:.0f}%, other processes {run['other_cpu_pct']:.0f}%"
                )
                if run["error_count"] or warm["error_count"]:
                    text = (
                        f"{label}: {run['error_count']} errors {run['errors']} "
                        f"(+{warm['error_count']} in the warm-up)"
                    )
                    # LiteLLM timing out at high concurrency is a finding, not a failure of the run
                    (args.notes if name == "litellm" else errors).append(text)
    return runs


def soak(args, *, targets: dict[str, Target], wrk: str, progress) -> dict[str, dict]:
    """N requests at c=16 through each Interlace, after a warm-up; RSS after the warm-up and after.

    The warm-up runs the same load for --soak-warmup seconds (default 65: longer than the rate
    limits' one-minute window, whose exact log holds what the last minute reserved), so "before" is
    the steady state of this load and growth past it is a leak. RSS is sampled after every wrk run.
    LiteLLM is left out: at its rate the default 20,000 requests alone would take minutes.
    """
    out: dict[str, dict] = {}
    for name, target in targets.items():
        if name not in _report.INTERLACES:
            continue
        progress.step(f"soak: {args.soak_warmup:.0f} s warm-up, then {args.soak:,} requests through {name}")
        warm = run_wrk(**target.wrk_args(wrk, 16), seconds=args.soak_warmup) if args.soak_warmup else None
        before = target.proc.tree_rss_kib()
        sent, errors, began, samples = 0, 0, time.perf_counter(), []
        warm_rate = warm["rps"] if warm and warm["rps"] > 0 else 500.0
        while sent < args.soak:
            rate = max(sent / (time.perf_counter() - began), 50.0) if sent else warm_rate
            seconds = min(30.0, max(1.0, (args.soak - sent) / rate))
            run = run_wrk(**target.wrk_args(wrk, 16), seconds=seconds)
            sent += run["requests"]
            errors += run["error_count"]
            samples.append([sent, target.proc.tree_rss_kib()])
            progress.note(f"{sent:,} / {args.soak:,} requests · RSS {samples[-1][1]} KiB")
        after = target.proc.tree_rss_kib()
        try:
            spools = target.proc.log.read_text(errors="replace").count("spooling to ")
        except OSError:
            spools = None
        out[name] = {
            "requests": sent,
            "errors": errors,
            "warmup_s": args.soak_warmup,
            "warmup_requests": warm["requests"] if warm else 0,
            "rps": round(sent / (time.perf_counter() - began), 1),
            "rss_before_kib": before,
            "rss_after_kib": after,
            "rss_max_kib": max([after or 0, *(kib or 0 for _, kib in samples)]),
            "rss_samples": samples,
            "spool_files": spools,  # the writers fell behind (or the database failed) this often, ever
        }
        growth = 100 * (after - before) / before if before and after else float("nan")
        progress.note(f"{sent:,} requests · RSS {before} → {after} KiB ({growth:+.1f} %)")
    return out


ROUTING_CONCURRENCY = (1, 16)


def measure_routing(args, *, gateway_port: int, wrk: str, progress) -> list[dict]:
    """The same gateway, one alias with 1 deployment and one with 10, back to back."""
    rows = []
    for c in ROUTING_CONCURRENCY:
        for model in ("bench", "bench10"):
            progress.step(f"routing: {model} c={c}")
            url = f"http://{HOST}:{gateway_port}/v1/chat/completions"
            common = {"wrk": wrk, "url": url, "model": model, "threads": wrk_threads(c), "connections": c}
            run_wrk(**common, seconds=args.warmup)
            run = run_wrk(**common, seconds=args.duration)
            lat = run["latency_us"]
            rows.append(
                {
                    "model": model,
                    "deployments": 10 if model == "bench10" else 1,
                    "concurrency": c,
                    "rps": run["rps"],
                    "p50_ms": lat["p50"] / 1000,
                    "p99_ms": lat["p99"] / 1000,
                    "errors": run["error_count"],
                }
            )
            progress.note(f"{run['rps']:,.0f} req/s · p50 {lat['p50'] / 1000:.3f} ms")
    return rows


OBSERVABILITY_OFF = "observability: {metrics: {enabled: false}, logs: {request_log: false}}\n"


def measure_observability(
    args, *, procs, logs, workdir, upstream_port, gateway_port, wrk, progress
) -> list[dict]:
    """The default gateway (metrics and request log on) against one with both off and one tracing too."""
    rows = []
    with TraceSink() as sink:
        variants = {"metrics + request log (default)": gateway_port}
        for label, extra in (
            ("metrics and request log off", OBSERVABILITY_OFF),
            (
                "default + tracing (OTLP, every request sampled)",
                f"telemetry: {{otlp_endpoint: '{sink.url}'}}\n",
            ),
        ):
            config = _write_config(
                workdir / f"obs-{len(variants)}.yaml", upstream_port, workdir / "state", extra
            )
            _, port, _ = start_gateway(procs, logs, config, f"obs-{len(variants)}")
            variants[label] = port
        for c in ROUTING_CONCURRENCY:
            for label, port in variants.items():
                progress.step(f"observability: {label} c={c}")
                url = f"http://{HOST}:{port}/v1/chat/completions"
                common = {
                    "wrk": wrk,
                    "url": url,
                    "model": "bench",
                    "threads": wrk_threads(c),
                    "connections": c,
                }
                run_wrk(**common, seconds=args.warmup)
                run = run_wrk(**common, seconds=args.duration)
                lat = run["latency_us"]
                rows.append(
                    {
                        "variant": label,
                        "concurrency": c,
                        "rps": run["rps"],
                        "p50_ms": lat["p50"] / 1000,
                        "p99_ms": lat["p99"] / 1000,
                        "errors": run["error_count"],
                    }
                )
                progress.note(f"{run['rps']:,.0f} req/s · p50 {lat['p50'] / 1000:.3f} ms")
    return rows


def measure_cold_starts(procs, workdir, logs, upstream_port, progress) -> dict[str, list[float]]:
    """Spawn → first successful chat completion: into an empty state dir, then into an existing one."""
    times: dict[str, list[float]] = {"new (first start)": [], "existing (restart)": []}
    for index in range(COLD_STARTS):
        for label, state in (
            ("new (first start)", workdir / f"state-cold-{index}"),
            ("existing (restart)", workdir / "state-cold-0"),
        ):
            progress.step(f"cold start, {label.split()[0]} state dir ({index + 1}/{COLD_STARTS})")
            config = _write_config(workdir / f"cold-{index}.yaml", upstream_port, state)
            proc, _, seconds = start_gateway(procs, logs, config, f"cold-{label.split()[0]}-{index}")
            procs.stop(proc)
            times[label].append(seconds * 1000)
            progress.note(f"{seconds * 1000:.0f} ms")
    return times


def measure_litellm_cold_starts(procs, workdir, logs, script, *, upstream_port, progress) -> list[float]:
    times = []
    config = write_litellm_config(workdir / "litellm.yaml", upstream_port)
    for index in range(LITELLM_COLD_STARTS):
        progress.step(f"cold start, litellm ({index + 1}/{LITELLM_COLD_STARTS})")
        proc, _, seconds = start_litellm(procs, logs, script, config, f"cold-{index}")
        procs.stop(proc)
        times.append(seconds * 1000)
        progress.note(f"{seconds * 1000:.0f} ms")
    return times


def start_targets(procs, workdir, logs, *, upstream, upstream_port, litellm_script) -> dict[str, Target]:
    """direct, interlace (bare), interlace+policies (a virtual key, limits) and LiteLLM, each checked."""
    targets = {"direct": Target("direct", upstream_port, "echo", upstream)}
    config = _write_config(workdir / "interlace.yaml", upstream_port, workdir / "state")
    gateway, port, _ = start_gateway(procs, logs, config, "bench")
    targets["interlace"] = Target("interlace", port, "bench", gateway)
    config = _write_config(
        workdir / "interlace-policies.yaml", upstream_port, workdir / "state-policies", policies=True
    )
    key = create_key(config)  # before the gateway starts: its key cache loads every key at start-up
    gateway, port, _ = start_gateway(procs, logs, config, "policies", key=key)
    targets["interlace+policies"] = Target("interlace+policies", port, "bench", gateway, key)
    if litellm_script is not None:
        config = write_litellm_config(workdir / "litellm.yaml", upstream_port)
        proc, port, _ = start_litellm(procs, logs, litellm_script, config, "bench")
        targets["litellm"] = Target("litellm", port, "bench", proc, MASTER_KEY)
    for target in targets.values():
        check_chat(target.port, target.model, key=target.key)
    return targets


def compile_bytecode(notes: list[str]) -> None:
    """Write interlace's .pyc files, as installing a package does, so a cold start is not a compile.

    The editable install imports src/ directly; with PYTHONDONTWRITEBYTECODE set (as in some CI
    images) every start would compile ~230 modules from source (~0.4 s) that an installed gateway
    never compiles. LiteLLM's venv was installed by pip, which compiled it.
    """
    source = BENCH.parent / "src" / "interlace"
    done = subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(source)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        notes.append(f"compileall of {source} failed (cold starts include compiling): {done.stdout[-300:]}")


def run(args: argparse.Namespace, procs: Processes, workdir: Path) -> int:
    began = time.perf_counter()
    notes: list[str] = []
    args.notes = notes
    wrk = ensure_wrk(notes)
    compile_bytecode(notes)
    litellm_script = ensure_litellm(notes) if args.litellm else None
    logs = args.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    n_targets = 4 if args.litellm else 3
    extras = (2 * len(ROUTING_CONCURRENCY) + 3 * len(ROUTING_CONCURRENCY)) if args.extras else 0
    total = (
        2 * COLD_STARTS
        + (LITELLM_COLD_STARTS if args.litellm else 0)
        + args.repeat * len(args.concurrency) * n_targets
        + 1
        + extras
        + (len(_report.INTERLACES) if args.soak else 0)
    )
    progress = Progress(total)
    print(f"starting the fake upstream and the targets on {HOST} (logs in {logs})", file=sys.stderr)
    upstream, upstream_port = start_upstream(procs, logs, upstream_argv())
    cold = measure_cold_starts(procs, workdir, logs, upstream_port, progress)
    if litellm_script is not None:
        cold["litellm"] = measure_litellm_cold_starts(
            procs, workdir, logs, litellm_script, upstream_port=upstream_port, progress=progress
        )

    targets = start_targets(
        procs, workdir, logs, upstream=upstream, upstream_port=upstream_port, litellm_script=litellm_script
    )
    time.sleep(1.0)  # let start-up work (database, pool) settle before reading the idle RSS
    memory = {
        name: {"idle_rss_kib": t.proc.tree_rss_kib()} for name, t in targets.items() if name != "direct"
    }

    errors: list[str] = []
    runs = measure_throughput(
        args, targets=targets, upstream=upstream, wrk=wrk, progress=progress, errors=errors
    )
    for name, mem in memory.items():
        mem["after_load_rss_kib"] = targets[name].proc.tree_rss_kib()

    progress.step(f"streaming: {args.streams} sequential requests per target, alternating")
    samples = measure_streaming({n: (t.port, t.model, t.key) for n, t in targets.items()}, args.streams)
    streaming = _report.streaming_summary(samples)
    progress.note(
        ", ".join(f"{name} first chunk p50 {streaming[name]['ttfc']['p50']:.3f} ms" for name in targets)
    )
    soaked = soak(args, targets=targets, wrk=wrk, progress=progress) if args.soak else {}
    for name, mem in memory.items():
        mem["peak_rss_kib"] = targets[name].proc.peak_rss_kib()

    routing = observability = []
    if args.extras:
        gateway_port = targets["interlace"].port
        routing = measure_routing(args, gateway_port=gateway_port, wrk=wrk, progress=progress)
        observability = measure_observability(
            args,
            procs=procs,
            logs=logs,
            workdir=workdir,
            upstream_port=upstream_port,
            gateway_port=gateway_port,
            wrk=wrk,
            progress=progress,
        )

    result = {
        "machine": _report.machine_note(wrk_version(wrk)),
        "settings": {
            "duration": args.duration,
            "warmup": args.warmup,
            "repeat": args.repeat,
            "concurrency": args.concurrency,
            "streams": args.streams,
            "quick": args.quick,
            "soak": args.soak,
            "targets": list(targets),
            "wrk_threads": {str(c): wrk_threads(c) for c in args.concurrency},
            "upstream": " ".join(upstream.argv[1:]),
            "gateways": {name: " ".join(t.proc.argv) for name, t in targets.items() if name != "direct"},
        },
        "summary": _report.summarise(runs, args.concurrency),
        "memory": memory,
        "soak": soaked,
        "cold_start": {label: _report.spread(ms) for label, ms in cold.items()},
        "streaming": streaming,
        "routing": routing,
        "observability": observability,
        "runs": runs,
        "errors": errors,
        "notes": notes,
    }
    procs.stop_all()
    result["elapsed_s"] = round(time.perf_counter() - began, 1)
    md, js = _report.write(result, args.out)
    print(_report.render_markdown(result))
    print(f"wrote {md} and {js} in {result['elapsed_s']:.0f} s", file=sys.stderr)
    if errors:
        print("error responses during the load (see above): failing", file=sys.stderr)
        return 1
    return 0


def _terminate(signum: int, frame: object) -> None:
    del signum, frame
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    procs = Processes()
    with tempfile.TemporaryDirectory(prefix="interlace-bench-") as tmp:
        try:
            return run(args, procs, Path(tmp))
        except BenchError as exc:
            print(f"bench: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("bench: interrupted; stopping the processes it started", file=sys.stderr)
            return 130
        finally:
            procs.stop_all()


if __name__ == "__main__":
    sys.exit(main())
