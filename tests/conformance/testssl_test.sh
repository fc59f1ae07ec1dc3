#!/usr/bin/env bash
# External conformance: Debian's testssl.sh against tlsd with its default
# TLS configuration (issue 9, point 5).
#
# Runs tlsd the way scripts/demo.sh does — a self-signed ECDSA P-256
# certificate for localhost, one service with no version or cipher settings
# (so the defaults of tlsd/config/config.h apply), the demo backend
# subscribed as a pull backend — and points a full testssl.sh scan at it
# (--full: every standard check plus each cipher per protocol and the GREASE
# / implementation-bug checks). Then fails if
#   * any finding has severity HIGH or CRITICAL (except the one listed in
#     EXPECTED below, a property of the test certificate, not of tlsd),
#   * a protocol other than TLS 1.2 and TLS 1.3 is offered,
#   * a cipher outside tlsd's default tls12_ciphers / tls13_ciphersuites is
#     offered, or none is,
# and prints a summary: findings per severity, protocols, ciphers.
#
# Usage: testssl_test.sh TLSD_BINARY DEMO_BACKEND_BINARY SOURCE_DIR [OUT_DIR]
# OUT_DIR (optional): keep testssl.sh's text output (testssl.txt), its JSON
# (testssl.json), the summary (summary.txt) and the logs of tlsd and the
# backend there, e.g. to refresh docs/testssl-*.txt.
# Offline: no DNS lookups, no CRL/OCSP fetches (testssl.sh's --phone-out is
# off by default).
set -euo pipefail
tlsd=$1 backend_bin=$2 src=$3 out_dir=${4:-}
fail() { echo "FAIL: $*" >&2; exit 1; }

testssl=$(command -v testssl || command -v testssl.sh || true)
[[ -n $testssl ]] || fail "testssl.sh is not installed (scripts/install-deps.sh --test installs it)"

