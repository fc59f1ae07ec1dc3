#!/usr/bin/env bash
# demo.sh — runs tlsd on an embedded default configuration:
#   * a self-signed ECDSA P-256 certificate for localhost/127.0.0.1 in a state
#     folder (kept between runs),
#   * the demo backend (libtlsfd/examples/demo_backend.c), subscribed over
#     tlsd's control socket, which answers every HTTPS request with the
#     connection's metadata (TLS version, cipher, SNI, kTLS mode or relay),
#   * and prints a curl command that works when pasted into another shell.
# Runs in the foreground; Ctrl-C stops both processes.
#
# Environment: TLSD_DEMO_PORT (default 8443), TLSD_DEMO_STATE (default
# /var/lib/tlsd-demo).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

port="${TLSD_DEMO_PORT:-8443}"
state="${TLSD_DEMO_STATE:-/var/lib/tlsd-demo}"

bash scripts/install-deps.sh
cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTLSD_VM_LANE=OFF >/dev/null
ninja -C build/demo tlsd tlsd-demo-backend >/dev/null

install -d -m 0700 "$state"
if [[ ! -s "$state/cert.pem" || ! -s "$state/key.pem" ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$state/key.pem" -out "$state/cert.pem" 2>/dev/null
  chmod 0600 "$state/key.pem"
fi

cat > "$state/tlsd.toml" <<TOML
# Written by scripts/demo.sh; see policy/examples/tlsd.toml for every option.
[global]
control_socket = "$state/control.sock"

[[service]]
name = "demo"
listen = ["127.0.0.1:$port"]
alpn = ["http/1.1"]
backend = "demo"

[[service.certificate]]
cert = "$state/cert.pem"
key = "$state/key.pem"

[[backend]]
name = "demo"
mode = "pull"
allow_uids = [$(id -u)]
TOML

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$repo/build/demo/tlsd/tlsd" --config "$state/tlsd.toml" &
pids+=($!)
for _ in $(seq 100); do [[ -S "$state/control.sock" ]] && break; sleep 0.1; done
"$repo/build/demo/libtlsfd/tlsd-demo-backend" --control "$state/control.sock" --backend demo &
pids+=($!)

curl_line="curl --cacert $state/cert.pem https://127.0.0.1:$port/"
for _ in $(seq 50); do
  if $curl_line -s -o /dev/null 2>/dev/null; then break; fi
  sleep 0.1
done
echo
echo "tlsd is serving https://127.0.0.1:$port/ — a first request returned:"
$curl_line -sS | sed 's/^/    /'
echo
echo "Paste this into another shell:"
echo
echo "    $curl_line"
echo
echo "Ctrl-C stops the demo."
wait -n "${pids[@]}"
