"""Summaries of the raw runs, the machine note, and the markdown/JSON report."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
from importlib import metadata
from pathlib import Path

TARGETS = ("direct", "interlace", "interlace+policies", "litellm")
GATEWAYS = TARGETS[1:]
INTERLACES = ("interlace", "interlace+policies")
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


def _paired(runs: list[dict], c: int, first: str, second: str) -> list[tuple[dict, dict]]:
    """Runs of two targets at concurrency c from the same repeat (seconds apart)."""
    return [
        (a, b)
        for a in runs
        for b in runs
        if a["concurrency"] == b["concurrency"] == c
        and a["repeat"] == b["repeat"]
        and (a["target"], b["target"]) == (first, second)
    ]


def summarise(runs: list[dict], concurrency: list[int]) -> dict:
    """Per concurrency: each target's spread over the repeats; each gateway's paired overhead over
    direct (``overhead``) and each Interlace's paired ratio to LiteLLM (``vs_litellm``)."""
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
                **{
                    key: statistics.median(r[key] for r in mine)
                    for key in (
                        "gateway_cpu_pct",
                        "upstream_cpu_pct",
                        "wrk_cpu_pct",
                        "other_cpu_pct",
                        "gateway_cpu_us_per_request",
                        "upstream_cpu_us_per_request",
                    )
                },
            }
        overhead, versus = {}, {}
        for gateway in GATEWAYS:
            pairs = _paired(runs, c, "direct", gateway)
            if pairs:
                overhead[gateway] = {
                    "rps_ratio": spread([i["rps"] / d["rps"] for d, i in pairs if d["rps"]]),
                    **{
                        f"added_{p}_ms": spread(
                            [(i["latency_us"][p] - d["latency_us"][p]) / 1000 for d, i in pairs]
                        )
                        for p in _PCTS
                    },
                    "p50_ratio": spread([i["latency_us"]["p50"] / d["latency_us"]["p50"] for d, i in pairs]),
                }
        for mine in INTERLACES:
            pairs = _paired(runs, c, "litellm", mine)
            if pairs:
                versus[mine] = {
                    "rps_ratio": spread([i["rps"] / lt["rps"] for lt, i in pairs if lt["rps"]]),
                    "p50_ratio": spread(
                        [i["latency_us"]["p50"] / lt["latency_us"]["p50"] for lt, i in pairs]
                    ),
                }
        row["overhead"], row["vs_litellm"] = overhead, versus
        out[str(c)] = row
    return out


