#!/usr/bin/env bash
# example_test.sh — policy/examples/tlsd.toml, the commented example of every
# key, must stay a config tlsd accepts: `tlsd --check-config` on it, with its
# certificate and key paths pointed at fresh pairs of the same kinds (ECDSA
# and RSA side by side for "web", ECDSA for "imaps").
# Usage: example_test.sh SOURCE_DIR TLSD
set -euo pipefail
src=$1 tlsd=$2
work=$(mktemp -d /tmp/tlsd-policy.XXXXXX)
trap 'rm -rf "$work"' EXIT
pair() {  # pair NAME KEYSPEC...
  local name=$1
  shift
  openssl req -x509 -newkey "$@" -nodes -days 1 -subj "/CN=$name" \
    -keyout "$work/$name.key" -out "$work/$name.crt" 2>/dev/null
}
pair web-ecdsa ec -pkeyopt ec_paramgen_curve:P-256
pair web-rsa rsa:2048
pair mail ec -pkeyopt ec_paramgen_curve:P-256
sed -e "s|\"/etc/tlsd/|\"$work/|" "$src/examples/tlsd.toml" >"$work/tlsd.toml"
out=$("$tlsd" --check-config "$work/tlsd.toml" 2>&1) || {
  echo "FAIL: tlsd --check-config rejects policy/examples/tlsd.toml: $out" >&2
  exit 1
}
echo "$out"
