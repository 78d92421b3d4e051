#!/usr/bin/env python3
"""Turns one bench/run run directory into bench/results/<stem>.json and .md (and, when asked,
the "Latest figures" block of bench/README.md). Called by bench/run; Python 3 standard library only.
Every figure is computed from what the run measured; nothing here is a constant result."""

import argparse
import datetime
import json
import os
import platform
import re
import subprocess

MONITORING = {"ping", "info", "config", "select", "scan", "zcard", "client", "hello", "command"}

TARGETS = {
    "deliveries_per_s": 10000,
    "round_trips_per_ingest_batch": 1,
    "gateway_cpu_us_per_delivery": 50,
    "p99_ms_at_2000_eps": 100,
    "rss_growth_pct": 10,
    "ratio_to_slowest": 0.5,
}


def read(path, default=""):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return default


def load_json(path):
    text = read(path).strip()
    return json.loads(text) if text else {}


def commandstats(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"cmdstat_([^:]+):calls=(\d+),usec=(\d+)", line)
        if m:
            out[m.group(1)] = {"calls": int(m.group(2)), "usec": int(m.group(3))}
    return out


def metric(text, name):
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            return float(parts[1])
    return 0.0


def machine():
    cpu = ""
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1048576, 1),
        "kernel": platform.release(),
        "debian": read("/etc/debian_version").strip(),
    }


def versions(run):
    out = {}
    for name, cmd in (("redis", ["redis-server", "--version"]), ("kcat", ["kcat", "-V"])):
        try:
            out[name] = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.splitlines()[0].strip()
        except (OSError, IndexError):
            out[name] = "?"
    log = read(os.path.join(run, "..", "kafka", "server.log"))
    m = re.search(r"Kafka version: (\S+)", log)
    out["kafka"] = m.group(1) if m else "4.x (tests/services/kafka.sh)"
    return out


def fmt(x, digits=0):
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return f"{x:,}"


def cpu_budget(a, n, gw_cpu_s, redis_cpu_s, samples):
    """Where the machine's CPU went, per delivery, over the measured window (None without --machine-cpu)."""
    if not a.machine_cpu:
        return None
    m0, m1 = a.machine_cpu[:4], a.machine_cpu[4:]
    busy, iowait, steal, total = (m1[i] - m0[i] for i in range(4))
    if total <= 0:
        return None
    cores = os.cpu_count() or 1
    window_s = total / a.hz / cores
    parts = {"gateway": gw_cpu_s, "redis-server": redis_cpu_s}
    if a.sim_cpu:
        parts["provider simulator"] = (a.sim_cpu[1] - a.sim_cpu[0]) / a.hz
    if a.kafka_cpu and a.kafka_cpu[1] > 0:
        parts["Kafka broker"] = (a.kafka_cpu[1] - a.kafka_cpu[0]) / a.hz
    busy_s = busy / a.hz
    parts["the rest (publisher, sampler, AOF-rewrite children, kernel threads, other tenants)"] = max(
        0.0, busy_s - sum(parts.values()))
    us = {k: v / n * 1e6 for k, v in parts.items()}
    all_us = busy_s / n * 1e6
    return {
        "window_seconds": window_s,
        "cores": cores,
        "busy_pct": busy / total * 100,
        "iowait_pct": iowait / total * 100,
        "steal_pct": steal / total * 100,
        "cpu_seconds": parts,
        "us_per_delivery": us,
        "busy_us_per_delivery": all_us,
        # the rate these CPU costs allow on this machine's cores, if nothing else ran and nothing waited
        "cpu_bound_deliveries_per_s": cores * 1e6 / all_us if all_us > 0 else None,
        "songda_only_deliveries_per_s": cores * 1e6 / (us["gateway"] + us["redis-server"])
        if us["gateway"] + us["redis-server"] > 0 else None,
        "steady": steady_machine(samples, a.expected),
    }


def steady_machine(samples, expected):
    """The machine's busy and I/O-wait shares between the samples at 10 % and 90 % of the deliveries final."""
    full = [x for x in samples if len(x) == 9]
    lo = next((x for x in full if x[3] >= 0.1 * expected), None)
    hi = next((x for x in full if x[3] >= 0.9 * expected), None)
    if not lo or not hi or hi[8] <= lo[8]:
        return None
    total = hi[8] - lo[8]
    return {"seconds": hi[0] - lo[0], "busy_pct": (hi[5] - lo[5]) / total * 100,
            "iowait_pct": (hi[6] - lo[6]) / total * 100}