def streaming_summary(samples: dict[str, dict]) -> dict:
    out: dict[str, dict] = {}
    for target, data in samples.items():
        out[target] = {
            key: {f"p{q}": quantile(data[key], q / 100) * 1000 for q in (50, 99)}
            for key in ("ttfc", "total", "gap")
        }
        out[target]["events_per_answer"] = data["events"]
        out[target]["failures"] = data.get("failures", 0)
        out[target]["last_error"] = data.get("last_error")
        out[target]["count"] = len(data["ttfc"])
    if "direct" in out:
        out["added"] = {
            gateway: {
                key: {p: out[gateway][key][p] - out["direct"][key][p] for p in ("p50", "p99")}
                for key in ("ttfc", "total", "gap")
            }
            for gateway in GATEWAYS
            if gateway in out
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


def _kib_ratio(a: int | None, b: int | None) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def render_markdown(result: dict) -> str:  # noqa: PLR0912 - one table after another
    m, s = result["machine"], result["settings"]
    repeats = (
        "median of the repeats (min … max)" if s["repeat"] > 1 else "one run each (no spread: --repeat 1)"
    )
    lines = [
        "# Interlace gateway overhead, side by side with LiteLLM",
        "",
        (
            f"{m['cores']} cores ({m['cpu_model']}) · Linux {m['kernel']} · Python {m['python']} · "
            f"interlace {m['interlace']} · {m['wrk']} · {m['date']} · load average at start "
            f"{' '.join(m.get('loadavg_at_start', []))}"
        ),
        "",
        (
            f"wrk runs of {s['duration']:g} s after a {s['warmup']:g} s warm-up, {s['repeat']} repeat(s), "
            f"concurrency {', '.join(map(str, s['concurrency']))}; direct = the fake upstream called "
            "without a gateway; interlace = no auth; interlace+policies = a virtual key (auth.virtual_keys), "
            "per-key and per-model rate limits (not reached), metrics, request log and audit log on; "
            f"litellm = the LiteLLM proxy, one worker, master key, no database, retries off; {repeats}. "
            "Latencies in ms."
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
    lines += _targets_lines(result)
    lines += [
        "",
        "## Overhead: gateway - direct (paired per repeat)",
        "",
        "| c | gateway | req/s ÷ direct | added p50 | added p99 | added p99.9 | p50 ÷ direct |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for c, row in summary.items():
        for gateway, o in row.get("overhead", {}).items():
            lines.append(
                f"| {c} | {gateway} | {_rng(o['rps_ratio'], _ratio)} | {_rng(o['added_p50_ms'], _signed)} "
                f"| {_rng(o['added_p99_ms'], _signed)} | {_rng(o['added_p99.9_ms'], _signed)} "
                f"| {_rng(o['p50_ratio'], _ratio)} |"
            )
    if any(row.get("vs_litellm") for row in summary.values()):
        lines += [
            "",
            "## Interlace ÷ LiteLLM (paired per repeat; one worker process each)",
            "",
            "| c | interlace variant | req/s ÷ LiteLLM's | p50 ÷ LiteLLM's |",
            "|---:|---|---:|---:|",
        ]
        for c, row in summary.items():
            for mine, v in row.get("vs_litellm", {}).items():
                lines.append(
                    f"| {c} | {mine} | {_rng(v['rps_ratio'], _ratio)} | {_rng(v['p50_ratio'], _ratio)} |"
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
                per_req = f"{r['gateway_cpu_us_per_request']:.0f}" if t != "direct" else "—"
                gateway = f"{r['gateway_cpu_pct']:.0f}%" if t != "direct" else "—"
                lines.append(
                    f"| {c} | {t} | {gateway} | {r['upstream_cpu_pct']:.0f}% | {r['wrk_cpu_pct']:.0f}% "
                    f"| {r['other_cpu_pct']:.0f}% | {per_req} | {r['upstream_cpu_us_per_request']:.0f} |"
                )
    noisy = max(
        (
            r["other_cpu_pct"]
            for row in summary.values()
            for r in row.values()
            if isinstance(r, dict) and "other_cpu_pct" in r
        ),
        default=0,
    )
    if noisy > 25:
        lines.append(
            f"\nOther processes used up to {noisy:.0f}% of a core during the runs (median per cell): on "
            f"{m['cores']} cores that competes with the servers, so expect noise; rerun on a quiet machine."
        )
    mem, cold = result["memory"], result["cold_start"]
    lit = mem.get("litellm", {})
    lines += [
        "",
        "## Memory (VmRSS of the process and its children)",
        "",
        "| target | idle after start-up | after the load | peak (VmHWM) | idle ÷ LiteLLM's |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in mem.items():
        lines.append(
            f"| {name} | {_mib(r['idle_rss_kib'])} | {_mib(r.get('after_load_rss_kib'))} "
            f"| {_mib(r.get('peak_rss_kib'))} | {_kib_ratio(r['idle_rss_kib'], lit.get('idle_rss_kib'))} |"
        )
    if result.get("soak"):
        lines += [
            "",
            "Soak (c=16, after the throughput and a warm-up of the same load): RSS → after the soak",
            "",
            "| target | warm-up | requests | req/s | errors | warmed | after | max | growth | spools |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, r in result["soak"].items():
            b, a = r["rss_before_kib"], r["rss_after_kib"]
            growth = f"{100 * (a - b) / b:+.1f} %" if a and b else "n/a"
            lines.append(
                f"| {name} | {r.get('warmup_s', 0):.0f} s | {r['requests']:,} | {r.get('rps', 0):,.0f} "
                f"| {r['errors']} | {_mib(b)} | {_mib(a)} | {_mib(r.get('rss_max_kib'))} | {growth} "
                f"| {r.get('spool_files', 'n/a')} |"
            )
    lines += [
        "",
        "## Cold start: spawning the server → its first successful chat completion (ms)",
        "",
        "| target, state dir | runs | min | median | max |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, stat in cold.items():
        name = label if label == "litellm" else f"interlace, {label}"
        lines.append(
            f"| {name} | {stat['n']} | {stat['min']:.0f} | {stat['median']:.0f} | {stat['max']:.0f} |"
        )
    st = result["streaming"]
    if st:
        present = [t for t in TARGETS if t in st]
        n, events = st["direct"]["count"], st["direct"]["events_per_answer"]
        lines += [
            "",
            f"## Streaming ({n} sequential streamed requests per target, {events} `data:` events each; ms)",
            "",
            (
                "| target | first chunk p50 | first chunk p99 | gap between chunks p50 | gap p99 "
                "| total p50 | total p99 |"
            ),
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for t in present:
            lines.append(
                f"| {t} | {_ms(st[t]['ttfc']['p50'])} | {_ms(st[t]['ttfc']['p99'])} "
                f"| {_ms(st[t]['gap']['p50'])} | {_ms(st[t]['gap']['p99'])} "
                f"| {_ms(st[t]['total']['p50'])} | {_ms(st[t]['total']['p99'])} |"
            )
        for gateway, a in st.get("added", {}).items():
            lines.append(
                f"| **{gateway} - direct** | {_signed(a['ttfc']['p50'])} | {_signed(a['ttfc']['p99'])} "
                f"| {_signed(a['gap']['p50'])} | {_signed(a['gap']['p99'])} "
                f"| {_signed(a['total']['p50'])} | {_signed(a['total']['p99'])} |"
            )
        lines += [
            f"\n{t}: {st[t]['failures']} streamed requests answered with an error "
            f"(last: {st[t]['last_error']})"
            for t in present
            if st[t].get("failures")
        ]
    lines += _routing_lines(result.get("routing") or [])
    lines += _observability_lines(result.get("observability") or [])
    if result.get("notes"):
        lines += ["", "## Notes", "", *(f"- {n}" for n in result["notes"])]
    if result["errors"]:
        lines += ["", "## Errors", "", *(f"- {e}" for e in result["errors"])]
    return "\n".join(lines) + "\n"


def _targets_lines(result: dict) -> list[str]:
    """The performance issue's targets for interlace+policies, with this run's figures (medians)."""
    summary, mine = result["summary"], "interlace+policies"
    rows: list[tuple[str, str, bool | None]] = []

    def check(label: str, value: float | None, goal: float, fmt: str, *, at_most: bool = True) -> None:
        if value is None:
            rows.append((label, "not measured", None))
            return
        rows.append((label, fmt.format(value), value <= goal if at_most else value >= goal))

    one = summary.get("1", {}).get("overhead", {}).get(mine)
    check("added latency at c=1, p50 ≤ 0.3 ms", one and one["added_p50_ms"]["median"], 0.3, "{:+.2f} ms")
    check("added latency at c=1, p99 ≤ 2 ms", one and one["added_p99_ms"]["median"], 2.0, "{:+.2f} ms")
    versus = summary.get("64", {}).get("vs_litellm", {}).get(mine)
    check(
        "req/s at c=64 ≥ 10x LiteLLM's (one worker each)",
        versus and versus["rps_ratio"]["median"],
        10.0,
        "{:.1f}x",
        at_most=False,
    )
    memory = result["memory"]
    idle, theirs = memory.get(mine, {}).get("idle_rss_kib"), memory.get("litellm", {}).get("idle_rss_kib")
    check("idle RSS ≤ 1/5 of LiteLLM's", idle / theirs if idle and theirs else None, 0.2, "{:.2f}x")
    soaked = result.get("soak", {}).get(mine)
    growth = None
    if soaked and soaked["rss_before_kib"] and soaked["rss_after_kib"]:
        growth = 100 * (soaked["rss_after_kib"] - soaked["rss_before_kib"]) / soaked["rss_before_kib"]
    check(
        f"RSS growth over the soak ({soaked['requests']:,} requests) ≤ 5 %" if soaked else "soak",
        growth,
        5.0,
        "{:+.1f} %",
    )
    added = result["streaming"].get("added", {}).get(mine) if result["streaming"] else None
    check(
        "streaming: first chunk ≤ 1 ms after direct's (p50)",
        added and added["ttfc"]["p50"],
        1.0,
        "{:+.2f} ms",
    )
    cold = result["cold_start"].get("existing (restart)")
    check("cold start ≤ 1.5 s (restart, median)", cold and cold["median"] / 1000, 1.5, "{:.2f} s")
    marks = {True: "met", False: "**not met**", None: "—"}
    return [
        "",
        "## The performance issue's targets (interlace+policies, medians of this run)",
        "",
        "| target | measured | |",
        "|---|---:|---|",
        *(f"| {label} | {value} | {marks[ok]} |" for label, value, ok in rows),
    ]


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
