#!/usr/bin/env bash
# bench/vm-bulk.sh — bulk download throughput over TLS 1.3 in the kTLS VM
# (issue 8, point 4, VM half): tlsd handing off to kTLS, tlsd relaying in
# user space, and stunnel4, on a real kTLS kernel under QEMU/TCG.
#
#   bash bench/vm-bulk.sh        # as root; ~5-10 min per kernel with the defaults
#
# Builds tlsd, tlsd-demo-backend, tlsctl and the load generator (build/bench,
# Release), boots each kernel once through tests/ktls-vm/run-lane.sh --run
# with bench/vm-bulk-inside.sh (which says what runs and how CPU is counted),
# and collects its console lines into
#   bench/out/vm-bulk.csv     kernel,system,run,bytes,seconds,mib_per_s,
#                             terminator_cpu_seconds,backend_cpu_seconds,
#                             cpu_seconds_per_gib, then client_cpu_seconds,
#                             cpu0_busy_seconds,cpu1_busy_seconds,ktls_tx_sockets,
#                             tail_cpu_seconds (server CPU after the client
#                             left, until CPU 0 went idle; not in the per-GiB)
#   bench/out/vm-handoff.csv  kernel,run,handoff_p50_us,handoff_p99_us,handoffs
#                             (tlsd's histogram over its life so far, read
#                             after each ktls run: cumulative, warm-up included)
# and prints a summary: medians per system, the ratios ktls/relay and
# ktls/stunnel, and which side (server CPU 0 or client CPU 1) saturated.
#
# Environment: BENCH_VM_KERNELS (bookworm; or "bookworm sid"), BENCH_VM_RUNS
# (5), BENCH_VM_SECONDS per run (4), BENCH_VM_FILE_MIB (64), BENCH_VM_SYSTEMS
# (ktls relay stunnel; stunnel-ktls = stunnel with OpenSSL's kTLS, opt-in),
# BENCH_VM_MEMORY (1: also tlsd's memory per handed-off connection, from the
# test suite's HandoffMemoryTest run in the same VM; writes
# bench/out/vm-memory.csv), TLSD_VM_CACHE (kernel cache, default
# /var/cache/tlsd-vm), BENCH_VM_WORK
# (scratch dir with the initramfs and console logs, default /tmp/tlsd-vm-bulk),
# BENCH_VM_TIMEOUT (QEMU limit per kernel; default from the settings).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

die() { echo "vm-bulk: $*" >&2; exit 1; }

kernels=${BENCH_VM_KERNELS:-bookworm}
runs=${BENCH_VM_RUNS:-5}
secs=${BENCH_VM_SECONDS:-4}
mib=${BENCH_VM_FILE_MIB:-64}
systems=${BENCH_VM_SYSTEMS:-ktls relay stunnel}
cache=${TLSD_VM_CACHE:-/var/cache/tlsd-vm}
work=${BENCH_VM_WORK:-/tmp/tlsd-vm-bulk}
out=$repo/bench/out

[[ $(id -u) -eq 0 ]] || die "run as root (QEMU's initramfs needs ldconfig -r; rmmod in the VM)"
for v in "$runs" "$secs" "$mib"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || die "BENCH_VM_RUNS, BENCH_VM_SECONDS, BENCH_VM_FILE_MIB must be positive integers"
done
((mib <= 256)) || die "BENCH_VM_FILE_MIB=$mib: the VM has 1 GiB of memory, /tmp is tmpfs; keep it <= 256"
for k in $kernels; do
  [[ $k == bookworm || $k == sid ]] || die "BENCH_VM_KERNELS: '$k' is neither bookworm nor sid"
done
nsys=0
for s in $systems; do
  case "$s" in ktls | relay | stunnel | stunnel-ktls) nsys=$((nsys + 1)) ;; *) die "unknown system '$s'" ;; esac
done
# Boot and setup ~60-120 s under TCG; per run and system the measurement plus
# ~10 s of slack (loadgen start, tlsctl, CPU reads).
# HandoffMemoryTest (BENCH_VM_MEMORY) takes 1-3 minutes under TCG.
timeout_s=${BENCH_VM_TIMEOUT:-$((300 + nsys * (runs + 1) * (secs + 10) + ${BENCH_VM_MEMORY:-1} * 300))}

# --- what goes into the VM -------------------------------------------------------
stunnel=/usr/bin/stunnel4
if [[ " $systems " == *" stunnel"* && ! -x $stunnel ]]; then
  # Debian's service must not start (and take a port) on install.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stunnel4 >/dev/null || {
    rm -f /usr/sbin/policy-rc.d
    die "apt-get install stunnel4 failed"
  }
  rm -f /usr/sbin/policy-rc.d