work=$(mktemp -d /tmp/tlsd-testssl.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The certificate demo.sh makes (ECDSA P-256, CN and SAN localhost and
# 127.0.0.1), valid for 90 days (a common CA's lifetime) instead of demo.sh's
# 825: the validity period is the CA's choice, not tlsd's, and testssl.sh
# rates over 398 days, and under 60 days left, as findings of their own.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null || fail "openssl req failed"

# A free loopback port below the ephemeral range (where other jobs' client
# sockets cannot be holding it); tlsd is started again on another port if
# the bind still loses a race.
write_config() {
  # demo.sh's configuration (state_dir added so that nothing is written
  # outside $work). No min/max_version, tls12_ciphers or tls13_ciphersuites:
  # the defaults are what is tested.
  cat >"$work/tlsd.toml" <<TOML
[global]
control_socket = "$work/control.sock"
state_dir = "$work"

[[service]]
name = "demo"
listen = ["127.0.0.1:$port"]
alpn = ["http/1.1"]
backend = "demo"

[[service.certificate]]
cert = "$work/cert.pem"
key = "$work/key.pem"

[[backend]]
name = "demo"
mode = "pull"
allow_uids = [$(id -u)]
TOML
}
read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range
(( ephemeral_low > 11000 )) || ephemeral_low=32768
port=''
for _ in $(seq 1 10); do
  p=$((10000 + RANDOM % (ephemeral_low - 10000)))
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then continue; fi
  port=$p
  write_config
  "$tlsd" --config "$work/tlsd.toml" >"$work/tlsd.log" 2>&1 &
  tlsd_pid=$!
  pids+=("$tlsd_pid")
  for _ in $(seq 1 100); do
    [[ -S $work/control.sock ]] && break
    kill -0 "$tlsd_pid" 2>/dev/null || break
    sleep 0.1
  done
  [[ -S $work/control.sock ]] && break
  wait "$tlsd_pid" 2>/dev/null || true
  grep -q "Address already in use" "$work/tlsd.log" || fail "tlsd did not start: $(cat "$work/tlsd.log")"
  port=''
done
[[ -n $port ]] || fail "no free port for tlsd: $(cat "$work/tlsd.log")"
"$backend_bin" --control "$work/control.sock" --backend demo >"$work/backend.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q "ready:" "$work/backend.log" && break; sleep 0.1; done
grep -q "ready:" "$work/backend.log" || fail "the demo backend did not subscribe: $(cat "$work/backend.log")"
curl -sS --max-time 20 -o /dev/null --cacert "$work/cert.pem" \
  --resolve "localhost:$port:127.0.0.1" "https://localhost:$port/" ||
  fail "tlsd does not serve https://localhost:$port/; tlsd log: $(cat "$work/tlsd.log")"

# --add-ca: the self-signed certificate is this test's CA. Without it every
# store fails "chain of trust" (CRITICAL), which would say nothing about tlsd.
# --ip/--nodns none: connect to 127.0.0.1 with SNI localhost, no DNS at all.
# --warnings batch: never stop for a question. The timeouts only end a
# handshake that hangs; 30 s for openssl leaves room for a loaded CI machine
# (with 10 s, one run under load lost the ticket-resumption check to a
# "Connect problem" warning). No --fast (it tests ciphers with the local
# openssl instead of testssl.sh's own handshakes, so it would miss ciphers
# OpenSSL 3 no longer builds in).
echo "testssl.sh $("$testssl" --version 2>/dev/null | grep -om1 '[0-9]\.[0-9][0-9.a-z+-]*' || true) against tlsd on localhost:$port"
start=$(date +%s)
set +e
"$testssl" --full --quiet --color 0 --warnings batch --nodns none --ip 127.0.0.1 \
  --connect-timeout 10 --openssl-timeout 30 --add-ca "$work/cert.pem" \
  --jsonfile-pretty "$work/testssl.json" "localhost:$port" >"$work/testssl.txt" 2>&1
rc=$?
set -e
echo "testssl.sh took $(( $(date +%s) - start )) s, exit status $rc"
if [[ -n $out_dir ]]; then
  mkdir -p "$out_dir"
  rm -f "$out_dir"/{testssl.txt,testssl.json,summary.txt,tlsd.log,backend.log}
  cp "$work"/{testssl.txt,testssl.json,tlsd.log,backend.log} "$out_dir/" 2>/dev/null || true
fi
[[ -s $work/testssl.json ]] || fail "testssl.sh wrote no JSON; its output: $(cat "$work/testssl.txt")"
# testssl.sh's exit status counts problems it hit while scanning; its
# findings are judged below from the JSON, which lists such problems too.
kill -0 "$tlsd_pid" 2>/dev/null || fail "tlsd died during the scan: $(cat "$work/tlsd.log")"

if ! python3 - "$work/testssl.json" "$src/tlsd/config/config.h" "${out_dir:+$out_dir/summary.txt}" <<'PY'
import collections, json, re, subprocess, sys

summary = []
def say(line):
    print(line)
    summary.append(line)

# Findings of the test certificate, not of tlsd. Each is listed by its exact
# testssl.sh id; any other HIGH or CRITICAL finding fails.
EXPECTED = {
    # A CA-issued certificate carries a CRL distribution point or an OCSP
    # URI; a self-signed test certificate has neither. tlsd serves the
    # certificate it is given (and staples OCSP when configured).
    "cert_revocation": "self-signed test certificate: no CRL or OCSP URI",
}

report = json.load(open(sys.argv[1]))
findings = [f for scan in report.get("scanResult", []) for section, items in scan.items()
            if isinstance(items, list) for f in items if isinstance(f, dict) and "id" in f]
if not findings:
    sys.exit("no findings in the JSON: the scan did not run")

# tlsd's defaults, read from the code (tlsd/config/config.h), so the test
# follows them if they change; OpenSSL names them by hex code.
header = open(sys.argv[2]).read()
def default(key):
    m = re.search(r"std::string " + key + r"\s*=\s*((?:\s*\"[^\"]*\")+)\s*;", header)
    if not m:
        sys.exit(f"cannot find the default {key} in config.h")
    return "".join(re.findall(r"\"([^\"]*)\"", m.group(1)))
def hexcodes(proto, args):
    out = subprocess.run(["openssl", "ciphers", "-V"] + args, check=True,
                         capture_output=True, text=True).stdout
    codes = {}
    for line in out.splitlines():
        m = re.match(r"\s*0x([0-9A-F]{2}),0x([0-9A-F]{2}) - (\S+)\s+(\S+)", line)
        if m and m.group(4) == proto:
            codes[(m.group(1) + m.group(2)).lstrip("0").lower()] = m.group(3)
    return codes
allowed = {}  # hex code without leading zeros -> OpenSSL name
allowed.update(hexcodes("TLSv1.2", ["-tls1_2", "-ciphersuites", "", default("tls12_ciphers")]))
allowed.update(hexcodes("TLSv1.3", ["-tls1_3", "-ciphersuites", default("tls13_ciphersuites")]))
if len(allowed) != 9:
    sys.exit(f"expected 6 TLS 1.2 and 3 TLS 1.3 default ciphers, OpenSSL knows {sorted(allowed.values())}")

problems = []
by_severity = collections.Counter(f.get("severity", "?") for f in findings)
protocols = {}
ciphers = []
for f in findings:
    fid, sev, text = f["id"], f.get("severity", ""), f.get("finding", "")
    if sev == "FATAL":  # testssl.sh could not finish a check
        problems.append(f"{sev} {fid}: {text}")
    if sev in ("HIGH", "CRITICAL"):
        if fid in EXPECTED:
            say(f"expected {sev} finding {fid}: {text!r} ({EXPECTED[fid]})")
        else:
            problems.append(f"{sev} {fid}: {text}")
    if fid in ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3"):
        offered = text.startswith("offered")
        protocols[fid] = text
        if offered != (fid in ("TLS1_2", "TLS1_3")):
            problems.append(f"protocol {fid}: {text}")
    # -E, cipher per protocol: id cipher-tls1_2_xc02b, finding
    # "TLS 1.2   xc02b   ECDHE-ECDSA-AES128-GCM-SHA256   ECDH 253 ...".
    if re.match(r"cipher-(tls|ssl)", fid):
        m = re.match(r"(.*?)\s+x([0-9a-f]+)\s+(\S+)", text)
        if not m:
            problems.append(f"cannot read {fid}: {text}")
            continue
        proto, code, name = m.group(1), m.group(2).lstrip("0"), m.group(3)
        ciphers.append((proto, "x" + m.group(2), name))
        if allowed.get(code) != name:
            problems.append(f"cipher {proto} x{m.group(2)} {name} is not one of tlsd's defaults")

for fid in ("TLS1_2", "TLS1_3"):
    if fid not in protocols:
        problems.append(f"no result for protocol {fid}")
if not ciphers:
    problems.append("no cipher listed (cipher-per-protocol check did not run)")

say("findings per severity: " + ", ".join(
    f"{s} {by_severity[s]}" for s in ("CRITICAL", "HIGH", "MEDIUM", "LOW", "WARN", "INFO", "OK")
    if by_severity[s]) + "".join(f", {s} {n}" for s, n in by_severity.items()
    if s not in ("CRITICAL", "HIGH", "MEDIUM", "LOW", "WARN", "INFO", "OK")))
say("protocols: " + "; ".join(f"{p} {t}" for p, t in protocols.items()))
say("ciphers offered (%d):" % len(ciphers))
for proto, code, name in ciphers:
    say(f"  {proto:8} {code:7} {name}")
say("allowed by tlsd's defaults: " + " ".join(sorted(set(allowed.values()))))
for f in findings:
    if f.get("severity") in ("MEDIUM", "LOW", "WARN"):
        say(f"{f['severity']:6} {f['id']}: {f.get('finding', '')}")
for p in problems:
    say("PROBLEM: " + p)
if sys.argv[3:] and sys.argv[3]:
    with open(sys.argv[3], "w") as out:
        out.write("\n".join(summary) + "\n")
if problems:
    sys.exit(1)
PY
then
  fail "testssl.sh's findings (above) fail the test; its full output: $(cat "$work/testssl.txt")"
fi
echo "PASS: testssl.sh: no HIGH/CRITICAL finding other than the test certificate's; only TLS 1.2/1.3 and tlsd's default ciphers"
