#!/usr/bin/env bash
# smoke_test.sh RAW_OPENSSL_BIN — the benchmark's baseline does what its
# figures claim: full handshakes complete, and with --resume every handshake
# but the first resumes (TLS 1.3 and 1.2). Not a timing test: 0.3 s each.
set -euo pipefail
raw=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
for v in 1.3 1.2; do
  full=$("$raw" --cert "$dir/cert.pem" --key "$dir/key.pem" --tls "$v" --seconds 0.3)
  resumed=$("$raw" --cert "$dir/cert.pem" --key "$dir/key.pem" --tls "$v" --seconds 0.3 --resume)
  echo "TLS $v full: $full"
  echo "TLS $v resumed: $resumed"
  python3 - "$full" "$resumed" <<'PY'
import json, sys
full, resumed = (json.loads(a) for a in sys.argv[1:])
assert full["handshakes"] >= 10 and full["resumed"] == 0, full
assert resumed["handshakes"] >= 10 and resumed["resumed"] == resumed["handshakes"] - 1, resumed
assert full["server_cpu_seconds"] > 0, full
PY
done
echo "ok"
