#!/bin/sh
# shellcheck shell=dash
# bench/vm-bulk-inside.sh — the in-VM half of bench/vm-bulk.sh: bulk download
# throughput over TLS 1.3 of tlsd with kTLS, tlsd relaying, and stunnel4.
#
# Runs as root inside the kTLS VM, started by its /init through
# `tests/ktls-vm/run-lane.sh --run` (busybox sh, cwd /tmp, TLSD_IN_VM=1).
# bench/vm-bulk.sh prepends the settings below (BENCH_VM_*) and parses the
# console lines this prints:
#
#   BENCH-VM-CSV: kernel,system,run,bytes,seconds,mib_per_s,
#                 terminator_cpu_seconds,backend_cpu_seconds,cpu_seconds_per_gib,
#                 client_cpu_seconds,cpu0_busy_seconds,cpu1_busy_seconds,
#                 ktls_tx_sockets,tail_cpu_seconds
#   BENCH-VM-HANDOFF: kernel,run,handoff_p50_us,handoff_p99_us,handoffs
#   BENCH-VM-MEMORY: kernel,held,idle_bytes,loaded_bytes,per_connection_bytes
#   BENCH-VM-INFO: / BENCH-VM-PATH: / BENCH-VM-FAIL: (free text)
#
# Systems (each terminator and its backend taskset to CPU 0, the load
# generator to CPU 1):
#   ktls     tlsd (threads = 1, pull backend) + tlsd-demo-backend --file:
#            the backend sendfile()s the file into the handed-off kTLS socket,
#            so the kernel encrypts in the backend's system call
#   relay    the same, but a tlsd started while the tls module is unloaded
#            (and module auto-loading is off): tlsd caches "no TLS ULP" at
#            start and relays through a socketpair, encrypting in user space
#   stunnel  stunnel4 (run.sh's config, OpenSSL defaults: no kTLS) in front
#            of busybox httpd serving the same file; its TLS 1.3 suite is
#            pinned to TLS_AES_128_GCM_SHA256, the one tlsd picks (OpenSSL's
#            default server takes the client's first choice, AES-256-GCM)
#   stunnel-ktls (opt-in) the same with `options = ENABLE_KTLS` (OpenSSL's
#            own kTLS)
# The runs interleave the systems (run 1 of each, then run 2, ...), so slow
# phases of the noisy host hit all of them alike.
#
# CPU time: cgroup v2 cpu.stat usage_usec of one cgroup per terminator, per
# backend and for the load generator. Not /proc/PID/stat as bench/run.sh:
# busybox httpd forks a child per connection and ignores SIGCHLD, so the
# children's time never reaches the parent's cutime, and /proc would show the
# stunnel system's backend as free. A cgroup keeps the time of exited members.
# Also reported: CPU 0 and CPU 1 busy time from /proc/stat (everything on the
# CPU, interrupts included), to tell which side saturated. After each run the
# script waits for CPU 0 to go idle, so no system's leftovers run into the
# next one's measurement; the server CPU spent after the client left is
# tail_cpu_seconds (not in the per-GiB figure). BENCH_VM_DEBUG=1 also prints
# the busiest threads of each run and the kernel stacks of what runs on.
#
# Memory per handed-off connection (BENCH_VM_MEMORY=1, the default): after
# the bulk runs, with the systems stopped, the test suite's HandoffMemoryTest
# (tlsd_integration_test: 10,000 kTLS connections held open by a worker, tlsd's
# VmRSS idle and with them) is run and its [ MEASURE  ] line reported.
set -eu
# busybox ash has pipefail.
# shellcheck disable=SC3040
set -o pipefail

: "${BENCH_VM_KERNEL:=unknown}"
: "${BENCH_VM_RUNS:=5}"
: "${BENCH_VM_SECONDS:=4}"
: "${BENCH_VM_FILE_MIB:=64}"
: "${BENCH_VM_SYSTEMS:=ktls relay stunnel}"
: "${BENCH_VM_DEBUG:=0}"
: "${BENCH_VM_MEMORY:=1}"

