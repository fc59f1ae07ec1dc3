#!/usr/bin/env bash
# tls-wrap exec mode behind a real tlsd: openssl s_client talks to a bash
# script through tlsd and tls-wrap. Asserted: the script sees the
# connection's metadata in its environment, its stdin is a Unix socket (it
# never holds the TLS socket), the client's line is echoed, and when the
# client closes (close_notify) the script's read ends with end-of-file, not
# an error; tls-wrap reports the command's exit.
# Usage: exec_mode_test.sh TEST_DIR TLSD TLS_WRAP
set -euo pipefail
# shellcheck source=../support/tlsd_pull.sh
source "$(dirname "$0")/../support/tlsd_pull.sh"
here=$1 tlsd=$2 wrap=$3
fail() {
  echo "FAIL: $*" >&2
  for f in tlsd.log wrap.log reads.log; do [[ -f $work/$f ]] && { echo "--- $f" >&2; cat "$work/$f" >&2; }; done
  exit 1
}
work=$(mktemp -d /tmp/tls-wrap-exec.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --help documents both modes and where their systemd units are.
help=$("$wrap" --help)
for w in 'tls-wrap exec ' 'tls-wrap preload ' 'exec mode' 'preload mode' 'tls-wrap@.service' \
  'tls-wrap-exec@.service'; do
  grep -qF -- "$w" <<<"$help" || fail "tls-wrap --help does not mention '$w'"
done

start_tlsd_pull "$tlsd" "$work" legacy wrapped

"$wrap" exec --control "$work/control.sock" --backend wrapped --max-children 4 \
  -- bash "$here/show_env.sh" "$work/reads.log" >"$work/wrap.stdout" 2>"$work/wrap.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q "serving backend" "$work/wrap.log" && break; sleep 0.1; done
grep -q "serving backend" "$work/wrap.log" || fail "tls-wrap did not subscribe"

# The client: a line, then (once it is echoed) end of input, which makes
# s_client send close_notify.
coproc SC { openssl s_client -connect "127.0.0.1:$port" -servername localhost \
  -CAfile "$work/cert.pem" -verify_return_error -quiet -no_ign_eof 2>&1; }
pids+=("$SC_PID")
printf 'hello through tls-wrap\n' >&"${SC[1]}"
out=''
while IFS= read -r -t 20 line <&"${SC[0]}"; do
  out+="$line"$'\n'
  [[ $line == 'echo: hello through tls-wrap' ]] && break
done
in_fd=${SC[1]}
exec {in_fd}>&-
while IFS= read -r -t 20 line <&"${SC[0]}"; do out+="$line"$'\n'; done
echo "$out"

expect() { grep -qx -- "$1" <<<"$out" || fail "client output lacks a line '$1'"; }
expect 'TLS_SERVICE=legacy'
expect 'TLS_SNI=localhost'
expect 'TLS_VERSION=TLSv1.3'
expect 'TLS_CIPHER=TLS_[A-Z0-9_]*'
expect 'TLS_RESUMED=0'
expect 'TLS_KTLS_RX=\(relay\|ktls-sw\|ktls-hw\)'
expect 'REMOTE_ADDR=127.0.0.1'
expect 'REMOTE_PORT=[0-9]*'
expect "LOCAL_PORT=$port"
expect 'TLS_CONNECTION_ID=[0-9]*'
expect 'STDIN_UNIX=1'
expect 'echo: hello through tls-wrap'
grep -q '^TLS_PEER_CERT_SHA256=' <<<"$out" && fail "TLS_PEER_CERT_SHA256 set without a client certificate"

for _ in $(seq 1 100); do grep -q "exited" "$work/wrap.log" && break; sleep 0.1; done
reads=$(cat "$work/reads.log" 2>/dev/null || true)
[[ $reads == $'read: line\nread: end-of-file' ]] || fail "the wrapped program's reads: '$reads'"
grep -q "bash exited 0; client end-of-stream" "$work/wrap.log" || fail "tls-wrap's report"
echo "PASS: the wrapped script saw the metadata, echoed, and read end-of-file at close_notify"
