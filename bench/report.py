#!/usr/bin/env python3
"""report.py RESULTS_CSV BENCH_DIR: bench/RESULTS.md and bench/handshakes.png
from the measurements bench/run.sh wrote (medians of the runs, with min and
max; ratios of tlsd to raw OpenSSL and to the best peer)."""

import csv
import datetime
import os
import platform
import statistics
import subprocess
import sys
from collections import defaultdict

PEERS = ["nginx", "nginx-stream", "haproxy", "stunnel", "hitch"]
SYSTEMS = ["raw", "tlsd"] + PEERS
RATE_SCENARIOS = ["tls1.3-full", "tls1.2-full", "tls1.3-resumed", "tls1.2-resumed"]


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def stats(values):
    return statistics.median(values), min(values), max(values)


def fmt(triple, digits=0):
    med, lo, hi = triple
    return f"{med:,.{digits}f} ({lo:,.{digits}f}–{hi:,.{digits}f})"


def main():
    csv_path, bench_dir = sys.argv[1], sys.argv[2]
    rows = list(csv.DictReader(open(csv_path)))
    by = defaultdict(list)
    for r in rows:
        by[(r["system"], r["scenario"])].append(r)
    runs = max((int(r["run"]) for r in rows), default=0)

    def col(system, scenario, key):
        return [float(r[key]) for r in by.get((system, scenario), [])]

    repo = os.path.dirname(os.path.abspath(bench_dir))
    commit = sh("git", "-C", repo, "rev-parse", "--short", "HEAD")
    dirty = sh("git", "-C", repo, "status", "--porcelain", "--untracked-files=no")
    out = []
    w = out.append
    w("# Benchmark results\n")
    w(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    w(f"- commit: {commit}{' (with uncommitted changes)' if dirty else ''}")
    w(f"- machine: {cpu_model()}, {os.cpu_count()} CPUs, kernel {platform.release()}, "
      f"{sh('openssl', 'version')}")
    w(f"- runs: {runs} per figure; each cell is the median (min–max) of the runs")
    w("- how: `bash bench/run.sh` (bench/README.md). Terminator and its backend on CPU 0, "
      "load generator (bench/loadgen.cc, one epoll thread, 32 connections in flight) on CPU 1; "
      "every connection: handshake, one HTTP/1.1 request, the response, close. ECDSA P-256 "
      "certificate; TLS 1.3 uses X25519; TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256. "
      "`raw` is OpenSSL alone, server and client in one process over a memory BIO pair, "
      "only the server's calls timed.\n")

    w("## Handshakes per CPU-second of the terminator's own processes\n")
    w("The load generator cannot saturate a terminator from one core (an OpenSSL client costs "
      "more than the server), so the figure that compares systems is handshakes completed per "
      "CPU-second the terminator's processes used (tlsd: the engine and the key holder; the "
      "backend's CPU is reported separately below).\n")
    w("| system | " + " | ".join(RATE_SCENARIOS) + " |")
    w("|---|" + "---|" * len(RATE_SCENARIOS))
    medians = {}
    for s in SYSTEMS:
        cells = []
        for sc in RATE_SCENARIOS:
            v = col(s, sc, "per_cpu_second")
            if v:
                t = stats(v)
                medians[(s, sc)] = t[0]
                cells.append(fmt(t))
            else:
                cells.append("–")
        w(f"| {s} | " + " | ".join(cells) + " |")
    w("")

    w("## Ratios (medians)\n")
    w("| scenario | tlsd / raw OpenSSL | best peer | tlsd / best peer |")
    w("|---|---|---|---|")
    goals = []
    for sc in RATE_SCENARIOS:
        t = medians.get(("tlsd", sc))
        raw = medians.get(("raw", sc))
        peers = [(medians[(p, sc)], p) for p in PEERS if (p, sc) in medians]
        best = max(peers) if peers else None
        r_raw = t / raw if t and raw else None
        r_peer = t / best[0] if t and best else None
        ratio = lambda r: f"{r:.2f}" if r is not None else "–"
        best_text = f"{best[1]} ({best[0]:,.0f})" if best else "–"
        w(f"| {sc} | {ratio(r_raw)} | {best_text} | {ratio(r_peer)} |")
        if sc.endswith("full"):
            goals.append((sc, r_raw, r_peer))
    w("")

    w("## Achieved rate (handshakes per second, load generator bound)\n")
    w("| system | " + " | ".join(RATE_SCENARIOS) + " | backend CPU-s per 1,000 (tls1.3-full) |")
    w("|---|" + "---|" * (len(RATE_SCENARIOS) + 1))
    for s in SYSTEMS:
        if s == "raw":
            continue
        cells = [fmt(stats(col(s, sc, "rate"))) if col(s, sc, "rate") else "–"
                 for sc in RATE_SCENARIOS]
        b = col(s, "tls1.3-full", "backend_cpu_seconds")
        n = col(s, "tls1.3-full", "completed")
        per_k = [1000 * bb / nn for bb, nn in zip(b, n) if nn > 0]
        cells.append(f"{statistics.median(per_k):.3f}" if per_k else "–")
        w(f"| {s} | " + " | ".join(cells) + " |")
    w("")

    w("## Latency, connect() to first response byte, at a fixed rate\n")
    w("| system | TLS 1.3 p50 ms | TLS 1.3 p99 ms | TLS 1.2 p50 ms | TLS 1.2 p99 ms |")
    w("|---|---|---|---|---|")
    for s in SYSTEMS:
        if s == "raw":
            continue
        cells = []
        for v in ["1.3", "1.2"]:
            for k in ["p50_ms", "p99_ms"]:
                c = col(s, f"tls{v}-latency", k)
                cells.append(fmt(stats(c), 2) if c else "–")
        w(f"| {s} | " + " | ".join(cells) + " |")
    w("")

    failed = sum(int(r["failed"]) for r in rows)
    w(f"Failed connections over the whole run: {failed}.\n")

    w("## Goals (issue 8)\n")
    for sc, r_raw, r_peer in goals:
        if r_raw is None or r_peer is None:
            continue
        w(f"- {sc}: tlsd at {100 * r_raw:.0f}% of raw OpenSSL (goal ≥ 95%: "
          f"{'met' if r_raw >= 0.95 else 'missed'}); {r_peer:.2f}× the best peer "
          f"(goal ≥ 1.2×: {'met' if r_peer >= 1.2 else 'missed'}).")
    w("")

    with open(os.path.join(bench_dir, "RESULTS.md"), "w") as f:
        f.write("\n".join(out) + "\n")

    # The plot: handshakes per CPU-second per system, one group per scenario.
    data = os.path.join(bench_dir, "out", "plot.dat")
    with open(data, "w") as f:
        f.write("system " + " ".join(RATE_SCENARIOS) + "\n")
        for s in SYSTEMS:
            f.write(s + " " + " ".join(f"{medians.get((s, sc), 0):.0f}" for sc in RATE_SCENARIOS)
                    + "\n")
    png = os.path.join(bench_dir, "handshakes.png")
    script = f"""
set terminal pngcairo size 1100,600 noenhanced
set output '{png}'
set title 'Handshakes per CPU-second of the terminator (median of {runs} runs, {commit})'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right
set ylabel 'handshakes / CPU-second'
set yrange [0:*]
set grid ytics
plot for [i=2:{1 + len(RATE_SCENARIOS)}] '{data}' using i:xtic(1) title columnheader(i)
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


if __name__ == "__main__":
    main()