bin=/opt/tlsd/bin
cg=/sys/fs/cgroup
kernel=$BENCH_VM_KERNEL
secs=$BENCH_VM_SECONDS
tls12_ciphers="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"
httpd_port=9080

show_logs() {
  for f in /tmp/*/*.log; do
    [ -f "$f" ] || continue
    echo "----- $f (last 15 lines)"
    tail -n 15 "$f"
  done
}
die() {
  echo "BENCH-VM-FAIL: $*"
  show_logs
  exit 1
}
info() { echo "BENCH-VM-INFO: $*"; }

port_of() {
  case "$1" in
    ktls) echo 9443 ;; relay) echo 9444 ;; stunnel) echo 9445 ;; stunnel-ktls) echo 9446 ;;
    *) die "unknown system $1" ;;
  esac
}
# cgroups: one per terminator; the stunnels share the httpd backend's.
term_cg() { echo "$1-term"; }
back_cg() {
  case "$1" in
    stunnel*) echo httpd ;;
    *) echo "$1-back" ;;
  esac
}

for s in $BENCH_VM_SYSTEMS; do port_of "$s" >/dev/null; done
case "$BENCH_VM_RUNS$secs$BENCH_VM_FILE_MIB" in
  *[!0-9]*) die "BENCH_VM_RUNS, BENCH_VM_SECONDS and BENCH_VM_FILE_MIB must be integers" ;;
esac
has() { case " $BENCH_VM_SYSTEMS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# --- cgroups and processes ----------------------------------------------------
grep -q " $cg cgroup2 " /proc/mounts || mount -t cgroup2 cgroup2 "$cg" ||
  die "cannot mount cgroup2 on $cg"
cg_new() {
  mkdir -p "$cg/bench-$1"
  [ -r "$cg/bench-$1/cpu.stat" ] || die "no $cg/bench-$1/cpu.stat"
}
cg_usec() { awk '$1 == "usage_usec" { print $2 }' "$cg/bench-$1/cpu.stat"; }
cleanup() {
  for d in "$cg"/bench-*; do
    [ -f "$d/cgroup.procs" ] || continue
    while read -r p; do kill "$p" 2>/dev/null || true; done <"$d/cgroup.procs"
  done
}
trap cleanup EXIT
# start_in CGROUP LOG COMMAND...: in the background, in that cgroup, on CPU 0.
start_in() {
  c=$1 log=$2
  shift 2
  # shellcheck disable=SC2016
  sh -c 'echo $$ >"$0/cgroup.procs" && exec taskset -c 0 "$@"' "$cg/bench-$c" "$@" \
    >"$log" 2>&1 </dev/null &
}
wait_port() { # port: listening on 127.0.0.1 (/proc/net/tcp, state 0A)
  hex=$(printf '%04X' "$1")
  i=0
  while ! grep -q "^ *[0-9]*: 0100007F:$hex 00000000:0000 0A" /proc/net/tcp; do
    i=$((i + 1))
    [ "$i" -le 600 ] || return 1
    sleep 0.1
  done
}

# --- material -------------------------------------------------------------------
info "release=$(uname -r) kernel=$kernel runs=$BENCH_VM_RUNS seconds=$secs file_mib=$BENCH_VM_FILE_MIB systems=$BENCH_VM_SYSTEMS"
# The clocks CPU time is counted with (under TCG the TSC calibration varies).
info "clock: $(dmesg | grep -m3 -oE 'tsc: (Refined TSC clocksource calibration|Detected|Fast TSC calibration).*|clocksource: Switched to clocksource .*' | tr '\n' ';')"
# This script's own processes stay off the servers' CPU.
taskset -p -c 1 $$ >/dev/null || die "taskset -p failed"
cd /tmp
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout /tmp/key.pem -out /tmp/cert.pem 2>/dev/null || die "openssl req failed"
chmod 0644 /tmp/key.pem /tmp/cert.pem
dd if=/dev/urandom of=/tmp/bulk.bin bs=1048576 count="$BENCH_VM_FILE_MIB" 2>/dev/null ||
  die "cannot write the ${BENCH_VM_FILE_MIB} MiB file (VM memory is 1 GiB, /tmp is tmpfs)"
mkdir -p /tmp/www
ln /tmp/bulk.bin /tmp/www/bulk.bin
cg_new client

# --- starting the systems ---------------------------------------------------------
start_tlsd() { # name
  n=$1
  port=$(port_of "$n")
  mkdir -p "/tmp/$n"
  cat >"/tmp/$n/tlsd.toml" <<EOF
[global]
control_socket = "/tmp/$n/control.sock"
threads = 1
[[service]]
name = "bench"
listen = ["127.0.0.1:$port"]
backend = "demo"
tls12_ciphers = "$tls12_ciphers"
[[service.certificate]]
cert = "/tmp/cert.pem"
key = "/tmp/key.pem"
[[backend]]
name = "demo"
mode = "pull"
allow_uids = [0]
EOF
  cg_new "$(term_cg "$n")"
  cg_new "$(back_cg "$n")"
  start_in "$(term_cg "$n")" "/tmp/$n/tlsd.log" "$bin/tlsd" --config "/tmp/$n/tlsd.toml"
  wait_port "$port" || die "tlsd ($n) is not listening on $port"
  start_in "$(back_cg "$n")" "/tmp/$n/backend.log" "$bin/tlsd-demo-backend" \
    --control "/tmp/$n/control.sock" --backend demo --file /tmp/bulk.bin
  i=0
  until "$bin/tlsctl" --socket "/tmp/$n/control.sock" --json status 2>/dev/null |
      grep -q '"workers": [1-9]'; do
    i=$((i + 1))
    [ "$i" -le 300 ] || die "tlsd-demo-backend ($n) did not register with tlsd"
    sleep 0.1
  done
}

start_stunnel() { # name
  n=$1
  port=$(port_of "$n")
  mkdir -p "/tmp/$n"
  if [ ! -d "$cg/bench-httpd" ]; then
    cg_new httpd
    mkdir -p /tmp/httpd
    # busybox httpd: fork per connection, sendfile(2) for the file.
    start_in httpd /tmp/httpd/httpd.log httpd -f -p "127.0.0.1:$httpd_port" -h /tmp/www
    wait_port "$httpd_port" || die "busybox httpd is not listening on $httpd_port"
  fi
  ktls_opt=""
  [ "$n" = stunnel-ktls ] && ktls_opt="options = ENABLE_KTLS"
  cat >"/tmp/$n/stunnel.conf" <<EOF
foreground = yes
syslog = no
pid =
[bench]
libwrap = no
accept = 127.0.0.1:$port
connect = 127.0.0.1:$httpd_port
cert = /tmp/cert.pem
key = /tmp/key.pem
sslVersionMin = TLSv1.2
ciphers = $tls12_ciphers
; TLS 1.3 with the suite tlsd picks (server preference, AES-128-GCM first);
; OpenSSL's default server would follow the client's first choice, AES-256
ciphersuites = TLS_AES_128_GCM_SHA256
; one line per connection with the negotiated suite (checked below)
debug = info
$ktls_opt
EOF
  cg_new "$(term_cg "$n")"
  start_in "$(term_cg "$n")" "/tmp/$n/stunnel.log" /usr/bin/stunnel4 "/tmp/$n/stunnel.conf"
  wait_port "$port" || die "stunnel4 ($n) is not listening on $port"
}

has ktls && start_tlsd ktls
for s in stunnel stunnel-ktls; do
  if has "$s"; then start_stunnel "$s"; fi
done
if has relay; then
  # tlsd's supervisor probes for the TLS ULP as root before dropping
  # privileges, and the kernel auto-loads the tls module for that probe
  # (request_module("tcp-ulp-tls") -> /sbin/modprobe). So: unload it, turn
  # auto-loading off while this tlsd starts, and load it again for the others.
  # The probe's answer is cached for the process's life: this tlsd relays.
  grep -q '^tls ' /proc/modules || die "the tls module is not loaded (/init loads it)"
  # A socket that had the ULP (tlsd's probe) may take a moment to go.
  i=0
  until rmmod tls 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -le 50 ] || die "rmmod tls failed: $(grep '^tls ' /proc/modules)"
    sleep 0.1
  done
  modprobe_path=$(cat /proc/sys/kernel/modprobe)
  echo /bin/false >/proc/sys/kernel/modprobe
  start_tlsd relay
  echo "$modprobe_path" >/proc/sys/kernel/modprobe
  grep -q '^tls ' /proc/modules && die "the tls module came back while the relay tlsd started"
  grep -q 'kernel has no TLS ULP' /tmp/relay/tlsd.log ||
    die "the relay tlsd did not report 'kernel has no TLS ULP'"
  modprobe tls || die "modprobe tls (again) failed"
  info "relay tlsd started without the tls module (rmmod tls; module auto-loading off), then modprobe tls again"
fi
[ -e /proc/net/tls_stat ] || die "/proc/net/tls_stat missing"

# --- checks -------------------------------------------------------------------------
# tlsd's outcome lines name each connection's data path: path=ktls-sw/ktls-sw
# (kernel TLS both ways) or path=relay/relay.
check_path() { # system
  log=/tmp/$1/tlsd.log
  i=0
  # A relayed connection's line comes when it ends: give tlsd a moment.
  until grep -q ' path=[kr]' "$log"; do
    i=$((i + 1))
    [ "$i" -le 100 ] || die "tlsd ($1) logged no connection with a data path"
    sleep 0.1
  done
  k=$(grep -c ' path=ktls-' "$log" || true)
  r=$(grep -c ' path=relay' "$log" || true)
  echo "BENCH-VM-PATH: $1 ktls_connections=$k relay_connections=$r;" \
    "$(grep -o ' path=[^ ]* ' "$log" | sort | uniq -c | tr -s ' \n' '  ')"
  if [ "$1" = ktls ] && { [ "$k" -eq 0 ] || [ "$r" -ne 0 ]; }; then
    die "tlsd (ktls) did not put every connection on kTLS: $k ktls, $r relay"
  fi
  if [ "$1" = relay ] && { [ "$r" -eq 0 ] || [ "$k" -ne 0 ]; }; then
    die "tlsd (relay) did not relay every connection: $k ktls, $r relay"
  fi
}
# Every system must have negotiated TLS 1.3 with AES-128-GCM.
check_cipher() { # system
  case "$1" in
    stunnel*) got=$(grep -o 'TLSv1.3 ciphersuite: [A-Z0-9_]*' "/tmp/$1/stunnel.log" |
                      sed 's/.*: //' | sort -u | tr '\n' ' ') || true ;;
    *) got=$(grep -o 'version=[^ ]* cipher=[^ ]*' "/tmp/$1/tlsd.log" | grep -v 'version=-' |
               sed 's/.*cipher=//' | sort -u | tr '\n' ' ') || true ;;
  esac
  info "$1 negotiated: ${got:-nothing}"
  [ "$got" = "TLS_AES_128_GCM_SHA256 " ] || die "$1 negotiated '${got:-nothing}', not TLS_AES_128_GCM_SHA256 only"
}
tls_tx() { # TLS TX sockets the kernel ever set up (0 if the module is out)
  if [ -r /proc/net/tls_stat ]; then
    awk '$1 == "TlsTxSw" || $1 == "TlsTxDevice" { n += $2 } END { print n + 0 }' /proc/net/tls_stat
  else
    echo 0
  fi
}
cpu_ticks() { # cpuN: busy ticks (all but idle and iowait)
  awk -v c="$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

# BENCH_VM_DEBUG=1: the threads that used the most CPU during each run.
thread_ticks() { # -> "tid comm ticks" for every thread
  # shellcheck disable=SC2002
  cat /proc/[0-9]*/task/[0-9]*/stat 2>/dev/null | awk '{
    match($0, /\) [A-Za-z] /); o = index($0, "(")
    c = substr($0, o + 1, RSTART - o - 1); gsub(/ /, "_", c)
    split(substr($0, RSTART + 2), f, " "); print $1, c, f[12] + f[13]
  }' || true
}
busiest() { # before-file after-file
  awk 'NR == FNR { b[$1] = $3; next } { d = $3 - b[$1]; if (d > 0) print d, $1, $2 }' "$1" "$2" |
    sort -rn | head -n 6 | tr '\n' ';'
}

