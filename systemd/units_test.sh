#!/usr/bin/env bash
# units_test.sh — the shipped units and their config, checked the way systemd
# and tlsd will read them:
#   1. `systemd-analyze verify` on every unit: exit 0 and nothing printed
#      (it only warns about an unknown key or a bad value, and exits 0);
#   2. `systemd-analyze security --offline=yes` on tlsd.service: exposure
#      level at most 2.0;
#   3. the names that tie units and config together agree (FileDescriptorName=
#      vs systemd_socket, LoadCredential= vs the key path, the push socket);
#   4. `tlsd --check-config` accepts systemd/tlsd.toml (certificate and key
#      paths pointed at a fresh self-signed pair).
# Templates (NAME@.service) are verified as an instance, NAME@example.service.
# Usage: units_test.sh BUILD_DIR SOURCE_DIR SBINDIR BINDIR TLSD DEMO_BACKEND TLS_WRAP "UNIT;UNIT..."
set -euo pipefail
build=$1 src=$2 sbindir=$3 bindir=$4 tlsd=$5 demo=$6 wrap=$7
IFS=';' read -r -a files <<<"$8"
fail() { echo "FAIL: $*" >&2; exit 1; }
work=$(mktemp -d /tmp/tlsd-units.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The configured units, with the build tree's binaries.
units=()
for f in "${files[@]}"; do
  u=${f/@./@example.}
  units+=("$u")
  sed -e "s|$sbindir/tlsd |$tlsd |" -e "s|$bindir/tlsd-demo-backend |$demo |" \
    -e "s|$bindir/tls-wrap |$wrap |" "$build/$f" >"$work/$u"
done
grep -q "^ExecStart=$wrap preload " "$work/tls-wrap@example.service" ||
  fail "tls-wrap@.service: ExecStart= not rewritten"
grep -q "^ExecStart=$tlsd " "$work/tlsd.service" || fail "tlsd.service: ExecStart= not rewritten"

# 1. verify
out=$(cd "$work" && systemd-analyze verify "${units[@]/#/$work/}" 2>&1) || fail "systemd-analyze verify: $out"
[[ -z $out ]] || fail "systemd-analyze verify printed warnings:
$out"
echo "systemd-analyze verify: ${#units[@]} units, no warnings"

# 2. security
sec=$(systemd-analyze security --offline=yes "$work/tlsd.service" 2>&1 | tail -1)
echo "$sec"
level=$(sed -n 's/.*Overall exposure level for tlsd.service: \([0-9.]*\).*/\1/p' <<<"$sec")
[[ -n $level ]] || fail "no exposure level in: $sec"
awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || fail "exposure level $level is above 2.0"

# The tls-wrap templates run arbitrary daemons, so they are less locked down
# than tlsd; still, nothing above "MEDIUM".
for u in tls-wrap@example.service tls-wrap-exec@example.service; do
  sec=$(systemd-analyze security --offline=yes "$work/$u" 2>&1 | tail -1)
  echo "$sec"
  level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$sec")
  [[ -n $level ]] || fail "no exposure level in: $sec"
  awk -v l="$level" 'BEGIN { exit !(l <= 4.0) }' || fail "$u: exposure level $level is above 4.0"
done

# 3. names
grep -qx 'WatchdogSec=30s' "$work/tlsd.service" || fail "tlsd.service: WatchdogSec="
grep -qx 'FileDescriptorName=web' "$work/tlsd.socket" || fail "tlsd.socket: FileDescriptorName=web"
grep -qx 'systemd_socket = "web"' "$src/tlsd.toml" || fail "tlsd.toml: systemd_socket = \"web\""
grep -qx 'FileDescriptorName=control' "$work/tlsd-control.socket" ||
  fail "tlsd-control.socket: FileDescriptorName=control (what tlsd looks for)"
ctl=$(sed -n 's/^ListenSequentialPacket=//p' "$work/tlsd-control.socket")
grep -qx "control_socket = \"$ctl\"" "$src/tlsd.toml" || fail "tlsd.toml: control_socket is not $ctl"
cred=$(sed -n 's/^LoadCredential=\([^:]*\):.*/\1/p' "$work/tlsd.service")
grep -qx "key = \"/run/credentials/tlsd.service/$cred\"" "$src/tlsd.toml" ||
  fail "tlsd.toml: no key from the credential $cred"
push=$(sed -n 's/^ListenSequentialPacket=//p' "$work/tlsd-demo-backend.socket")
grep -qx "socket = \"$push\"" "$src/tlsd.toml" || fail "tlsd.toml: push socket is not $push"
echo "names: fd 'web', fd 'control' at $ctl, credential $cred, push socket $push"

# 4. the config
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
sed -e "s|/etc/tlsd/web-ecdsa.crt|$work/cert.pem|" \
  -e "s|/run/credentials/tlsd.service/$cred|$work/key.pem|" "$src/tlsd.toml" >"$work/tlsd.toml"
"$tlsd" --check-config "$work/tlsd.toml" || fail "tlsd --check-config rejects systemd/tlsd.toml"
echo "PASS"
