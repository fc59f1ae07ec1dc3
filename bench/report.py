#!/usr/bin/env python3
"""report.py RESULTS_CSV BENCH_DIR: bench/RESULTS.md and bench/handshakes.png
from the measurements bench/run.sh wrote (medians of the runs, with min and
max; ratios of tlsd to raw OpenSSL and to the best peer). Next to RESULTS_CSV
it also reads memory.csv and tlsd-status.json (bench/run.sh) and, if present,
vm-bulk.csv and vm-handoff.csv (bench/vm-bulk.sh)."""

import csv
import datetime
import json
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


def read_csv(path):
    try:
        return list(csv.DictReader(open(path)))
    except OSError:
        return []


def gib_cpu(rows, key):
    """CPU-seconds per GiB moved, per run."""
    return [float(r[key]) / (int(r["bytes"]) / 2**30) for r in rows if int(r["bytes"]) > 0]


def main():
    csv_path, bench_dir = sys.argv[1], sys.argv[2]
    out_dir = os.path.dirname(os.path.abspath(csv_path))
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

    w("## Bulk: one 64 MiB file over TLS 1.3, host (tlsd relays: no kTLS here)\n")
    w("Two downloads at a time for each measurement; bytes count every plaintext byte the "
      "clients read, finished files or not. tlsd's backend is `tlsd-demo-backend --file` "
      "(sendfile into its end of the relay's socketpair); the proxies' backend is plain nginx "
      "with sendfile; nginx serves the file itself. CPU per GiB: the terminator's own "
      "processes, and its backend's separately.\n")
    w("| system | MiB/s | terminator CPU-s per GiB | backend CPU-s per GiB |")
    w("|---|---|---|---|")
    bulk = {}
    for s in SYSTEMS:
        rs = by.get((s, "bulk"), [])
        if not rs:
            continue
        term = gib_cpu(rs, "cpu_seconds")
        back = gib_cpu(rs, "backend_cpu_seconds")
        bulk[s] = statistics.median(term)
        w(f"| {s} | {fmt(stats([float(r['mib_per_s']) for r in rs]))} | {fmt(stats(term), 3)} | "
          f"{fmt(stats(back), 3) if any(back) else '–'} |")
    peers_bulk = [(bulk[p], p) for p in PEERS if p in bulk]
    if "tlsd" in bulk and peers_bulk:
        best = min(peers_bulk)
        w(f"\ntlsd's relay uses {bulk['tlsd'] / best[0]:.2f}× the CPU per GiB of the most "
          f"frugal peer ({best[1]}, {best[0]:.3f} s/GiB).\n")
    else:
        w("")

    w("## tlsd: handoff time and memory\n")
    status_path = os.path.join(out_dir, "tlsd-status.json")
    try:
        st = json.load(open(status_path))
        for svc in st["services"]:
            if svc["name"] == "bench":
                w(f"- handoff (handshake done → the worker holds the connection), service `bench`, "
                  f"over the whole tlsd run ({svc['outcomes']['relay']:,} relayed, "
                  f"{svc['outcomes']['handed-off']:,} handed off with kTLS): p50 "
                  f"{svc['handoff_us']['p50']:.1f} µs, p99 {svc['handoff_us']['p99']:.1f} µs "
                  "(`tlsctl status`). On this host that is the relay's socketpair handed over; the "
                  "kTLS handoff is in the VM section below.")
    except (OSError, KeyError, ValueError):
        w("- handoff: no tlsd-status.json (tlsd not in this run)")
    mem = read_csv(os.path.join(out_dir, "memory.csv"))
    labels = {
        "tlsd-engine-rss-tls1.3-in-flight": "tlsd engine VmRSS per in-flight TLS 1.3 handshake",
        "raw-openssl-heap-tls1.3-in-flight": "raw OpenSSL heap per in-flight TLS 1.3 server handshake",
        "raw-openssl-heap-tls1.2-in-flight": "raw OpenSSL heap per in-flight TLS 1.2 server handshake",
    }
    for m in mem:
        w(f"- {labels.get(m['what'], m['what'])}: {int(m['per_connection_bytes']):,} bytes "
          f"({int(m['count']):,} held; {int(m['bytes_before']):,} → {int(m['bytes_with']):,} bytes)")
    vm_mem = read_csv(os.path.join(out_dir, "vm-memory.csv"))
    for m in vm_mem:
        w(f"- {m['kernel']} VM, per handed-off kTLS connection: tlsd VmRSS "
          f"{int(m['idle_bytes']):,} bytes idle, {int(m['loaded_bytes']):,} bytes with "
          f"{int(m['held']):,} connections held by a worker: {float(m['per_connection_bytes']):,.1f} "
          "bytes per connection (bench/vm-bulk.sh runs the test suite's HandoffMemoryTest)")
    if not vm_mem:
        w("- per handed-off kTLS connection: not measured in this run (bench/vm-bulk.sh)")
    w("")

    vm = read_csv(os.path.join(out_dir, "vm-bulk.csv"))
    vm_goal = []  # (kernel, throughput ratio, CPU ratio) of kTLS against the relay
    if vm:
        w("## Bulk in the VM (kTLS): ratios only\n")
        w("QEMU/TCG emulation (bench/vm-bulk.sh) distorts absolute figures; compare the "
          "systems within a kernel. CPU-s per GiB counts the terminator and its backend "
          "together: with kTLS the encryption happens in the backend's sendfile.\n")
        w("| kernel | system | MiB/s | terminator + backend CPU-s per GiB |")
        w("|---|---|---|---|")
        per = defaultdict(dict)
        for kernel in sorted({r["kernel"] for r in vm}):
            for system in ["ktls", "relay", "stunnel"]:
                rs = [r for r in vm if r["kernel"] == kernel and r["system"] == system]
                if not rs:
                    continue
                mib = stats([float(r["mib_per_s"]) for r in rs])
                gib = stats([float(r["cpu_seconds_per_gib"]) for r in rs])
                per[kernel][system] = (mib[0], gib[0])
                w(f"| {kernel} | {system} | {fmt(mib, 1)} | {fmt(gib, 2)} |")
        w("")
        for kernel, d in per.items():
            if "ktls" in d:
                for other in ["relay", "stunnel"]:
                    if other in d:
                        r_mib = d["ktls"][0] / d[other][0]
                        r_cpu = d[other][1] / d["ktls"][1]
                        w(f"- {kernel}: kTLS / {other}: {r_mib:.2f}× the MiB/s, "
                          f"{r_cpu:.2f}× less CPU per GiB")
                        if other == "relay":
                            vm_goal.append((kernel, r_mib, r_cpu))
        w("")
    vm_handoff = read_csv(os.path.join(out_dir, "vm-handoff.csv"))
    if vm_handoff:
        for kernel in sorted({r["kernel"] for r in vm_handoff}):
            p50 = [float(r["handoff_p50_us"]) for r in vm_handoff if r["kernel"] == kernel]
            w(f"- {kernel}: kTLS handoff p50 {fmt(stats(p50), 1)} µs (tlsd in the VM, under TCG)")
        w("")

    w("## Goals (issue 8)\n")
    for sc, r_raw, r_peer in goals:
        if r_raw is None or r_peer is None:
            continue
        w(f"- {sc}: tlsd at {100 * r_raw:.0f}% of raw OpenSSL (goal ≥ 95%: "
          f"{'met' if r_raw >= 0.95 else 'missed'}); {r_peer:.2f}× the best peer "
          f"(goal ≥ 1.2×: {'met' if r_peer >= 1.2 else 'missed'}).")
    for kernel, r_mib, r_cpu in vm_goal:
        w(f"- {kernel}: kTLS sendfile vs the user-space relay in the VM: {r_mib:.2f}× the "
          f"throughput, {r_cpu:.2f}× less CPU per GiB (goal ≥ 1.5× throughput: "
          f"{'met' if r_mib >= 1.5 else 'missed'}).")
    if not vm_goal:
        w("- kTLS sendfile vs relay: not measured in this run (bench/vm-bulk.sh).")
    for m in vm_mem:
        per = float(m["per_connection_bytes"])
        w(f"- {m['kernel']}: tlsd memory per handed-off connection {per:,.1f} bytes over "
          f"{int(m['held']):,} (goal < 64: {'met' if per < 64 else 'missed'}).")
    w("- handoff < 50 µs p50: see \"tlsd: handoff time and memory\" above (the host's figure "
      "is the relay's handoff; the VM's is under TCG emulation).")
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