# settle WHAT: wait until CPU 0 is idle (<= 10% busy over 0.5 s, at most 30 s),
# so that no system's leftovers run during the next one's measurement.
settle() {
  i=0
  while :; do
    a=$(cpu_ticks cpu0)
    sleep 0.5
    z=$(cpu_ticks cpu0)
    [ $((z - a)) -gt 5 ] || break
    if [ "$BENCH_VM_DEBUG" = 1 ]; then
      echo "BENCH-VM-DEBUG: $1: cpu0 busy $((z - a))/50 ticks; running: $(for t in /proc/[0-9]*/task/[0-9]*; do
        st=$(cut -d' ' -f3 "$t/stat" 2>/dev/null) || continue
        [ "$st" = R ] && echo "$(cat "$t/comm") $(tr '\n' '<' <"$t/stack" 2>/dev/null | cut -c1-300)"
      done | tr '\n' '|')"
    fi
    i=$((i + 1))
    if [ "$i" -ge 60 ]; then
      info "$1: CPU 0 still busy 30 s after the client left; going on"
      return 0
    fi
  done
  if [ "$i" -gt 0 ]; then info "$1: CPU 0 busy for about $((i / 2)).$((i % 2 * 5)) s after the client left"; fi
}

# --- measuring ----------------------------------------------------------------------
loadgen() { # port seconds -> JSON on stdout; in the client cgroup, on CPU 1
  # shellcheck disable=SC2016
  timeout $(($2 + 120)) sh -c 'echo $$ >"$0/cgroup.procs" && exec taskset -c 1 "$@"' \
    "$cg/bench-client" "$bin/tlsd-bench-loadgen" --port "$1" --tls 1.3 --path /bulk.bin \
    --concurrency 2 --seconds "$2"
}
json_num() { # key json
  echo "$2" | sed -n "s/.*\"$1\": \([0-9.]*\).*/\1/p"
}

