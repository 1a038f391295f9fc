"""Flows benchmark: NATS JetStream → a fake AI step → NATS, against a bare nats-py loop (the ceiling).

    .venv/bin/python bench/flows.py [--messages 20000] [--max-in-flight 128] [--repeat 3] [--out DIR]
    make bench-flows BENCH_FLOWS_ARGS='--messages 50000'

It starts its own ``nats-server -js`` on a free 127.0.0.1 port (its store in a temp dir) and stops it
by PID at the end. For each repeat it publishes N messages to a fresh stream, then runs, each in its own
process so memory is measured apart:

- **bare**: the nats-py loop one would write by hand — a durable pull consumer, fetch a batch, publish
  each message to the output stream awaiting the JetStream acks, ack the inputs;
- **interlace**: the flow engine with Interlace's NATS source and sink and a fake AI step (it adds an
  ``answer`` field, no I/O: the cost measured is the engine's and the connectors', not a model's).

Each worker reports messages per second (from its first fetch to the last ack) and its peak RSS
(``VmHWM``). The report prints both and the ratio interlace / bare, on stdout and in
``DIR/flows.md`` / ``DIR/flows.json``. Not a test: machine noise is reported, not judged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
NATS_BINARIES = ("nats-server", "/usr/sbin/nats-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


# --- workers (run in their own process) ---


async def _drained(js: Any, stream: str, durable: str, count: int) -> None:
    """Wait until the durable consumer acknowledged all ``count`` messages."""
    from nats.js.errors import NotFoundError  # noqa: PLC0415

    while True:
        try:
            info = await js.consumer_info(stream, durable)
        except NotFoundError:  # the worker has not created it yet
            info = None
        if info and info.ack_floor.stream_seq >= count and not info.num_ack_pending and not info.num_pending:
            return
        await asyncio.sleep(0.01)


async def bare_worker(url: str, stream: str, count: int, batch: int) -> dict[str, Any]:
    import nats  # noqa: PLC0415
    from nats.errors import TimeoutError as NatsTimeout  # noqa: PLC0415

    nc = await nats.connect(url)
    js = nc.jetstream()
    sub = await js.pull_subscribe(f"{stream.lower()}.in", durable="bare", stream=stream)
    done = 0
    started = time.perf_counter()
    while done < count:
        try:
            msgs = await sub.fetch(batch, timeout=1)
        except NatsTimeout:
            continue
        await asyncio.gather(
            *(
                js.publish(
                    f"{stream.lower()}.out",
                    m.data,
                    headers={"Nats-Msg-Id": f"bare-{m.metadata.sequence.stream}"},
                )
                for m in msgs
            )
        )
        await asyncio.gather(*(m.ack() for m in msgs))
        done += len(msgs)
    await nc.flush()
    await _drained(js, stream, "bare", count)
    elapsed = time.perf_counter() - started
    await nc.close()
    return {"seconds": elapsed, "messages": count, "peak_rss_kib": peak_rss_kib()}


class FakeAiStep:
    name = "fake-ai"

    async def process(self, message: Any) -> list[Any]:
        payload = dict(message.payload)
        payload["answer"] = {"label": "billing", "confidence": 0.93}
        return [message.derive(payload)]


async def interlace_worker(url: str, stream: str, count: int, max_in_flight: int) -> dict[str, Any]:
    import nats  # noqa: PLC0415

    import interlace.config  # noqa: F401, PLC0415 - loads the config package before the connectors
    from interlace.config._flow_parts import RetryPolicy  # noqa: PLC0415
    from interlace.flows.connectors.nats import (  # noqa: PLC0415
        NatsSink,
        NatsSinkConfig,
        NatsSource,
        NatsSourceConfig,
    )
    from interlace.flows.engine import FlowEngine, StepSlot  # noqa: PLC0415
    from interlace.flows.testing import MemorySink  # noqa: PLC0415

    source = NatsSource(
        NatsSourceConfig(url=url, stream=stream, durable="flow", max_ack_pending=max(1000, max_in_flight))
    )
    sink = NatsSink(NatsSinkConfig(url=url, subject=f"{stream.lower()}.out"))
    engine = FlowEngine(
        "bench",
        source,
        [StepSlot(FakeAiStep(), RetryPolicy())],
        {"out": sink},
        dead_letter=MemorySink(),
        max_in_flight=max_in_flight,
    )
    nc = await nats.connect(url)
    stop = asyncio.Event()
    started = time.perf_counter()
    running = asyncio.create_task(engine.run(stop))
    await _drained(nc.jetstream(), stream, "flow", count)
    elapsed = time.perf_counter() - started
    stop.set()
    stats = await running
    await nc.close()
    return {"seconds": elapsed, "messages": count, "peak_rss_kib": peak_rss_kib(), "out": stats.out}


# --- orchestration ---


class NatsServer:
    def __init__(self) -> None:
        binary = next((b for b in (shutil.which(n) or n for n in NATS_BINARIES) if Path(b).exists()), None)
        if binary is None:
            sys.exit("nats-server is not installed (Debian: apt-get install nats-server)")
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.store = Path(tempfile.mkdtemp(prefix="bench-nats-"))
        self.process = subprocess.Popen(
            [binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        sys.exit(f"nats-server did not listen on {self.port}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=12)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.store, ignore_errors=True)


async def publish(url: str, stream: str, count: int) -> None:
    import nats  # noqa: PLC0415
    from nats.js.api import StorageType, StreamConfig  # noqa: PLC0415

    nc = await nats.connect(url)
    js = nc.jetstream()
    for name, subject in ((stream, f"{stream.lower()}.in"), (f"{stream}_OUT", f"{stream.lower()}.out")):
        await js.add_stream(StreamConfig(name=name, subjects=[subject], storage=StorageType.FILE))
    payload = json.dumps({"ticket": "My invoice was charged twice this month, please help."}).encode()
    for start in range(0, count, 1000):
        await asyncio.gather(
            *(js.publish(f"{stream.lower()}.in", payload) for _ in range(start, min(count, start + 1000)))
        )
    await nc.close()


def run_worker(role: str, url: str, stream: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        role,
        "--url",
        url,
        "--stream",
        stream,
        "--messages",
        str(args.messages),
        "--max-in-flight",
        str(args.max_in_flight),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        sys.exit(f"the {role} worker failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["rate"] = result["messages"] / result["seconds"]
    return result


def report(runs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    def med(role: str, key: str) -> float:
        return statistics.median(r[role][key] for r in runs)

    bare_rate, flow_rate = med("bare", "rate"), med("interlace", "rate")
    bare_rss, flow_rss = med("bare", "peak_rss_kib"), med("interlace", "peak_rss_kib")
    lines = [
        "# Flows: NATS → fake AI step → NATS",
        "",
        (
            f"{args.messages} messages per run, max_in_flight {args.max_in_flight}, {len(runs)} repeat(s), "
            "median shown; one nats-server with file storage on this machine."
        ),
        "",
        "| | messages/s | peak RSS (MiB) |",
        "|---|---|---|",
        f"| bare nats-py loop (ceiling) | {bare_rate:,.0f} | {bare_rss / 1024:.1f} |",
        f"| interlace flow | {flow_rate:,.0f} | {flow_rss / 1024:.1f} |",
        f"| ratio interlace / bare | {flow_rate / bare_rate:.2f} | {flow_rss / bare_rss:.2f} |",
        "",
        "Per repeat (bare, interlace messages/s): "
        + "; ".join(f"{r['bare']['rate']:,.0f}, {r['interlace']['rate']:,.0f}" for r in runs),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--max-in-flight", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    parser.add_argument("--worker", choices=["bare", "interlace"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--stream", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker == "bare":
        print(json.dumps(asyncio.run(bare_worker(args.url, args.stream, args.messages, args.max_in_flight))))
        return 0
    if args.worker == "interlace":
        result = asyncio.run(interlace_worker(args.url, args.stream, args.messages, args.max_in_flight))
        print(json.dumps(result))
        return 0

    server = NatsServer()
    runs: list[dict[str, Any]] = []
    try:
        for repeat in range(args.repeat):
            run: dict[str, Any] = {}
            roles = ("bare", "interlace") if repeat % 2 == 0 else ("interlace", "bare")
            for role in roles:
                stream = f"BENCH{repeat}{role.upper()}"
                asyncio.run(publish(server.url, stream, args.messages))
                run[role] = run_worker(role, server.url, stream, args)
                print(
                    f"[{repeat + 1}/{args.repeat}] {role}: {run[role]['rate']:,.0f} msg/s, "
                    f"peak RSS {run[role]['peak_rss_kib'] / 1024:.1f} MiB",
                    file=sys.stderr,
                )
            runs.append(run)
    finally:
        server.stop()
    text = report(runs, args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "flows.md").write_text(text)
    (args.out / "flows.json").write_text(
        json.dumps({"settings": vars(args) | {"out": str(args.out)}, "runs": runs}, indent=2)
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
