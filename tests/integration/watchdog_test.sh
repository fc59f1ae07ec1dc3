#!/usr/bin/env bash
# The systemd notification protocol as tlsd speaks it, read off a real
# NOTIFY_SOCKET: the sealing key for systemd's fd store (FDSTORE=1), READY=1
# with a STATUS once it serves, then, with
# WATCHDOG_USEC set (what WatchdogSec= does), WATCHDOG=1 at half the
# interval while its handshake threads run, and STOPPING=1 on SIGTERM.
# Usage: watchdog_test.sh TLSD
set -euo pipefail
# shellcheck source=../support/tlsd_pull.sh
source "$(dirname "$0")/../support/tlsd_pull.sh"
tlsd=$1
fail() {
  echo "FAIL: $*" >&2
  for f in tlsd.log notify.log; do [[ -f $work/$f ]] && { echo "--- $f" >&2; cat "$work/$f" >&2; }; done
  exit 1
}
work=$(mktemp -d /tmp/tlsd-watchdog.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A notification socket: every datagram, one line each.
python3 - "$work/notify.sock" "$work/notify.log" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(1)
end = time.time() + 20
with open(sys.argv[2], "w") as log:
    while time.time() < end:
        try:
            data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(4 * 4))
        except socket.timeout:
            continue
        fds = sum(len(d) // 4 for lvl, typ, d in anc if typ == socket.SCM_RIGHTS)
        msg = data.decode()
        log.write(msg.replace("\n", " ") + (" [fds=%d]" % fds if fds else "") + "\n")
        log.flush()
        if "STOPPING=1" in msg:
            break
PY
pids+=($!)
for _ in $(seq 1 50); do [[ -S $work/notify.sock ]] && break; sleep 0.1; done

export NOTIFY_SOCKET=$work/notify.sock WATCHDOG_USEC=400000
start_tlsd_pull "$tlsd" "$work" web app
tlsd_pid=${pids[-1]}
unset NOTIFY_SOCKET WATCHDOG_USEC
sleep 2
pings=$(grep -c '^WATCHDOG=1' "$work/notify.log" || true)
grep -q '^READY=1 STATUS=serving 1 service(s)' "$work/notify.log" || fail "no READY=1 with STATUS"
grep -qx 'FDSTORE=1 FDNAME=sealing-key \[fds=1\]' "$work/notify.log" ||
  fail "the sealing key was not handed to the fd store"
# 2 s at one ping per 200 ms: about 10; allow for a slow machine.
((pings >= 5)) || fail "$pings watchdog pings in 2 s, want >= 5"
grep -q "systemd watchdog: pinging every 200ms" "$work/tlsd.log" || fail "tlsd did not log the watchdog"
kill -TERM "$tlsd_pid"
for _ in $(seq 1 50); do grep -q '^STOPPING=1' "$work/notify.log" && break; sleep 0.1; done
grep -q '^STOPPING=1' "$work/notify.log" || fail "no STOPPING=1 after SIGTERM"
echo "PASS: FDSTORE=1 sealing-key with 1 fd, READY=1, $pings WATCHDOG=1 in 2 s (every 200 ms), STOPPING=1"