measure() { # system run
  s=$1 run=$2
  tc=$(term_cg "$s")
  bc=$(back_cg "$s")
  if [ "$BENCH_VM_DEBUG" = 1 ]; then thread_ticks >/tmp/threads.before; fi
  t0=$(cg_usec "$tc") b0=$(cg_usec "$bc") c0=$(cg_usec client)
  p0=$(cpu_ticks cpu0) q0=$(cpu_ticks cpu1) x0=$(tls_tx)
  json=$(loadgen "$(port_of "$s")" "$secs") || die "loadgen against $s failed"
  t1=$(cg_usec "$tc") b1=$(cg_usec "$bc") c1=$(cg_usec client)
  p1=$(cpu_ticks cpu0) q1=$(cpu_ticks cpu1) x1=$(tls_tx)
  if [ "$BENCH_VM_DEBUG" = 1 ]; then
    thread_ticks >/tmp/threads.after
    echo "BENCH-VM-DEBUG: $s run $run busiest threads (ticks tid comm): $(busiest /tmp/threads.before /tmp/threads.after)"
  fi
  # What the system still burns after its client left (e.g. a sendfile that
  # goes on encrypting for a closed connection) is its "tail".
  settle "$s run $run"
  t2=$(cg_usec "$tc") b2=$(cg_usec "$bc")
  bytes=$(json_num bytes "$json")
  seconds=$(json_num seconds "$json")
  if [ -z "$bytes" ] || [ -z "$seconds" ]; then die "loadgen said: $json"; fi
  [ "$bytes" -gt 0 ] || die "no bytes from $s: $json"
  tx=$((x1 - x0))
  case "$s" in
    ktls | stunnel-ktls) [ "$tx" -gt 0 ] || die "$s run $run: /proc/net/tls_stat shows no new kTLS TX socket" ;;
    *) [ "$tx" -eq 0 ] || die "$s run $run: /proc/net/tls_stat shows $tx new kTLS TX sockets" ;;
  esac
  # USER_HZ is 100 on x86 (/proc/stat ticks).
  awk -v k="$kernel" -v s="$s" -v r="$run" -v by="$bytes" -v sec="$seconds" \
    -v t="$((t1 - t0))" -v b="$((b1 - b0))" -v c="$((c1 - c0))" \
    -v p="$((p1 - p0))" -v q="$((q1 - q0))" -v tx="$tx" -v tail="$((t2 - t1 + b2 - b1))" 'BEGIN {
      term = t / 1e6; back = b / 1e6; gib = by / 1073741824
      printf "BENCH-VM-CSV: %s,%s,%d,%.0f,%.3f,%.2f,%.3f,%.3f,%.3f,%.3f,%.2f,%.2f,%d,%.3f\n",
        k, s, r, by, sec, by / sec / 1048576, term, back, (term + back) / gib,
        c / 1e6, p / 100, q / 100, tx, tail / 1e6
    }'
}

