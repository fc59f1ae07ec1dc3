#!/usr/bin/env bash
# bench/run.sh — handshake benchmarks of tlsd against the field, in one run
# on one machine (see bench/README.md):
#
#   systems  tlsd (+ tlsd-demo-backend), nginx serving the response itself,
#            nginx stream proxy, haproxy, stunnel4, hitch (the proxies in
#            front of one plain nginx backend), and raw OpenSSL over memory
#            BIOs (no sockets: the ceiling);
#   measures full and resumed handshakes, TLS 1.3 (X25519) and TLS 1.2
#            (ECDHE-ECDSA), ECDSA P-256 certificate: handshakes per
#            CPU-second of the terminator's own processes, the achieved
#            rate, and at a fixed moderate rate the latency from connect()
#            to the first response byte (p50, p99);
#            bulk: one 64 MiB file downloaded over TLS 1.3 by 2 clients at
#            a time - MiB/s and CPU-seconds per GiB of the terminator (and of
#            its backend, separately);
#            tlsd only: its handoff time (tlsctl status), and its memory per
#            in-flight handshake (BENCH_HOLD connections left mid-handshake,
#            VmRSS before and during) next to raw OpenSSL's heap for the same;
#   pinning  the terminator on CPU 0 (its backend too), the load generator
#            on CPU 1.
#
# Writes bench/out/results.csv and bench/out/memory.csv, and bench/RESULTS.md
# + bench/handshakes.png from them (bench/report.py; it also reads
# bench/out/vm-bulk.csv from bench/vm-bulk.sh if there is one). Environment:
# BENCH_RUNS (default 5), BENCH_SECONDS per measurement (default 4),
# BENCH_RATE for the latency runs (default 200/s), BENCH_SYSTEMS (default:
# all), BENCH_BULK_MIB (64), BENCH_HOLD (10000, capped by the open-files
# limit).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runs="${BENCH_RUNS:-5}"
secs="${BENCH_SECONDS:-4}"
rate="${BENCH_RATE:-200}"
systems="${BENCH_SYSTEMS:-raw tlsd nginx nginx-stream haproxy stunnel hitch}"
bulk_mib="${BENCH_BULK_MIB:-64}"
hold="${BENCH_HOLD:-10000}"
out="$repo/bench/out"
work="$(mktemp -d /tmp/tlsd-bench.XXXXXX)"

die() { echo "bench: $*" >&2; exit 1; }
[[ $(nproc) -ge 2 ]] || die "needs 2 CPUs (terminator on 0, load generator on 1)"

# --- install and build --------------------------------------------------------
bash scripts/install-deps.sh >/dev/null
need=()
for p in nginx libnginx-mod-stream haproxy stunnel4 hitch gnuplot-nox; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
  # The packages' own services must not start (and take ports) on install.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi
cmake -S . -B build/bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DTLSD_VM_LANE=OFF >/dev/null
ninja -C build/bench tlsd tlsctl tlsd-demo-backend tlsd-bench-loadgen tlsd-bench-raw-openssl >/dev/null
bin="$repo/build/bench"
loadgen="$bin/bench/tlsd-bench-loadgen"