fi
# /usr/bin/stunnel4 is the ELF binary itself (stunnel is a symlink to it,
# stunnel3 a Perl wrapper): run-lane copies it with its ldd closure.
tools=(/usr/bin/openssl)
if [[ " $systems " == *" stunnel"* ]]; then
  [[ $(file -bL "$stunnel") == ELF* ]] || die "$stunnel is not an ELF binary; copy what it runs instead"
  tools+=("$stunnel")
  # The stunnel backend is busybox httpd from run-lane's static busybox.
  busybox=${TLSD_VM_BUSYBOX:-/bin/busybox}
  applets=$("$busybox" --list) || die "$busybox --list failed"
  grep -qx httpd <<<"$applets" || die "$busybox has no httpd applet (the stunnel system's backend)"
fi

cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DTLSD_VM_LANE=OFF >/dev/null
memory=${BENCH_VM_MEMORY:-1}
targets=(tlsd tlsd-demo-backend tlsd-bench-loadgen tlsctl)
[[ $memory == 1 ]] && targets+=(tlsd_integration_test)
ninja -C build/bench "${targets[@]}" >/dev/null
bin=$repo/build/bench
bins=("$bin/tlsd/tlsd" "$bin/libtlsfd/tlsd-demo-backend" "$bin/tlsd/tlsctl"
      "$bin/bench/tlsd-bench-loadgen")
[[ $memory == 1 ]] && bins+=("$bin/tests/integration/tlsd_integration_test")
for b in "${bins[@]}"; do [[ -x $b ]] || die "$b was not built"; done

mkdir -p "$work" "$out"
csv=$out/vm-bulk.csv
hcsv=$out/vm-handoff.csv
echo "kernel,system,run,bytes,seconds,mib_per_s,terminator_cpu_seconds,backend_cpu_seconds,cpu_seconds_per_gib,client_cpu_seconds,cpu0_busy_seconds,cpu1_busy_seconds,ktls_tx_sockets,tail_cpu_seconds" >"$csv"
echo "kernel,run,handoff_p50_us,handoff_p99_us,handoffs" >"$hcsv"
mcsv=$out/vm-memory.csv
echo "kernel,held,idle_bytes,loaded_bytes,per_connection_bytes" >"$mcsv"
releases=()

for k in $kernels; do
  # The in-VM script with this kernel's settings in front.
  inside=$work/vm-bulk-inside.sh
  {
    echo "BENCH_VM_KERNEL=$k BENCH_VM_RUNS=$runs BENCH_VM_SECONDS=$secs"
    echo "BENCH_VM_FILE_MIB=$mib BENCH_VM_SYSTEMS='$systems' BENCH_VM_DEBUG=${BENCH_VM_DEBUG:-0}"
    echo "BENCH_VM_MEMORY=$memory"
    cat "$repo/bench/vm-bulk-inside.sh"
  } >"$inside"
  lane_log=$work/$k.lane.log
  echo "== $k: booting the VM (QEMU limit ${timeout_s}s; full output: $lane_log)"
  set +e
  TLSD_VM_CACHE=$cache bash "$repo/tests/ktls-vm/run-lane.sh" --kernel "$k" --cache "$cache" \
    --work "$work" --timeout "$timeout_s" --bin "${bins[@]}" --host-tool "${tools[@]}" \
    --run "$inside" 2>&1 | tee "$lane_log" |
    grep --line-buffered -E '^(run-lane: |BENCH-VM-(INFO|PATH|FAIL|CSV|DEBUG)|vm-lane|  run )'
  rc=${PIPESTATUS[0]}
  set -e
  console=$work/$k/console.log
  [[ $rc -eq 0 ]] || die "$k: the VM run failed (exit $rc); see $lane_log and $console"
  # Console lines may carry a stray kernel message in front: take the tail.
  n_csv=$(grep -c 'BENCH-VM-CSV: ' "$console" || true)
  [[ $n_csv -eq $((runs * nsys)) ]] || die "$k: $n_csv result lines on the console, expected $((runs * nsys))"
  sed -n 's/^.*BENCH-VM-CSV: //p' "$console" >>"$csv"
  sed -n 's/^.*BENCH-VM-HANDOFF: //p' "$console" >>"$hcsv"
  sed -n 's/^.*BENCH-VM-MEMORY: //p' "$console" >>"$mcsv"
  if [[ $memory == 1 ]] && ! grep -q "^$k," "$mcsv"; then
    die "$k: no BENCH-VM-MEMORY line on the console"
  fi
  releases+=("$k=$(sed -n 's/^.*TLSD-VM-KERNEL: //p' "$console" | head -n1)")