handoff() { # run: tlsd's handoff latency percentiles (its whole life so far)
  st=$("$bin/tlsctl" --socket /tmp/ktls/control.sock --json status) || die "tlsctl status failed"
  echo "$st" | awk -v k="$kernel" -v r="$1" '
    /"handoff_us"/ { f = 1 }
    /"handed-off"/ { v = $2; gsub(/[^0-9]/, "", v); n = v }
    f && /"p50"/ { p50 = $2; gsub(/[^0-9.]/, "", p50) }
    f && /"p99"/ { p99 = $2; gsub(/[^0-9.]/, "", p99); f = 0 }
    END { printf "BENCH-VM-HANDOFF: %s,%s,%s,%s,%s\n", k, r, p50, p99, n }'
}

# Warm-up: first connections, lazily loaded code; and the path checks, before
# any number is taken.
for s in $BENCH_VM_SYSTEMS; do
  loadgen "$(port_of "$s")" 1 >/dev/null || die "warm-up against $s failed"
  settle "$s warm-up"
done
for s in ktls relay; do
  if has "$s"; then check_path "$s"; fi
done

for s in $BENCH_VM_SYSTEMS; do check_cipher "$s"; done

for run in $(seq "$BENCH_VM_RUNS"); do
  for s in $BENCH_VM_SYSTEMS; do
    measure "$s" "$run"
    if [ "$s" = ktls ]; then handoff "$run"; fi
  done