# --- common material ----------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat "$work/cert.pem" "$work/key.pem" >"$work/combined.pem"
chmod 0644 "$work"/*.pem
chmod 0755 "$work"
# The bulk file, in the page cache before the first download.
head -c "$((bulk_mib << 20))" /dev/urandom >"$work/bulk.bin"
chmod 0644 "$work/bulk.bin"
cat "$work/bulk.bin" >/dev/null
# --hold needs an fd per connection in the load generator and in tlsd.
ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < hold + 500)); then
  echo "bench: open-files limit $(ulimit -n): holding $(($(ulimit -n) - 500)) handshakes, not $hold" >&2
  hold=$(($(ulimit -n) - 500))
fi
# The body every system answers with (tlsd's demo backend writes its own,
# of about this size: the connection's metadata).
body='tlsd benchmark response: a few hundred bytes, like the demo backend metadata page. 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'
port_of() {
  case "$1" in
    tlsd) echo 9443 ;; nginx) echo 9444 ;; nginx-stream) echo 9445 ;;
    haproxy) echo 9446 ;; stunnel) echo 9447 ;; hitch) echo 9448 ;;
  esac
}
# tlsd serves the bulk file and the held handshakes on services of their
# own (the demo backend answers every request of one backend alike, and the
# held handshakes need higher limits); the others answer /bulk.bin on the
# same port.
bulk_port_of() { if [[ $1 == tlsd ]]; then echo 9449; else port_of "$1"; fi; }
tlsd_hold_port=9450
backend_port=9080
tls12_ciphers="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"

# --- starting and stopping a system ------------------------------------------
# Each system runs in its own session (setsid) pinned to CPU 0; its CPU time
# is the sum over that session's processes (terminator_pids).
# Not in $(...): the job must be this shell's child. Sets last_sid.
started=()
start_in_session() { # name, command...
  local name=$1
  shift
  # Without job control a background job is no group leader, so setsid(1)
  # makes the session in place: its id is the job's pid.
  taskset -c 0 setsid "$@" >"$work/$name.log" 2>&1 &
  last_sid=$!
  started+=("$last_sid")
}
session_pids() { ps -e -o pid=,sid= | awk -v s="$1" '$2 == s {print $1}'; }
cpu_ticks() { # pids... -> utime+stime in clock ticks, summed
  local total=0 f
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] || continue
    f=$(sed 's/.*) //' "/proc/$p/stat")
    set -- $f
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}
stop_all() {
  for s in "${started[@]}"; do
    for p in $(session_pids "$s"); do kill "$p" 2>/dev/null || true; done
  done
  started=()
  sleep 0.5
}
trap 'stop_all; rm -rf "$work"' EXIT

wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

nginx_conf() { # name, server block
  mkdir -p "$work/$1"
  local modules=""
  [[ $2 == stream* ]] && modules="load_module /usr/lib/nginx/modules/ngx_stream_module.so;"
  cat >"$work/$1/nginx.conf" <<EOF
$modules
daemon off;
master_process on;
worker_processes 1;
pid $work/$1/nginx.pid;
error_log $work/$1/error.log error;
events { worker_connections 4096; }
$2
EOF
}

plain_backend_sid=""
start_backend() { # the plain HTTP backend behind the proxies; sets backend_sid
  if [[ -z $plain_backend_sid ]]; then
    nginx_conf backend "http { access_log off; sendfile on; server { listen 127.0.0.1:$backend_port; keepalive_timeout 0; location / { return 200 '$body'; } location = /bulk.bin { root $work; } } }"
    start_in_session backend nginx -c "$work/backend/nginx.conf" -p "$work/backend"
    plain_backend_sid=$last_sid
    wait_port "$backend_port" || die "backend nginx did not start: $(cat "$work/backend.log")"
  fi
  backend_sid=$plain_backend_sid
}

# tlsd's config: a service (name, port, backend, extra lines) with the
# benchmark's certificate, and a pull backend this user may subscribe to.
tlsd_service() {
  printf '[[service]]\nname = "%s"\nlisten = ["127.0.0.1:%s"]\nbackend = "%s"\n' "$1" "$2" "$3"
  [[ -n ${4:-} ]] && printf '%s\n' "$4"
  printf '[[service.certificate]]\ncert = "%s"\nkey = "%s"\n' "$work/cert.pem" "$work/key.pem"
}
tlsd_pull_backend() {
  printf '[[backend]]\nname = "%s"\nmode = "pull"\nallow_uids = [%s]\n' "$1" "$(id -u)"
}

start_system() { # name; sets sid (the terminator's session) and backend_sid
  local name=$1 port
  port=$(port_of "$name")
  case "$name" in
    tlsd)
      cat >"$work/tlsd.toml" <<EOF
[global]
control_socket = "$work/tlsd-control.sock"
threads = 1
$(tlsd_service bench "$port" demo "tls12_ciphers = \"$tls12_ciphers\"")
$(tlsd_service bulk "$(bulk_port_of tlsd)" bulk)
$(tlsd_service hold "$tlsd_hold_port" demo "max_handshakes = $((hold + 100))
handshake_timeout_ms = 300000")
$(tlsd_pull_backend demo)
$(tlsd_pull_backend bulk)
EOF
      start_in_session tlsd "$bin/tlsd/tlsd" --config "$work/tlsd.toml"
      sid=$last_sid
      for _ in $(seq 100); do [[ -S $work/tlsd-control.sock ]] && break; sleep 0.1; done
      start_in_session tlsd-backend "$bin/libtlsfd/tlsd-demo-backend" \
        --control "$work/tlsd-control.sock" --backend demo
      backend_sid=$last_sid
      start_in_session tlsd-bulk-backend "$bin/libtlsfd/tlsd-demo-backend" \
        --control "$work/tlsd-control.sock" --backend bulk --file "$work/bulk.bin"
      bulk_backend_sid=$last_sid
      ;;
    nginx)
      nginx_conf nginx "http { access_log off; sendfile on; ssl_session_cache shared:SSL:10m; server { listen 127.0.0.1:$port ssl; ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem; ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers $tls12_ciphers; keepalive_timeout 0; location / { return 200 '$body'; } location = /bulk.bin { root $work; } } }"
      start_in_session nginx nginx -c "$work/nginx/nginx.conf" -p "$work/nginx"
      sid=$last_sid
      backend_sid=""
      ;;
    nginx-stream)
      start_backend
      nginx_conf nginx-stream "stream { ssl_session_cache shared:SSL:10m; server { listen 127.0.0.1:$port ssl; ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem; ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers $tls12_ciphers; proxy_pass 127.0.0.1:$backend_port; } }"
      start_in_session nginx-stream nginx -c "$work/nginx-stream/nginx.conf" -p "$work/nginx-stream"
      sid=$last_sid
      ;;
    haproxy)
      start_backend
      cat >"$work/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4096
  ssl-default-bind-ciphers $tls12_ciphers
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend tls
  bind 127.0.0.1:$port ssl crt $work/combined.pem
  default_backend plain
backend plain
  server b1 127.0.0.1:$backend_port
EOF
      start_in_session haproxy haproxy -db -f "$work/haproxy.cfg"
      sid=$last_sid
      ;;
    stunnel)
      start_backend
      cat >"$work/stunnel.conf" <<EOF
foreground = yes
; stderr only: with no syslog daemon (this machine), glibc's syslog() opens
; /dev/console for every line, which would cost stunnel milliseconds each
syslog = no
pid =
[bench]
; no TCP-wrappers lookup per connection (a check no other system makes)
libwrap = no
accept = 127.0.0.1:$port
connect = 127.0.0.1:$backend_port
cert = $work/cert.pem
key = $work/key.pem
sslVersionMin = TLSv1.2
ciphers = $tls12_ciphers
EOF
      start_in_session stunnel stunnel4 "$work/stunnel.conf"
      sid=$last_sid
      ;;
    hitch)
      start_backend
      start_in_session hitch hitch --frontend="[127.0.0.1]:$port" \
        --backend="[127.0.0.1]:$backend_port" --workers=1 --ciphers="$tls12_ciphers" \
        --tls-protos="TLSv1.2 TLSv1.3" --user=nobody "$work/combined.pem"
      sid=$last_sid
      ;;
    *) die "unknown system $name" ;;
  esac
  wait_port "$port" || die "$name did not start: $(cat "$work/$name.log")"
}

# --- tlsd's handoff time and memory per in-flight handshake -------------------
tlsd_extras() {
  # Handoff: handshake done -> the worker has the connection (here: the
  # relay's socketpair handed over; kTLS is measured in the VM lane).
  "$bin/tlsd/tlsctl" --socket "$work/tlsd-control.sock" status --json >"$out/tlsd-status.json"
  python3 - "$out/tlsd-status.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for s in d["services"]:
    if s["name"] == "bench":
        print(f'tlsd handoff (service bench, {s["outcomes"]["relay"]} relayed, '
              f'{s["outcomes"]["handed-off"]} handed off): '
              f'p50 {s["handoff_us"]["p50"]} us, p99 {s["handoff_us"]["p99"]} us')
PY
  # Memory: the engine's VmRSS (the key holder's does not change with
  # connections) before and while $hold connections wait mid-handshake.
  local engine rss0 rss1 tmp lg
  engine=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['pid'])" \
    "$out/tlsd-status.json")
  rss0=$(awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$engine/status")
  tmp="$work/hold.json"
  : >"$tmp"
  taskset -c 1 "$loadgen" --port "$tlsd_hold_port" --hold "$hold" --seconds 3 >"$tmp" &
  lg=$!
  for _ in $(seq 600); do [[ -s $tmp ]] && break; sleep 0.2; done
  [[ -s $tmp ]] || die "loadgen --hold $hold did not finish opening its connections"
  rss1=$(awk '/^VmRSS:/ {print $2 * 1024}' "/proc/$engine/status")
  wait "$lg" || die "loadgen --hold failed"
  echo "tlsd-engine-rss-tls1.3-in-flight,$hold,$rss0,$rss1,$(((rss1 - rss0) / hold))" >>"$memcsv"
  tail -1 "$memcsv"
}

# --- measuring ----------------------------------------------------------------
mkdir -p "$out"
csv="$out/results.csv"
echo "system,scenario,run,completed,failed,resumed,seconds,rate,cpu_seconds,per_cpu_second,backend_cpu_seconds,p50_ms,p99_ms,bytes,mib_per_s" >"$csv"
memcsv="$out/memory.csv"
echo "what,count,bytes_before,bytes_with,per_connection_bytes" >"$memcsv"
hz=$(getconf CLK_TCK)

measure() { # system, sid, scenario, run, loadgen args (a --port among them
  # wins over the system's)
  local system=$1 sid=$2 scenario=$3 run=$4
  shift 4
  local pids bpids before after bbefore bafter json
  pids=$(session_pids "$sid")
  bpids=""
  [[ -n ${backend_sid:-} ]] && bpids=$(session_pids "$backend_sid")
  before=$(cpu_ticks $pids)
  bbefore=$(cpu_ticks $bpids)
  json=$(taskset -c 1 "$loadgen" --port "$(port_of "$system")" --seconds "$secs" "$@")
  after=$(cpu_ticks $pids)
  bafter=$(cpu_ticks $bpids)
  python3 - "$system" "$scenario" "$run" "$json" "$((after - before))" "$((bafter - bbefore))" "$hz" >>"$csv" <<'PY'
import json, sys
system, scenario, run, js, ticks, bticks, hz = sys.argv[1:]
r = json.loads(js)
cpu = int(ticks) / int(hz)
bcpu = int(bticks) / int(hz)
per = r["completed"] / cpu if cpu > 0 else 0
print(f'{system},{scenario},{run},{r["completed"]},{r["failed"]},{r["resumed"]},{r["seconds"]},'
      f'{r["rate"]},{cpu:.3f},{per:.1f},{bcpu:.3f},{r["p50_ms"]},{r["p99_ms"]},'
      f'{r["bytes"]},{r["mib_per_s"]}')
PY
  tail -1 "$csv"
}

for system in $systems; do
  echo "== $system"
  if [[ $system == raw ]]; then
    for run in $(seq "$runs"); do
      for v in 1.3 1.2; do
        for mode in full resumed; do
          extra=()
          [[ $mode == resumed ]] && extra=(--resume)
          json=$(taskset -c 0 "$bin/bench/tlsd-bench-raw-openssl" --cert "$work/cert.pem" \
            --key "$work/key.pem" --tls "$v" --seconds "$secs" "${extra[@]}")
          python3 - "$v" "$mode" "$run" "$json" >>"$csv" <<'PY'
import json, sys
v, mode, run, js = sys.argv[1:]
r = json.loads(js)
print(f'raw,tls{v}-{mode},{run},{r["handshakes"]},0,{r["resumed"]},{r["server_cpu_seconds"]},'
      f'{r["handshakes"] / r["server_cpu_seconds"]:.1f},{r["server_cpu_seconds"]},{r["per_cpu_second"]},0,0,0,0,0')
PY
          tail -1 "$csv"
        done
      done
    done
    # OpenSSL's own heap per in-flight server handshake: tlsd's floor.
    for v in 1.3 1.2; do
      json=$("$bin/bench/tlsd-bench-raw-openssl" --cert "$work/cert.pem" --key "$work/key.pem" \
        --tls "$v" --hold "$hold")
      python3 - "$v" "$json" >>"$memcsv" <<'PY'
import json, sys
v, js = sys.argv[1:]
r = json.loads(js)
print(f'raw-openssl-heap-tls{v}-in-flight,{r["held"]},0,{r["server_heap_bytes"]},{r["per_handshake_bytes"]}')
PY
      tail -1 "$memcsv"
    done
    continue
  fi
  start_system "$system"
  # Warm up: first connections, caches, lazily loaded code.
  taskset -c 1 "$loadgen" --port "$(port_of "$system")" --seconds 1 >/dev/null
  for run in $(seq "$runs"); do
    for v in 1.3 1.2; do
      measure "$system" "$sid" "tls$v-full" "$run" --tls "$v" --concurrency 32
      measure "$system" "$sid" "tls$v-resumed" "$run" --tls "$v" --resume --concurrency 32
      measure "$system" "$sid" "tls$v-latency" "$run" --tls "$v" --rate "$rate" --concurrency 64
    done
    (
      [[ $system == tlsd ]] && backend_sid=$bulk_backend_sid
      measure "$system" "$sid" "bulk" "$run" --port "$(bulk_port_of "$system")" --tls 1.3 \
        --path /bulk.bin --concurrency 2
    )
  done
  if [[ $system == tlsd ]]; then
    tlsd_extras
  fi
  # Stop this terminator (the shared backend stays for the next proxy).
  for p in $(session_pids "$sid"); do kill "$p" 2>/dev/null || true; done
  if [[ $system == tlsd ]]; then
    for s in "$backend_sid" "$bulk_backend_sid"; do
      for p in $(session_pids "$s"); do kill "$p" 2>/dev/null || true; done
    done
  fi
  sleep 0.5
done

python3 "$repo/bench/report.py" "$csv" "$repo/bench"
echo "results: $csv, $repo/bench/RESULTS.md, $repo/bench/handshakes.png"
