# tlsd_pull.sh — sourced by shell tests that run a real tlsd in front of one
# pull backend. The caller defines fail() and an array pids (killed at exit).
#
#   start_tlsd_pull TLSD WORK SERVICE BACKEND
#
# writes a self-signed localhost certificate (WORK/cert.pem, WORK/key.pem), picks
# a free loopback port (sets $port), writes WORK/tlsd.toml with SERVICE on that
# port routed to the pull BACKEND (allowed: the caller's uid), starts TLSD
# (log: WORK/tlsd.log) and waits for its control socket WORK/control.sock.

start_tlsd_pull() {
  local tlsd=$1 work=$2 service=$3 backend=$4 p
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  port=''
  # Below the ephemeral range: a client socket elsewhere may hold any port
  # in it (and then bind fails although nothing listens).
  local ephemeral_low _rest
  read -r ephemeral_low _rest </proc/sys/net/ipv4/ip_local_port_range
  for _ in $(seq 1 50); do
    p=$((10000 + RANDOM % (ephemeral_low - 10000)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
  done
  [[ -n $port ]] || fail "no free port"
  cat >"$work/tlsd.toml" <<TOML
[global]
control_socket = "$work/control.sock"
state_dir = "$work"

[[service]]
name = "$service"
listen = ["127.0.0.1:$port"]
backend = "$backend"

[[service.certificate]]
cert = "$work/cert.pem"
key = "$work/key.pem"

[[backend]]
name = "$backend"
mode = "pull"
allow_uids = [$(id -u)]
TOML
  "$tlsd" --config "$work/tlsd.toml" >"$work/tlsd.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do [[ -S $work/control.sock ]] && break; sleep 0.1; done
  [[ -S $work/control.sock ]] || fail "tlsd did not start: $(cat "$work/tlsd.log")"
}