done
for s in ktls relay; do
  if has "$s"; then check_path "$s"; fi
done
for s in $BENCH_VM_SYSTEMS; do check_cipher "$s"; done
if [ "$BENCH_VM_DEBUG" = 1 ]; then show_logs; fi

if [ "$BENCH_VM_MEMORY" = 1 ]; then
  cleanup
  sleep 1
  info "memory per handed-off connection: HandoffMemoryTest"
  mem_out=$(cd /tmp && TLSD_TEST_BIN_DIR=$bin TLSD_IN_VM=1 \
    "$bin/tlsd_integration_test" --gtest_filter='HandoffMemoryTest.*' --gtest_color=no 2>&1) ||
    die "HandoffMemoryTest failed: $(echo "$mem_out" | tail -n 20)"
  # [ MEASURE  ] tlsd VmRSS idle I B, with N handed-off connections held L B: growth ...
  mem_line=$(echo "$mem_out" | grep -F '[ MEASURE  ] tlsd VmRSS idle') ||
    die "HandoffMemoryTest printed no measurement: $(echo "$mem_out" | tail -n 20)"
  echo "$mem_line"
  echo "$mem_line" | awk -v k="$kernel" '{
    for (i = 1; i <= NF; ++i) {
      if ($i == "idle") idle = $(i + 1)
      if ($i == "with") held = $(i + 1)
      if ($i == "held") loaded = $(i + 1)
    }
    printf "BENCH-VM-MEMORY: %s,%d,%d,%d,%.1f\n", k, held, idle, loaded, (loaded - idle) / held
  }'
fi
info "done"
