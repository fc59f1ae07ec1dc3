#!/usr/bin/env bash
# Plain C against the *installed* libtlsfd, built the way a consumer builds:
#   1. cmake --install the library's components into a staging prefix;
#   2. compile libtlsfd/examples/demo_backend.c with nothing but
#      `pkg-config --cflags --libs tlsfd` (no -I/-L of our own);
#   3. run it as a pull backend of a real tlsd and fetch its page with curl.
# Usage: c_example_pkgconfig_test.sh BUILD_DIR SOURCE_DIR TLSD_BINARY [SANITIZER_FLAGS]
# SANITIZER_FLAGS: what a sanitizer build's library needs its consumers to
# link with (-fsanitize=...); empty for a normal build.
set -euo pipefail
# shellcheck source=../support/tlsd_pull.sh
source "$(dirname "$0")/../support/tlsd_pull.sh"
build=$1 src=$2 tlsd=$3 sanitizer_flags=${4:-}
fail() { echo "FAIL: $*" >&2; exit 1; }

work=$(mktemp -d /tmp/tlsfd-pkgconfig.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# 1. Install (the runtime and development components only).
prefix=$work/prefix
for component in tlsfd tlsfd-dev; do
  cmake --install "$build" --prefix "$prefix" --component "$component" >/dev/null
done
pc=$(find "$prefix" -name tlsfd.pc -print -quit)
[[ -n $pc ]] || fail "no tlsfd.pc under $prefix"
export PKG_CONFIG_PATH=${pc%/*}
flags=$(pkg-config --cflags --libs tlsfd) || fail "pkg-config tlsfd failed"
echo "pkg-config --cflags --libs tlsfd: $flags"

# 2. Compile. -pthread is the example's own need (it runs a thread per
# connection), not the library's.
[[ -n $sanitizer_flags ]] && echo "sanitizer build: the consumer also links $sanitizer_flags"
# shellcheck disable=SC2086  # the flags are words on purpose
cc -std=c11 -Wall -Wextra -Werror -pthread $sanitizer_flags -o "$work/demo" \
  "$src/libtlsfd/examples/demo_backend.c" $flags || fail "the example does not build from pkg-config's flags"
# The staged library is not on the loader's path (no rpath in the .pc).
export LD_LIBRARY_PATH
LD_LIBRARY_PATH=$(pkg-config --variable=libdir tlsfd)
# (ldd's output in a variable: `ldd | grep -q` under pipefail fails whenever
# grep stops reading early and ldd gets SIGPIPE.)
libs=$(ldd "$work/demo")
grep -qF "$LD_LIBRARY_PATH/libtlsfd.so" <<<"$libs" || fail "the example does not use the staged libtlsfd: $libs"

# 3. Run it behind a real tlsd.
start_tlsd_pull "$tlsd" "$work" web demo
"$work/demo" --control "$work/control.sock" --backend demo >"$work/demo.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q "ready:" "$work/demo.log" && break; sleep 0.1; done
grep -q "ready:" "$work/demo.log" || fail "the example did not subscribe: $(cat "$work/demo.log")"

page=$(curl -sS --max-time 20 -w '\nhttp_code=%{http_code}\n' --cacert "$work/cert.pem" \
  --resolve "localhost:$port:127.0.0.1" "https://localhost:$port/") ||
  fail "curl failed; tlsd log: $(cat "$work/tlsd.log")"
echo "$page"
grep -q '^http_code=200$' <<<"$page" || fail "not HTTP 200"
grep -q '^tls_version: TLSv1\.[23]$' <<<"$page" || fail "no tls_version line"
grep -q '^cipher: ' <<<"$page" || fail "no cipher line"
grep -q '^sni: localhost$' <<<"$page" || fail "no sni line"
echo "PASS: the example built from pkg-config's flags served curl through tlsd"