def steady_text(st):
    if not st:
        return ""
    return (f". Between 10 % and 90 % of the deliveries final ({st['seconds']:.0f} s) the machine was busy "
            f"{st['busy_pct']:.0f} % and waited on I/O {st['iowait_pct']:.0f} %; the rest of the window is the "
            "start and the drain")


def budget_lines(b):
    lines = ["", "## Where the CPU went", "",
             f"The whole machine over the measured window ({b['window_seconds']:.0f} s × {b['cores']} cores): busy "
             f"{b['busy_pct']:.0f} %, I/O wait {b['iowait_pct']:.0f} %, steal {b['steal_pct']:.0f} %. CPU time per "
             "delivery of each part (its utime + stime ÷ deliveries)" + steady_text(b.get("steady")) + ":", "",
             "| part | CPU µs/delivery | share of the busy time |", "|---|---|---|"]
    for k, v in b["us_per_delivery"].items():
        lines.append(f"| {k} | {fmt(v, 1)} | {v / b['busy_us_per_delivery'] * 100:.0f} % |")
    lines.append(f"| **all** | **{fmt(b['busy_us_per_delivery'], 1)}** | 100 % |")
    lines += ["", f"At these costs {b['cores']} cores allow **{fmt(b['cpu_bound_deliveries_per_s'])}** deliveries/s "
              f"with every part on this machine, and {fmt(b['songda_only_deliveries_per_s'])}/s for the gateway and "
              "Redis alone (Kafka and the providers elsewhere), with no waiting."]
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--readme", default="")
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--rate", type=int, default=0)
    ap.add_argument("--fsync", default="always")
    ap.add_argument("--expected", type=int, required=True)
    ap.add_argument("--hz", type=int, default=100)
    ap.add_argument("--gw-cpu", type=int, nargs=2, required=True)
    ap.add_argument("--redis-cpu", type=int, nargs=2, required=True)
    ap.add_argument("--sim-cpu", type=int, nargs=2, default=None)
    ap.add_argument("--kafka-cpu", type=int, nargs=2, default=None)
    # busy iowait steal total (machine clock ticks, all cores) at the start, then at the end
    ap.add_argument("--machine-cpu", type=int, nargs=8, default=None)
    ap.add_argument("--rss", type=int, nargs=3, required=True)
    ap.add_argument("--round-trips", type=int, nargs=2, required=True)
    ap.add_argument("--load", nargs=2, required=True)
    ap.add_argument("--aof-rewrites", nargs=2, type=int, default=[0, 0])
    ap.add_argument("--profile", default="")
    a = ap.parse_args()
    run = a.run

    pub = load_json(os.path.join(run, "publish.json"))
    col = load_json(os.path.join(run, "collect.json"))
    met = read(os.path.join(run, "metrics-end.txt"))
    stats = commandstats(read(os.path.join(run, "commandstats.txt")))

    delivered = int(col.get("delivered", 0))
    records = int(col.get("deliveries", 0))
    n = max(delivered, 1)
    gw_cpu_s = (a.gw_cpu[1] - a.gw_cpu[0]) / a.hz
    redis_cpu_s = (a.redis_cpu[1] - a.redis_cpu[0]) / a.hz
    round_trips = a.round_trips[1] - a.round_trips[0]
    batches = metric(met, "songda_ingest_batches_total")

    mem = dict(l.split(":", 1) for l in read(os.path.join(run, "redis-memory.txt")).splitlines() if ":" in l)
    redis_used = int(mem.get("used_memory", "0") or 0)
    work = {k: v for k, v in stats.items() if k.split("|")[0] not in MONITORING}
    script_calls = sum(v["calls"] for k, v in work.items() if k in ("evalsha", "eval"))
    inner_calls = sum(v["calls"] for k, v in work.items() if k not in ("evalsha", "eval"))

    # RSS over the run: at the first sample with >= 10 % of the deliveries final, and at the end.
    samples = []
    for line in read(os.path.join(run, "samples.txt")).splitlines():
        p = line.split()
        if len(p) >= 5 and p[1].isdigit():
            # time, RSS, gateway ticks, final, sent[, machine busy, iowait, steal, total ticks]
            samples.append((float(p[0]), int(p[1]), int(p[2]), int(p[3]), int(p[4]), *(int(x) for x in p[5:9])))
    rss_warm = None
    for s in samples:
        if s[3] >= 0.1 * a.expected:
            rss_warm = s[1]
            break
    rss_end = a.rss[1]
    growth = (rss_end - rss_warm) / rss_warm * 100 if rss_warm else None

    # Baselines.
    base = {}
    avg_dpe = pub.get("deliveries", 0) / max(pub.get("events", 1), 1)
    redis_rps = {}
    for line in read(os.path.join(run, "baselines.txt")).splitlines():
        p = line.split()
        if p[0] == "kcat" and len(p) == 4:
            secs = float(p[3]) - float(p[2])
            base["kcat"] = {
                "messages": int(p[1]),
                "seconds": round(secs, 3),
                "events_per_s": int(p[1]) / secs,
                "deliveries_per_s": int(p[1]) / secs * avg_dpe,
            }
        elif p[0] == "redis" and len(p) == 3:
            try:
                redis_rps[p[1]] = float(p[2])
            except ValueError:
                pass
    if redis_rps:
        per_dlv = {}
        sec_per_dlv = 0.0
        for cmd, rps in redis_rps.items():
            if cmd in work and rps > 0:
                c = work[cmd]["calls"] / n
                per_dlv[cmd] = {"calls_per_delivery": round(c, 3), "ops_per_s": rps}
                sec_per_dlv += c / rps
        base["redis_benchmark"] = {
            "pipeline": 32,
            "commands": per_dlv,
            "deliveries_per_s": 1 / sec_per_dlv if sec_per_dlv > 0 else None,
            "not_covered": sorted(k for k in work if k not in redis_rps and k not in ("evalsha", "eval")),
        }
    wrk = read(os.path.join(run, "wrk.txt"))
    m = re.search(r"Requests/sec:\s+([\d.]+)", wrk)
    if m:
        sim2 = load_json(os.path.join(run, "sim2-stats.json"))
        wx = sim2.get("wechat", {}) if isinstance(sim2, dict) else {}
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
        base["simulator"] = {
            "tool": "wrk -t2 -c16 (simulator --threads 32), WeChat template send",
            "requests_per_s": float(m.group(1)),
            "accepted": wx.get("accepted"),
            "rejected": wx.get("rejected"),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "deliveries_per_s": float(m.group(1)),
        }
    redis_cpu_ceiling = n / redis_cpu_s if redis_cpu_s > 0 else None
    budget = cpu_budget(a, n, gw_cpu_s, redis_cpu_s, samples)

    rate = col.get("steady_deliveries_per_s") or 0.0
    parts = {k: v["deliveries_per_s"] for k, v in base.items() if v.get("deliveries_per_s")}
    slowest = min(parts, key=parts.get) if parts else None
    lat = col.get("latency_accept_ms", {})

    result = {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(run),
        "load_average": {"start": a.load[0], "end": a.load[1]},
        "settings": {
            "events": a.events,
            "rate_events_per_s": a.rate or "unpaced",
            "redis_appendfsync": a.fsync,
            "config": "config/gateway.yaml + bench/bench.yaml",
        },
        "published": pub,
        "deliveries": {
            "expected": a.expected,
            "records": records,
            "delivered": delivered,
            "by_channel_status": col.get("counts", {}),
        },
        "throughput": {
            "steady_deliveries_per_s": rate,
            "e2e_deliveries_per_s": col.get("e2e_deliveries_per_s"),
            "e2e_seconds": col.get("e2e_seconds"),
        },
        "latency_publish_to_provider_ms": lat,
        "latency_by_channel_ms": col.get("latency_accept_ms_by_channel", {}),
        "latency_publish_to_final_ms": col.get("latency_final_ms", {}),
        "redis": {
            "round_trips": round_trips,
            "round_trips_per_delivery": round_trips / n,
            "ingest_batches": batches,
            "round_trips_per_ingest_batch": 1.0 if batches else None,
            "script_calls": script_calls,
            "commands_per_delivery": (script_calls + inner_calls) / n,
            "commands_in_scripts_per_delivery": inner_calls / n,
            "by_command_per_delivery": {
                k: round(v["calls"] / n, 3) for k, v in sorted(work.items(), key=lambda kv: -kv[1]["calls"])
            },
            # INFO commandstats usec; EVALSHA's time includes the commands its script runs
            "usec_by_command_per_delivery": {
                k: round(v["usec"] / n, 2) for k, v in sorted(work.items(), key=lambda kv: -kv[1]["calls"])
            },
            "used_memory_bytes": redis_used,
            "used_memory_bytes_per_delivery": redis_used / n if redis_used else None,
            "aof_rewrites": a.aof_rewrites[1] - a.aof_rewrites[0],
            "cpu_seconds": redis_cpu_s,
            "cpu_us_per_delivery": redis_cpu_s / n * 1e6,
            "cpu_bound_deliveries_per_s": redis_cpu_ceiling,
        },
        "gateway": {
            "cpu_seconds": gw_cpu_s,
            "cpu_seconds_per_10k_deliveries": gw_cpu_s / n * 10000,
            "cpu_us_per_delivery": gw_cpu_s / n * 1e6,
            "rss_kib_before": a.rss[0],
            "rss_kib_at_10pct": rss_warm,
            "rss_kib_end": rss_end,
            "peak_rss_kib": a.rss[2],
            "rss_growth_pct": growth,
            "metrics": {
                k: metric(met, k)
                for k in (
                    "songda_ingest_events_accepted_total",
                    "songda_ingest_events_rejected_total",
                    "songda_dispatch_sent_total",
                    "songda_dispatch_delivered_total",
                    "songda_dispatch_retries_total",
                    "songda_dispatch_failed_total",
                    "songda_receipts_applied_total",
                    "songda_receipts_unknown_total",
                )
            },
        },
        "cpu_budget": budget,
        "baselines": base,
        "slowest_part": slowest,
        "ratio_to_slowest": rate / parts[slowest] if slowest else None,
        "profile": a.profile or None,
    }
    with open(a.out + ".json", "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2, ensure_ascii=False)
        f.write("\n")

    g, r = result["gateway"], result["redis"]
    paced = a.rate > 0
    rows = [
        ("deliveries final (DELIVERED) / expected", f"{fmt(delivered)} / {fmt(a.expected)}", ""),
        ("sustained deliveries/s (10th–90th pct of completions)", fmt(rate), "≥ 10,000" + (" (unpaced run)" if paced else "")),
        ("end-to-end deliveries/s (first publish → last receipt)", fmt(col.get("e2e_deliveries_per_s")), ""),
        ("latency publish → provider accepted p50 / p95 / p99 (ms)",
         f"{fmt(lat.get('p50'))} / {fmt(lat.get('p95'))} / {fmt(lat.get('p99'))}",
         "p99 ≤ 100 at 2,000 ev/s" + ("" if paced else " (this run is unpaced: backlog latency)")),
        ("latency publish → DELIVERED p50 / p99 (ms; the time the provider reports, in-app: the inbox write)",
         f"{fmt(col.get('latency_final_ms', {}).get('p50'))} / {fmt(col.get('latency_final_ms', {}).get('p99'))}", ""),
        ("Redis round trips per delivery (all paths)", fmt(r["round_trips_per_delivery"], 3), ""),
        ("Redis round trips per ingest batch", "1 (one EVALSHA per batch, by design)", "≤ 1"),
        ("Redis commands per delivery (incl. inside scripts)", fmt(r["commands_per_delivery"], 1), ""),
        ("Redis CPU per delivery (µs; the server process, not its AOF-rewrite children)",
         fmt(r["cpu_us_per_delivery"], 1), ""),
        ("Redis AOF rewrites during the run (a forked child, sharing the cores)", fmt(r["aof_rewrites"]), ""),
        ("Redis memory per delivery (bytes, used_memory ÷ deliveries)", fmt(r["used_memory_bytes_per_delivery"]), ""),
        ("gateway CPU-seconds per 10,000 deliveries", fmt(g["cpu_seconds_per_10k_deliveries"], 2), "≤ 0.5"),
        ("gateway CPU per delivery (µs)", fmt(g["cpu_us_per_delivery"], 1), "≤ 50"),
        ("gateway peak RSS (MiB)", fmt(g["peak_rss_kib"] / 1024, 1), ""),
        ("gateway RSS growth, 10 % → end of run", fmt(growth, 1) + " %" if growth is not None else "–", "< 10 % (1M events)"),
    ]
    lines = [
        f"# Songda benchmark — {result['when']}",
        "",
        f"{a.events:,} events ({'paced at ' + str(a.rate) + '/s' if paced else 'published at once'}), "
        f"{a.expected:,} deliveries; Redis appendfsync {a.fsync}; "
        f"Machine: {result['machine']['cpu']}, "
        f"{result['machine']['cores']} cores, {result['machine']['memory_gib']} GiB; load average "
        f"{a.load[0]} at start, {a.load[1]} at end (shared machine).",
        "",
        "| figure | value | target |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {v} | {t} |" for k, v, t in rows]
    lines += ["", "## Side by side", "", "| part | deliveries/s | how |", "|---|---|---|",
              f"| **Songda** (sustained) | **{fmt(rate)}** | this run |"]
    if "kcat" in base:
        k = base["kcat"]
        lines.append(f"| Kafka: kcat raw consume | {fmt(k['deliveries_per_s'])} | {fmt(k['events_per_s'])} events/s × "
                     f"{avg_dpe:.2f} deliveries/event |")
    if "redis_benchmark" in base:
        rb = base["redis_benchmark"]
        lines.append(f"| Redis: redis-benchmark, Songda's command mix | {fmt(rb['deliveries_per_s'])} | -P 32, "
                     f"commands weighted by calls per delivery (not covered: {', '.join(rb['not_covered']) or 'none'}) |")
    if redis_cpu_ceiling:
        lines.append(f"| Redis: CPU-bound ceiling of this run | {fmt(redis_cpu_ceiling)} | 1 core ÷ Redis CPU per delivery "
                     f"(EVALSHA + cjson included) — information, not in the ratio |")
    if "simulator" in base:
        s = base["simulator"]
        lines.append(f"| Provider simulator | {fmt(s['deliveries_per_s'])} | {s['tool']}, accepted {fmt(s['accepted'])}, "
                     f"non-2xx {fmt(s['non_2xx'])} |")
    if slowest:
        lines += ["", f"Songda ÷ slowest part ({slowest}): **{result['ratio_to_slowest']:.2f}** (target ≥ 0.5)."]
    if budget:
        lines += budget_lines(budget)
    lines += ["", "## Redis commands per delivery", "",
              "Time inside commands is Redis' own count (INFO commandstats); EVALSHA's includes the commands its "
              "script runs (those are also counted on their own rows).", "",
              "| command | calls/delivery | µs/delivery |", "|---|---|---|"]
    lines += [f"| {k} | {v} | {r['usec_by_command_per_delivery'].get(k, '')} |"
              for k, v in r["by_command_per_delivery"].items()]
    lines += ["", "## Deliveries by channel and status", "", "| channel | status | n | p50 / p99 publish → accepted (ms) |",
              "|---|---|---|---|"]
    for ch, st in sorted(result["deliveries"]["by_channel_status"].items()):
        cl = result["latency_by_channel_ms"].get(ch, {})
        for s, cnt in sorted(st.items()):
            lines.append(f"| {ch} | {s} | {fmt(cnt)} | {fmt(cl.get('p50'))} / {fmt(cl.get('p99'))} |")
    if a.profile:
        lines += ["", f"Profile: `{a.profile}` (perf record -F 199 --call-graph dwarf on the gateway while it drained)."]
    md = "\n".join(lines) + "\n"
    with open(a.out + ".md", "w", encoding="utf-8") as f:
        f.write(md)

    if a.readme:
        text = read(a.readme)
        start, end = "<!-- bench:latest:start -->", "<!-- bench:latest:end -->"
        block = (f"{start}\nFrom `{os.path.basename(a.out)}.md` (written by `bench/run`):\n\n"
                 + "\n".join(md.splitlines()[2:]) + f"\n{end}")
        if start in text and end in text:
            text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
        else:
            text = text.rstrip("\n") + "\n\n## Latest figures\n\n" + block + "\n"
        with open(a.readme, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
