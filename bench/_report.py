"""Summaries of the raw runs, the machine note, and the markdown/JSON report."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
from importlib import metadata
from pathlib import Path

TARGETS = ("direct", "interlace")
_PCTS = ("p50", "p90", "p99", "p99.9")


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (q in 0..1)."""
    data = sorted(values)
    if not data:
        return float("nan")
    pos = (len(data) - 1) * q
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def machine_note(wrk_version: str) -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        version = metadata.version("interlace")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "interlace": version,
        "kernel": platform.release(),
        "wrk": wrk_version,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def summarise(runs: list[dict], concurrency: list[int]) -> dict:
    """Per concurrency: each target's spread over the repeats, and the paired interlace - direct overhead."""
    out: dict[str, dict] = {}
    for c in concurrency:
        row: dict[str, dict] = {}
        for target in TARGETS:
            mine = [r for r in runs if r["concurrency"] == c and r["target"] == target]
            if not mine:
                continue
            row[target] = {
                "rps": spread([r["rps"] for r in mine]),
                **{p: spread([r["latency_us"][p] / 1000 for r in mine]) for p in _PCTS},
                "errors": sum(r["error_count"] for r in mine),
                "gateway_cpu_pct": statistics.median(r["gateway_cpu_pct"] for r in mine),
                "upstream_cpu_pct": statistics.median(r["upstream_cpu_pct"] for r in mine),
                "wrk_cpu_pct": statistics.median(r["wrk_cpu_pct"] for r in mine),
                "other_cpu_pct": statistics.median(r["other_cpu_pct"] for r in mine),
                "gateway_cpu_us_per_request": statistics.median(
                    r["gateway_cpu_us_per_request"] for r in mine
                ),
                "upstream_cpu_us_per_request": statistics.median(
                    r["upstream_cpu_us_per_request"] for r in mine
                ),
            }
        pairs = [
            (d, i)
            for d in runs
            for i in runs
            if d["concurrency"] == i["concurrency"] == c
            and d["repeat"] == i["repeat"]
            and (d["target"], i["target"]) == TARGETS
        ]
        if pairs:
            row["overhead"] = {
                "rps_ratio": spread([i["rps"] / d["rps"] for d, i in pairs if d["rps"]]),
                **{
                    f"added_{p}_ms": spread(
                        [(i["latency_us"][p] - d["latency_us"][p]) / 1000 for d, i in pairs]
                    )
                    for p in _PCTS
                },
                "p50_ratio": spread([i["latency_us"]["p50"] / d["latency_us"]["p50"] for d, i in pairs]),
            }
        out[str(c)] = row
    return out


def streaming_summary(samples: dict[str, dict]) -> dict:
    out: dict[str, dict] = {}
    for target, data in samples.items():
        out[target] = {
            key: {f"p{q}": quantile(data[key], q / 100) * 1000 for q in (50, 99)} for key in ("ttfc", "total")
        }
        out[target]["events_per_answer"] = data["events"]
        out[target]["count"] = len(data["ttfc"])
    if set(TARGETS) <= set(out):
        direct, gateway = out["direct"], out["interlace"]
        out["added"] = {
            key: {p: gateway[key][p] - direct[key][p] for p in ("p50", "p99")} for key in ("ttfc", "total")
        }
    return out