done

echo
python3 - "$csv" "$hcsv" "$mib" "$secs" "$runs" "${releases[@]}" <<'PY'
import csv, statistics, sys
csv_path, hcsv_path, mib, secs, runs = sys.argv[1:6]
releases = dict(r.split("=", 1) for r in sys.argv[6:])
rows = list(csv.DictReader(open(csv_path)))
hrows = list(csv.DictReader(open(hcsv_path)))
med = lambda xs: statistics.median(xs) if xs else float("nan")
print(f"vm-bulk: {mib} MiB file, TLS 1.3 AES-128-GCM, loadgen --concurrency 2, "
      f"{runs} runs x {secs} s per system; medians (server = terminator + backend on CPU 0, "
      f"client = loadgen on CPU 1)")
for kernel in dict.fromkeys(r["kernel"] for r in rows):
    print(f"\n{kernel} ({releases.get(kernel, '?')})")
    print(f"  {'system':<13}{'MiB/s':>8}{'term CPU-s':>12}{'backend CPU-s':>15}"
          f"{'server CPU-s/GiB':>18}{'client CPU-s/GiB':>18}{'CPU0 busy':>11}{'CPU1 busy':>11}"
          f"{'tail CPU-s':>12}")
    m = {}
    for system in dict.fromkeys(r["system"] for r in rows if r["kernel"] == kernel):
        rs = [r for r in rows if r["kernel"] == kernel and r["system"] == system]
        f = lambda k: med([float(r[k]) for r in rs])
        gib = lambda r: float(r["bytes"]) / 2**30
        m[system] = {
            "mib": f("mib_per_s"), "term": f("terminator_cpu_seconds"),
            "back": f("backend_cpu_seconds"), "gib": f("cpu_seconds_per_gib"),
            "client": med([float(r["client_cpu_seconds"]) / gib(r) for r in rs]),
            "cpu0": med([float(r["cpu0_busy_seconds"]) / float(r["seconds"]) for r in rs]),
            "cpu1": med([float(r["cpu1_busy_seconds"]) / float(r["seconds"]) for r in rs]),
            "tail": f("tail_cpu_seconds"),
        }
        v = m[system]
        print(f"  {system:<13}{v['mib']:>8.1f}{v['term']:>12.2f}{v['back']:>15.2f}"
              f"{v['gib']:>18.2f}{v['client']:>18.2f}{v['cpu0']:>11.0%}{v['cpu1']:>11.0%}{v['tail']:>12.2f}")
    if "ktls" in m:
        for peer in ("relay", "stunnel", "stunnel-ktls"):
            if peer in m:
                print(f"  ktls/{peer}: MiB/s x{m['ktls']['mib'] / m[peer]['mib']:.2f}, "
                      f"server CPU-s per GiB x{m['ktls']['gib'] / m[peer]['gib']:.2f}")
    hs = [h for h in hrows if h["kernel"] == kernel]
    if hs:
        last = hs[-1]
        print(f"  tlsd handoff (ktls, after run {last['run']}, {last['handoffs']} handoffs since start): "
              f"p50 {last['handoff_p50_us']} us, p99 {last['handoff_p99_us']} us; "
              f"per run p50: {', '.join(h['handoff_p50_us'] for h in hs)} us")
    # A side is saturated when its CPU was >= 90% busy over the run.
    sides = {}
    for system, v in m.items():
        sat = [n for n, c in (("server/CPU 0", v["cpu0"]), ("client/CPU 1", v["cpu1"])) if c >= 0.9]
        sides[system] = sat
    print("  saturated (>= 90% busy): " + "; ".join(
        f"{system}: {' and '.join(sat) if sat else 'neither'}" for system, sat in sides.items()))
    if any(v["tail"] >= 0.1 for v in m.values()):
        print("  tail CPU-s: the server's CPU after the client left mid-transfer, until CPU 0 went"
              " idle (not in the per-GiB figures)")
    if any("client/CPU 1" in sat for sat in sides.values()):
        print("  -> where the client saturates, MiB/s is capped by its decryption under TCG,"
              " not by the server: the server CPU-s per GiB is the figure to compare")
PY
echo
if [[ $memory == 1 ]]; then
  echo "memory per handed-off kTLS connection (HandoffMemoryTest):"
  while IFS=, read -r k held idle loaded per; do
    [[ $k == kernel ]] && continue
    echo "  $k: tlsd VmRSS $idle B idle, $loaded B with $held connections held: $per B per connection"
  done <"$mcsv"
fi
echo "results: $csv, $hcsv, $mcsv; consoles: $work/<kernel>/console.log"
