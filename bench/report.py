"""The table of ratios: built from the results dict, printed, and written as markdown and JSON."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    section: str
    measurement: str
    ours: str
    baseline: str
    ratio: float | None
    target: str = ""
    # None: informational; True/False: the target was met or not.
    met: bool | None = None

    @property
    def ratio_text(self) -> str:
        if self.ratio is None or math.isnan(self.ratio):
            return "-"
        if self.ratio < 0.01:
            return f"{self.ratio:.1e} (1/{1 / self.ratio:,.0f})"
        return f"{self.ratio:.3g}"

    @property
    def verdict(self) -> str:
        return "" if self.met is None else ("met" if self.met else "MISSED")


def _ms(d: dict[str, float], *keys: str) -> str:
    return " / ".join(_fmt_ms(d[k]) for k in keys)


def _fmt_ms(v: float) -> str:
    if v >= 1000:
        return f"{v / 1000:.2f} s"
    if v >= 100:
        return f"{v:.0f} ms"
    if v >= 10:
        return f"{v:.1f} ms"
    return f"{v:.2f} ms"


def _rows_enqueue(e: dict[str, Any]) -> list[Row]:
    c = e["settings"]["connections_or_threads"]
    api, direct, seed = e["api"], e["direct"], e["seed"]
    r = e["ratio_api_vs_direct"]
    rows = [
        Row(
            "Enqueue",
            f"req/s: API POST /api/workflows (wrk, {c} conns) vs DBOSClient.enqueue ({c} threads)",
            f"{api['rps_median']:.0f}/s",
            f"{direct['rps_median']:.0f}/s",
            r,
            ">= 0.70",
            r >= 0.7,
        ),
        Row(
            "Enqueue",
            f"req/s: API vs the seed's sync endpoint (same wrk load, {c} conns)",
            f"{api['rps_median']:.0f}/s",
            f"{seed['rps_median']:.0f}/s",
            e["ratio_api_vs_seed"],
            ">= 1.5",
            e["ratio_api_vs_seed"] >= 1.5,
        ),
    ]
    if "batch" in e:  # results from before the batch measurement have none
        b, items = e["batch"], e["settings"]["batch_items"]
        rows.append(
            Row(
                "Enqueue",
                f"workflows/s: POST /api/workflows/batch ({items} a request, {c} conns) vs "
                f"DBOSClient.enqueue one at a time ({c} threads)",
                f"{b['rps_median']:.0f}/s",
                f"{direct['rps_median']:.0f}/s",
                e["ratio_batch_vs_direct"],
                ">= 5",
                e["ratio_batch_vs_direct"] >= 5,
            )
        )
    rows += [
        Row(
            "Enqueue",
            "latency under that load p50 / p99: API vs seed server",
            f"{_fmt_ms(api['p50_ms_median'])} / {_fmt_ms(api['p99_ms_median'])}",
            f"{_fmt_ms(seed['p50_ms_median'])} / {_fmt_ms(seed['p99_ms_median'])}",
            api["p50_ms_median"] / seed["p50_ms_median"],
        ),
        Row(
            "Enqueue",
            "CPU per enqueue, ms: API process vs seed server process",
            f"{api['cpu_ms_per_request_median']:.3f}",
            f"{seed['cpu_ms_per_request_median']:.3f}",
            api["cpu_ms_per_request_median"] / seed["cpu_ms_per_request_median"],
        ),
        Row(
            "Enqueue",
            "CPU per enqueue, ms: API process vs direct-client process",
            f"{api['cpu_ms_per_request_median']:.3f}",
            f"{direct['cpu_ms_per_request_median']:.3f}",
            api["cpu_ms_per_request_median"] / direct["cpu_ms_per_request_median"],
        ),
        Row(
            "Enqueue",
            "CPU per enqueue, ms: API process + wrk (the load generator) vs direct-client process",
            f"{api['cpu_ms_per_request_median'] + api['wrk_cpu_ms_per_request_median']:.3f}",
            f"{direct['cpu_ms_per_request_median']:.3f}",
            (api["cpu_ms_per_request_median"] + api["wrk_cpu_ms_per_request_median"])
            / direct["cpu_ms_per_request_median"],
        ),
    ]
    return rows


def _rows_list(li: dict[str, Any]) -> list[Row]:
    sizes = li["sizes"]
    seed = sizes.get("10000", {}).get("seed_pattern")
    rows = []
    for size, entry in sizes.items():
        label = f"{int(size):,}"
        if "errors" in entry:
            rows.append(Row("List", f"page of 50 at {label}", "FAILED", str(entry["errors"]), None))
            continue
        http = entry["http_page"]
        if seed:
            rows.append(
                Row(
                    "List",
                    f"page of 50 with progress p50 / p95: GET /api/workflows at {label} "
                    "vs seed pattern (list all + get_event per row) at 10,000",
                    _ms(http, "p50_ms", "p95_ms"),
                    _ms(seed, "p50_ms", "p95_ms"),
                    http["p50_ms"] / seed["p50_ms"],
                )
            )
        direct = entry["direct_list_page"]
        base = sizes["10000"]["direct_list_page"]
        first = size == "10000"
        rows.append(
            Row(
                "List",
                "WorkflowQueries.list_page(limit=51), no HTTP, p50 / p95 at "
                + (label if first else f"{label} vs at 10,000"),
                _ms(direct, "p50_ms", "p95_ms"),
                "" if first else _ms(base, "p50_ms", "p95_ms"),
                None if first else direct["p50_ms"] / base["p50_ms"],
            )
        )
        filt = entry["http_filtered_status_error"]
        rows.append(
            Row(
                "List",
                f"GET /api/workflows?status=ERROR p50 / p95 at {label} vs unfiltered page",
                _ms(filt, "p50_ms", "p95_ms"),
                _ms(http, "p50_ms", "p95_ms"),
                filt["p50_ms"] / http["p50_ms"],
            )
        )
    return rows


def _rows_metrics(m: dict[str, Any]) -> list[Row]:
    rows = f"{m['rows']:,}"
    return [
        Row(
            "Metrics",
            f"GET /metrics p50 / p95 at {rows} rows: METRICS_CACHE_SECONDS=0 vs default cache",
            _ms(m["scrape_no_cache"], "p50_ms", "p95_ms"),
            _ms(m["scrape_cached"], "p50_ms", "p95_ms"),
            m["scrape_no_cache"]["p50_ms"] / m["scrape_cached"]["p50_ms"],
        ),
        Row(
            "Metrics",
            f"queue-stats query alone p50 / p95 ({m['in_flight_rows']} rows in flight)",
            _ms(m["queue_stats_query_direct"], "p50_ms", "p95_ms"),
            "",
            None,
        ),
    ]


def _rows_workers(w: dict[str, Any]) -> list[Row]:
    eff = w["efficiency"]
    rows = []
    for r in eff["runs"]:
        who = "bare DBOS" if r["worker"] != "ours" else "ours"
        rows.append(
            Row(
                "Worker",
                f"efficiency, {who}, {r['replicas']} worker(s) x {r['worker_concurrency']}, "
                f"{eff['num_steps']} x {eff['step_seconds']} s steps, poll "
                f"{r['polling_interval_sec']} s (overhead {r['overhead_per_workflow_s']:.2f} s/wf)",
                f"{r['throughput_per_s']:.2f} wf/s",
                f"ideal {r['ideal_per_s']:.2f} wf/s",
                r["efficiency"],
                ">= 0.90" if who == "ours" and r["polling_interval_sec"] < 1 else "",
                r["efficiency"] >= 0.9 if who == "ours" and r["polling_interval_sec"] < 1 else None,
            )
        )
    nw = w["nowait"]
    rows.append(
        Row(
            "Worker",
            f"no-wait workflow ({nw['num_steps']} steps x 0 s, {nw['workflows_per_round']} per "
            f"round, {nw['rounds']} rounds): our worker vs bare DBOS, median of per-round "
            f"makespan ratios (all rounds together: {nw['slowdown_total']:.3f})",
            f"{nw['ours_throughput_median']:.1f} wf/s",
            f"{nw['bare_throughput_median']:.1f} wf/s",
            nw["slowdown_median"],
            "<= 1.05",
            nw["slowdown_median"] <= 1.05,
        )
    )
    o, b = nw["ours_cpu_ms_per_workflow_median"], nw["bare_cpu_ms_per_workflow_median"]
    rows.append(
        Row(
            "Worker",
            "no-wait workflow: worker CPU per workflow, ms (ours vs bare DBOS)",
            f"{o:.2f}",
            f"{b:.2f}",
            o / b,
        )
    )
    return rows


def _rows_latency(la: dict[str, Any]) -> list[Row]:
    e = la["enqueue_to_start"]
    idle = la["idle"]
    rows = [
        Row(
            "Latency",
            f"enqueue-to-start p50 / p99, idle queue, poll {e['polling_interval_sec']} s "
            f"({e['n']:.0f} workflows) vs half a poll interval",
            _ms(e, "p50_ms", "p99_ms"),
            _fmt_ms(e["expected_mean_ms"]),
            e["p50_ms"] / e["expected_mean_ms"],
        )
    ]
    if "statements_per_s" in idle["ours"]:
        rows.append(
            Row(
                "Latency",
                "idle worker: SQL statements/s (server log; incl. BEGIN/COMMIT and pre-pings), "
                "ours vs bare DBOS",
                f"{idle['ours']['statements_per_s']:.1f}/s",
                f"{idle['bare']['statements_per_s']:.1f}/s",
                idle["ratio_statements"],
            )
        )
        rows.append(
            Row(
                "Latency",
                "idle worker: statements/s doing work (no BEGIN/COMMIT/ROLLBACK/pre-ping)",
                f"{idle['ours']['work_statements_per_s']:.1f}/s",
                f"{idle['bare']['work_statements_per_s']:.1f}/s",
                idle["ours"]["work_statements_per_s"]
                / max(idle["bare"]["work_statements_per_s"], 1e-9),
            )
        )
    if "statements_per_workflow" in idle["ours"]:
        rows.append(
            Row(
                "Latency",
                "SQL statements per 10-step workflow (worker's backends, idle rate subtracted)",
                f"{idle['ours']['statements_per_workflow']:.0f}"
                f" ({idle['ours']['transactions_per_workflow']:.0f} transactions)",
                f"{idle['bare']['statements_per_workflow']:.0f}"
                f" ({idle['bare']['transactions_per_workflow']:.0f} transactions)",
                idle["ours"]["statements_per_workflow"]
                / max(idle["bare"]["statements_per_workflow"], 1e-9),
            )
        )
    rows.append(
        Row(
            "Latency",
            "idle worker: transactions/s (pg_stat_database xact_commit + xact_rollback)",
            f"{idle['ours']['transactions_per_s']:.1f}/s",
            f"{idle['bare']['transactions_per_s']:.1f}/s",
            idle["ratio_transactions"],
        )
    )
    return rows


def _rows_wake(w: dict[str, Any]) -> list[Row]:
    lat, dr, idle = w["latency"], w["drain"], w["idle"]
    ours, bare, proc = lat["ours"], lat["bare"], lat["procrastinate"]
    c = w["worker_concurrency"]
    rows = [
        Row(
            "Wake",
            "enqueue-to-start p50 / p99, idle queue, 1 s polling: ours vs bare DBOS",
            _ms(ours, "p50_ms", "p99_ms"),
            _ms(bare, "p50_ms", "p99_ms"),
            ours["p50_ms"] / bare["p50_ms"],
            "p50 <= 20 ms, p99 <= 100 ms",
            ours["p50_ms"] <= 20 and ours["p99_ms"] <= 100,
        ),
        Row(
            "Wake",
            "enqueue-to-start p50 / p99, idle queue: ours vs procrastinate (LISTEN/NOTIFY)",
            _ms(ours, "p50_ms", "p99_ms"),
            _ms(proc, "p50_ms", "p99_ms"),
            ours["p50_ms"] / proc["p50_ms"],
        ),
    ]
    o, b, bf, pr = dr["ours"], dr["bare"], dr["bare_fast_poll"], dr["procrastinate"]
    rows += [
        Row(
            "Wake",
            f"drain, trivial workflows/s, 1 worker x {c}: ours ({o['workflows']}, 1 s polling, "
            f"median of {len(o.get('rounds', [o]))}) vs bare DBOS ({b['workflows']}, 1 s polling)",
            f"{o['per_s']:.0f}/s",
            f"{b['per_s']:.1f}/s",
            o["per_s"] / b["per_s"],
            ">= 150/s",
            o["per_s"] >= 150,
        ),
        Row(
            "Wake",
            f"drain: ours vs bare DBOS at 0.1 s polling ({bf['workflows']})",
            f"{o['per_s']:.0f}/s",
            f"{bf['per_s']:.0f}/s",
            o["per_s"] / bf["per_s"],
        ),
        Row(
            "Wake",
            f"drain: ours vs procrastinate ({pr['workflows']} jobs, concurrency {c})",
            f"{o['per_s']:.0f}/s",
            f"{pr['per_s']:.0f}/s",
            o["per_s"] / pr["per_s"],
        ),
        Row(
            "Wake",
            "worker CPU per trivial workflow, ms: ours vs bare DBOS (0.1 s polling)",
            f"{o['cpu_ms_per_workflow']:.2f}",
            f"{bf['cpu_ms_per_workflow']:.2f}",
            o["cpu_ms_per_workflow"] / bf["cpu_ms_per_workflow"],
        ),
        Row(
            "Wake",
            "worker CPU per trivial job, ms: ours vs procrastinate",
            f"{o['cpu_ms_per_workflow']:.2f}",
            f"{pr['cpu_ms_per_workflow']:.2f}",
            o["cpu_ms_per_workflow"] / pr["cpu_ms_per_workflow"],
        ),
        Row(
            "Wake",
            "drain: most workflows in flight in the worker at once (from the rows)",
            str(max(o["max_in_flight"].values())),
            f"limit {c}",
            None,
            f"<= {c}",
            max(o["max_in_flight"].values()) <= c,
        ),
    ]
    if "statements_per_s" in idle["ours"]:
        for base in ("bare", "procrastinate"):
            rows.append(
                Row(
                    "Wake",
                    f"idle worker, SQL statements/s (server log): ours vs {base}",
                    f"{idle['ours']['statements_per_s']:.1f}/s",
                    f"{idle[base]['statements_per_s']:.1f}/s",
                    idle["ours"]["statements_per_s"] / max(idle[base]["statements_per_s"], 1e-9),
                    "<= bare DBOS" if base == "bare" else "",
                    (idle["ours"]["statements_per_s"] <= idle["bare"]["statements_per_s"] * 1.05)
                    if base == "bare"
                    else None,
                )
            )
    rows.append(
        Row(
            "Wake",
            "idle worker, transactions/s: ours vs bare DBOS vs procrastinate",
            f"{idle['ours']['transactions_per_s']:.1f}/s",
            f"{idle['bare']['transactions_per_s']:.1f}/s, "
            f"{idle['procrastinate']['transactions_per_s']:.1f}/s",
            idle["ours"]["transactions_per_s"] / max(idle["bare"]["transactions_per_s"], 1e-9),
        )
    )
    t = w["trigger_cost"]["median"]
    labels = {
        "client": "DBOSClient.enqueue/s (8 threads, a backlog after 1 s)",
        "pgbench_each": "raw INSERTs/s (pgbench, 8 clients), every insert notifying",
        "pgbench_backlog": "raw INSERTs/s (pgbench, 8 clients) into a backlog",
    }
    for key, label in labels.items():
        rows.append(
            Row(
                "Wake",
                f"enqueue cost of the trigger: {label}, trigger vs none",
                f"{t[key]['trigger']:.0f}/s",
                f"{t[key]['none']:.0f}/s",
                t[key]["trigger"] / t[key]["none"],
            )
        )
    f = w["four_workers"]
    rows += [
        Row(
            "Wake",
            f"4 workers x {f['worker_concurrency']}, {f['workflows']} trivial workflows: "
            "max in flight per worker (from the rows)",
            ", ".join(str(v) for _, v in sorted(f["max_in_flight_per_worker"].items())),
            f"limit {f['worker_concurrency']}",
            None,
            f"<= {f['worker_concurrency']}",
            f["max_in_flight"] <= f["worker_concurrency"],
        ),
        Row(
            "Wake",
            "4 workers: drain rate in all vs 1 worker (2 CPUs shared with Postgres)",
            f"{f['per_s']:.0f}/s",
            f"{o['per_s']:.0f}/s",
            f["per_s"] / o["per_s"],
        ),
    ]
    return rows


def _rows_memory(rss: dict[str, float]) -> list[Row]:
    pairs = [
        ("api (enqueue load)", "seed server (enqueue load)"),
        ("api (list + metrics load)", "api (enqueue load)"),
        ("worker (I/O-bound load)", "bare DBOS worker (I/O-bound load)"),
        ("worker (no-wait load)", "bare DBOS worker (no-wait load)"),
        ("worker (idle)", "bare DBOS worker (idle)"),
    ]
    rows = []
    for ours, base in pairs:
        if ours in rss:
            b = rss.get(base)
            rows.append(
                Row(
                    "Memory",
                    f"peak RSS (VmHWM): {ours}" + (f" vs {base}" if b else ""),
                    f"{rss[ours]:.0f} MiB",
                    f"{b:.0f} MiB" if b else "",
                    rss[ours] / b if b else None,
                )
            )
    return rows


def _rows_pools(p: dict[str, Any]) -> list[Row]:
    rows = []
    for load in p["loads"]:
        new, old = load["new"], load["old"]
        rows += [
            Row(
                "Pools",
                f"{load['load']}: throughput, DBOS pool {load['new_pool']} vs {load['old_pool']}",
                f"{new['throughput_per_s']:.1f}/s",
                f"{old['throughput_per_s']:.1f}/s",
                load["throughput_ratio"],
                ">= 0.9",
                load["throughput_ratio"] >= 0.9,
            ),
            Row(
                "Pools",
                f"{load['load']}: peak connections (worker + 4 enqueuing)",
                f"{new['peak_connections']:.0f}",
                f"{old['peak_connections']:.0f}",
                load["connections_ratio"],
            ),
        ]
    return rows


def build_rows(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    if "enqueue" in results:
        rows += _rows_enqueue(results["enqueue"])
    if "list" in results:
        rows += _rows_list(results["list"])
        rows += _rows_metrics(results["list"]["metrics"])
    if "workers" in results:
        rows += _rows_workers(results["workers"])
    if "latency" in results:
        rows += _rows_latency(results["latency"])
    if "wake" in results:
        rows += _rows_wake(results["wake"])
    if "pools" in results:
        rows += _rows_pools(results["pools"])
    if "pooler" in results:
        from bench.pooler import rows as pooler_rows  # it imports Row from here

        rows += pooler_rows(results["pooler"])
    if "streams" in results:
        from bench.streams import rows as stream_rows  # bench.streams imports Row from here

        rows += stream_rows(results["streams"])
    rows += _rows_memory(results.get("peak_rss_mib", {}))
    return rows


def text_table(rows: list[Row]) -> str:
    headers = ("Measurement", "Ours", "Baseline", "Ratio", "Target")
    body = [
        (
            f"{r.section}: {r.measurement}",
            r.ours,
            r.baseline,
            r.ratio_text,
            f"{r.target} {r.verdict}".strip(),
        )
        for r in rows
    ]
    widths = [min(max(len(x[i]) for x in [headers, *body]), 100) for i in range(5)]
    lines = []
    for i, line in enumerate([headers, *body]):
        cells = [line[0][: widths[0]].ljust(widths[0])] + [
            c.ljust(w) for c, w in zip(line[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    out = [
        "| Section | Measurement | Ours | Baseline | Ratio | Target |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        target = f"{r.target} **{r.verdict}**" if r.verdict else r.target
        cells = (r.section, r.measurement, r.ours, r.baseline, r.ratio_text, target)
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out)


def write(out_dir: Path, stem: str, results: dict[str, Any], rows: list[Row]) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = results["meta"]
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(
        json.dumps({**results, "table": [asdict(r) for r in rows]}, indent=2, default=str) + "\n"
    )
    md_path = out_dir / f"{stem}.md"
    md_path.write_text(
        f"# Benchmark results ({meta['mode']} run)\n\n"
        f"`{meta['command']}` on {meta['started_utc']}, took {meta['duration_s']:.0f} s; "
        f"commit {meta['git_commit']}; {meta['cpus']} CPUs, load average "
        f"{meta['loadavg_start']} at start and {meta['loadavg_end']} at the end; "
        f"{meta['postgres']}; dbos {meta['dbos']}; Python {meta['python']}.\n\n"
        "Ratio is ours / baseline, measured in the same run. See docs/benchmarks.md for the "
        "method and what each row means.\n\n" + markdown_table(rows) + "\n"
    )
    return [json_path, md_path]