def _ms(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def _rng(stat: dict, fmt=_ms) -> str:
    if stat["n"] == 1:
        return fmt(stat["median"])
    return f"{fmt(stat['median'])} ({fmt(stat['min'])} … {fmt(stat['max'])})"


def _int(value: float) -> str:
    return f"{value:,.0f}"


def _ratio(value: float) -> str:
    return f"{value:.2f}x"


def _signed(value: float) -> str:
    return ("+" if value >= 0 else "-") + _ms(abs(value))


def _mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def render_markdown(result: dict) -> str:
    m, s = result["machine"], result["settings"]
    repeats = (
        "median of the repeats (min … max)" if s["repeat"] > 1 else "one run each (no spread: --repeat 1)"
    )
    lines = [
        "# Interlace gateway overhead",
        "",
        (
            f"{m['cores']} cores ({m['cpu_model']}) · Linux {m['kernel']} · Python {m['python']} · "
            f"interlace {m['interlace']} · {m['wrk']} · {m['date']}"
        ),
        "",
        (
            f"wrk runs of {s['duration']:g} s after a {s['warmup']:g} s warm-up, {s['repeat']} repeat(s), "
            f"concurrency {', '.join(map(str, s['concurrency']))}; direct = the fake upstream called "
            f"without the gateway; {repeats}. Latencies in ms."
        ),
        "",
        "## Throughput and latency",
        "",
        "| c | target | req/s | p50 | p99 | p99.9 | errors |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    summary = result["summary"]
    for c, row in summary.items():
        lines += [
            f"| {c} | {t} | {_rng(row[t]['rps'], _int)} | {_rng(row[t]['p50'])} | {_rng(row[t]['p99'])} "
            f"| {_rng(row[t]['p99.9'])} | {row[t]['errors']} |"
            for t in TARGETS
            if t in row
        ]
    lines += [
        "",
        "## Overhead: interlace - direct (paired per repeat)",
        "",
        "| c | req/s interlace ÷ direct | added p50 | added p99 | added p99.9 | p50 interlace ÷ direct |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for c, row in summary.items():
        if "overhead" in row:
            o = row["overhead"]
            lines.append(
                f"| {c} | {_rng(o['rps_ratio'], _ratio)} | {_rng(o['added_p50_ms'], _signed)} "
                f"| {_rng(o['added_p99_ms'], _signed)} | {_rng(o['added_p99.9_ms'], _signed)} "
                f"| {_rng(o['p50_ratio'], _ratio)} |"
            )
    lines += [
        "",
        "## CPU during the measured runs (% of one core, median; others = the rest of the machine)",
        "",
        "| c | target | gateway | upstream | wrk | others | gateway CPU µs/req | upstream CPU µs/req |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c, row in summary.items():
        for t in TARGETS:
            if t in row:
                r = row[t]
                per_req = f"{r['gateway_cpu_us_per_request']:.0f}" if t == "interlace" else "—"
                gateway = f"{r['gateway_cpu_pct']:.0f}%" if t == "interlace" else "—"
                lines.append(
                    f"| {c} | {t} | {gateway} | {r['upstream_cpu_pct']:.0f}% | {r['wrk_cpu_pct']:.0f}% "
                    f"| {r['other_cpu_pct']:.0f}% | {per_req} | {r['upstream_cpu_us_per_request']:.0f} |"
                )
    noisy = max(
        (r["other_cpu_pct"] for row in summary.values() for r in row.values() if "other_cpu_pct" in r),
        default=0,
    )
    if noisy > 25:
        lines.append(
            f"\nOther processes used up to {noisy:.0f}% of a core during the runs (median per cell): on "
            f"{m['cores']} cores that competes with the servers, so expect noise; rerun on a quiet machine."
        )
    mem, cold = result["memory"], result["cold_start"]
    lines += [
        "",
        "## Memory and cold start",
        "",
        (
            f"Gateway VmRSS: idle after start-up {_mib(mem['idle_rss_kib'])}, after the load "
            f"{_mib(mem['after_load_rss_kib'])}, peak (VmHWM) {_mib(mem['peak_rss_kib'])}."
        ),
        "",
        "Cold start = spawning `interlace serve` → its first successful chat completion (ms):",
        "",
        "| state dir | runs | min | median | max |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, stat in cold.items():
        lines.append(
            f"| {label} | {stat['n']} | {stat['min']:.0f} | {stat['median']:.0f} | {stat['max']:.0f} |"
        )
    st = result["streaming"]
    if st:
        n, events = st["direct"]["count"], st["interlace"]["events_per_answer"]
        lines += [
            "",
            f"## Streaming ({n} sequential streamed requests per target, {events} `data:` events each; ms)",
            "",
            "| target | first chunk p50 | first chunk p99 | total p50 | total p99 |",
            "|---|---:|---:|---:|---:|",
        ]
        for t in TARGETS:
            lines.append(
                f"| {t} | {_ms(st[t]['ttfc']['p50'])} | {_ms(st[t]['ttfc']['p99'])} "
                f"| {_ms(st[t]['total']['p50'])} | {_ms(st[t]['total']['p99'])} |"
            )
        a = st["added"]
        lines.append(
            f"| **added** | {_signed(a['ttfc']['p50'])} | {_signed(a['ttfc']['p99'])} "
            f"| {_signed(a['total']['p50'])} | {_signed(a['total']['p99'])} |"
        )
    lines += _routing_lines(result.get("routing") or [])
    lines += _observability_lines(result.get("observability") or [])
    if result["errors"]:
        lines += ["", "## Errors", "", *(f"- {e}" for e in result["errors"])]
    return "\n".join(lines) + "\n"


def _observability_lines(rows: list[dict]) -> list[str]:
    """The same gateway configuration with observability off, default, and with tracing."""
    if not rows:
        return []
    lines = [
        "",
        "## Observability overhead (one run each)",
        "",
        "| c | variant | req/s | p50 | p99 | errors |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['concurrency']} | {r['variant']} | {r['rps']:,.0f} | {r['p50_ms']:.3f} "
        f"| {r['p99_ms']:.3f} | {r['errors']} |"
        for r in rows
    ]
    return lines


def _routing_lines(rows: list[dict]) -> list[str]:
    """One deployment against ten (same upstream, least-in-flight), through the same gateway."""
    if not rows:
        return []
    lines = [
        "",
        "## Routing over 10 deployments (same gateway, same upstream; one run each)",
        "",
        "| c | deployments | req/s | p50 | p99 | errors |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['concurrency']} | {r['deployments']} | {r['rps']:,.0f} | {r['p50_ms']:.3f} "
        f"| {r['p99_ms']:.3f} | {r['errors']} |"
        for r in rows
    ]
    return lines


def write(result: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / "latest.md", out_dir / "latest.json"
    js.write_text(json.dumps(result, indent=2) + "\n")  # first: the raw figures survive any rendering bug
    md.write_text(render_markdown(result))
    return md, js
