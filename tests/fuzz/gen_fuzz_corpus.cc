// Writes the seed corpora of sealed_state_fuzzer, control_record_fuzzer and
// proxy_protocol_fuzzer: real inputs (what tlsd, a worker, a TLS peer or a
// load balancer sends) and a few edge cases next to them. The output is
// committed under tests/fuzz/corpus/; regenerate it after a format change:
//   ninja -C build gen_fuzz_corpus && build/tests/fuzz/gen_fuzz_corpus tests/fuzz/corpus
// Sealed blobs get random nonces, so regenerating changes those files.

#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/ktls/record_io.h"
#include "common/wire/messages.h"
#include "tests/fuzz/sealed_state_fuzz.h"
#include "tlsd/control/sealed_state.h"

namespace tlsd {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes B(absl::string_view s) { return Bytes(s.begin(), s.end()); }

Bytes Cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

bool Write(const std::string& dir, const char* name, const Bytes& bytes) {
  mkdir(dir.c_str(), 0755);
  const std::string path = dir + "/" + name;
  FILE* f = fopen(path.c_str(), "wb");
  if (f == nullptr) {
    perror(path.c_str());
    return false;
  }
  bool ok = fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  ok = fclose(f) == 0 && ok;
  if (!ok) perror(path.c_str());
  return ok;
}

SecretBytes Filled(size_t len, uint8_t first) {
  SecretBytes s(len);
  for (size_t i = 0; i < len; ++i) s.data()[i] = static_cast<uint8_t>(first + i);
  return s;
}

ConnState Tls13Server() {
  ConnState s;
  s.is_server = true;
  s.tls_version = 0x0304;
  s.cipher_suite = 0x1301;
  s.connection_id = 7;
  s.rx_secret = Filled(32, 0x10);
  s.tx_secret = Filled(32, 0x40);
  s.rx_key_hash.fill(0xaa);
  s.tx_key_hash.fill(0xbb);
  s.window_records = 3;
  s.window_start_ms = 1700000000000;
  return s;
}

ConnState Tls13ClientSha384() {
  ConnState s = Tls13Server();
  s.is_server = false;
  s.cipher_suite = 0x1302;
  s.connection_id = 0xfedcba9876543210ull;
  s.rx_generation = 2;
  s.tx_generation = 1;
  s.rx_secret = Filled(48, 0x60);
  s.tx_secret = Filled(48, 0x90);
  return s;
}

ConnState Tls12Server() {
  ConnState s;
  s.tls_version = 0x0303;
  s.cipher_suite = 0xc02f;
  s.connection_id = 1;
  s.rx_key_hash.fill(0x01);
  s.tx_key_hash.fill(0x02);
  return s;
}

// ---- sealed_state_fuzzer: u8 mode | rest -----------------------------------

bool SealedState(const std::string& dir) {
  std::unique_ptr<Sealer> sealer = fuzz::FixedSealer();
  const WireAddress local = fuzz::LocalA(), peer = fuzz::PeerA();
  bool ok = true;
  struct Named {
    const char* blob;
    const char* plain;
    ConnState state;
  };
  const Named states[] = {
      {"blob_tls13_server", "plain_tls13_server", Tls13Server()},
      {"blob_tls13_client_sha384", "plain_tls13_client_sha384", Tls13ClientSha384()},
      {"blob_tls12_server", "plain_tls12_server", Tls12Server()},
  };
  for (const Named& n : states) {
    const std::string blob = sealer->Seal(n.state, local, peer);
    ok &= Write(dir, n.blob, Cat({0}, B(blob)));
    Bytes plain;
    if (!fuzz::OpenRaw(blob, local, peer, &plain)) return false;
    ok &= Write(dir, n.plain, Cat({1}, plain));
  }
  const std::string blob = sealer->Seal(Tls13Server(), local, peer);
  Bytes plain;
  fuzz::OpenRaw(blob, local, peer, &plain);
  // Edge cases: another connection's blob, a cut one, a wrong format byte,
  // too short to hold a tag; plaintext one byte short, one too long, and
  // with is_server = 2.
  ok &= Write(dir, "blob_other_addresses",
              Cat({0}, B(sealer->Seal(Tls13Server(), fuzz::LocalB(), fuzz::PeerB()))));
  ok &= Write(dir, "blob_truncated", Cat({0}, B(blob.substr(0, blob.size() - 1))));
  std::string format2 = blob;
  format2[0] = 2;
  ok &= Write(dir, "blob_format_2", Cat({0}, B(format2)));
  ok &= Write(dir, "blob_too_short", Cat({0}, B(blob.substr(0, 28))));
  ok &= Write(dir, "plain_short", Cat({1}, Bytes(plain.begin(), plain.end() - 1)));
  ok &= Write(dir, "plain_trailing_byte", Cat(Cat({1}, plain), {0}));
  Bytes bad_bool = plain;
  bad_bool[0] = 2;
  ok &= Write(dir, "plain_is_server_2", Cat({1}, bad_bool));
  ok &= Write(dir, "plain_empty", {1});
  // Mode 2 reads local | peer | fields; the plaintext of a real state after
  // two addresses is a well-formed one.
  Bytes addrs;
  for (const WireAddress& a : {fuzz::LocalB(), fuzz::PeerA()}) {
    addrs.push_back(a.family);
    addrs.insert(addrs.end(), a.addr.begin(), a.addr.end());
    addrs.push_back(static_cast<uint8_t>(a.port >> 8));
    addrs.push_back(static_cast<uint8_t>(a.port));
  }
  ok &= Write(dir, "struct_v6_tls13", Cat(Cat({2}, addrs), plain));
  ok &= Write(dir, "struct_zero", {2});
  return ok;
}

// ---- control_record_fuzzer: u8 flags | u16 cipher suite | rest ------------

constexpr uint8_t kServer = 1, kTls13 = 2;

Bytes Record(uint8_t flags, uint16_t suite, uint8_t type, const Bytes& payload) {
  ControlRecord r;
  r.record_type = type;
  r.payload = std::string(payload.begin(), payload.end());
  r.sealed_state = std::string(61, 'S');  // opaque to the parser
  return Cat({flags, static_cast<uint8_t>(suite >> 8), static_cast<uint8_t>(suite)}, r.Encode());
}

Bytes Direct(uint8_t flags, uint16_t suite, uint8_t type, const Bytes& payload) {
  return Cat({flags, static_cast<uint8_t>(suite >> 8), static_cast<uint8_t>(suite), type}, payload);
}

Bytes Msg(uint8_t type, const Bytes& body) {
  return Cat({type, 0, static_cast<uint8_t>(body.size() >> 8), static_cast<uint8_t>(body.size())},
             body);
}

bool ControlRecords(const std::string& dir) {
  const uint8_t s13 = kServer | kTls13, c13 = kTls13, s12 = kServer, c12 = 0;
  const Bytes key_update0 = Msg(24, {0}), key_update1 = Msg(24, {1});
  const Bytes ticket = Msg(4, Bytes(40, 0x7e));
  const Bytes client_hello = Msg(1, Bytes(60, 0x03));
  const Bytes hello_request = Msg(0, {});
  bool ok = true;
  ok &= Write(dir, "alert_close_notify", Record(s13, 0x1301, kRecordAlert, {1, 0}));
  ok &= Write(dir, "alert_user_canceled", Record(s13, 0x1301, kRecordAlert, {1, 90}));
  ok &= Write(dir, "alert_fatal_handshake_failure", Record(s12, 0xc02f, kRecordAlert, {2, 40}));
  ok &= Write(dir, "alert_wrong_length", Record(s13, 0x1301, kRecordAlert, {1, 0, 0}));
  ok &= Write(dir, "key_update_not_requested", Record(s13, 0x1301, kRecordHandshake, key_update0));
  ok &= Write(dir, "key_update_requested", Record(s13, 0x1303, kRecordHandshake, key_update1));
  ok &= Write(dir, "key_update_illegal_value", Record(s13, 0x1302, kRecordHandshake, Msg(24, {2})));
  ok &=
      Write(dir, "key_update_wrong_length", Record(s13, 0x1301, kRecordHandshake, Msg(24, {0, 0})));
  ok &= Write(dir, "key_update_not_last",
              Record(s13, 0x1301, kRecordHandshake, Cat(key_update0, ticket)));
  ok &= Write(dir, "key_update_unknown_cipher", Record(s13, 0x0000, kRecordHandshake, key_update0));
  ok &= Write(dir, "tickets_then_key_update_client",
              Record(c13, 0x1301, kRecordHandshake, Cat(Cat(ticket, ticket), key_update1)));
  ok &= Write(dir, "ticket_to_server", Record(s13, 0x1301, kRecordHandshake, ticket));
  ok &=
      Write(dir, "renegotiation_client_hello", Record(s12, 0xc02b, kRecordHandshake, client_hello));
  ok &= Write(dir, "renegotiation_hello_request",
              Record(c12, 0xc030, kRecordHandshake, Cat(hello_request, hello_request)));
  ok &= Write(dir, "renegotiation_then_truncated",
              Record(s12, 0xc02f, kRecordHandshake, Cat(client_hello, {1, 0, 0})));
  ok &= Write(dir, "handshake_split_across_records",
              Record(s13, 0x1301, kRecordHandshake, {4, 0, 1, 0, 1, 2, 3}));
  ok &=
      Write(dir, "handshake_zero_length_body", Record(s13, 0x1301, kRecordHandshake, Msg(20, {})));
  ok &= Write(dir, "change_cipher_spec", Record(s13, 0x1301, kRecordChangeCipherSpec, {1}));
  ok &= Write(dir, "direct_key_update", Direct(s13, 0x1301, kRecordHandshake, key_update1));
  ok &= Write(dir, "direct_empty_handshake", Direct(s13, 0x1301, kRecordHandshake, {}));
  ok &= Write(dir, "direct_application_data", Direct(s13, 0x1301, 23, {'G', 'E', 'T'}));
  ControlVerdict v;
  v.action = ControlAction::kContinue;
  v.message = "KeyUpdate applied (rx generation 1, tx generation 1)";
  v.sealed_state = std::string(120, 'B');
  ok &= Write(dir, "verdict_continue", Cat({s13, 0x13, 0x01}, v.Encode()));
  v.action = ControlAction::kFailed;
  v.has_alert = true;
  v.alert = kAlertUnexpectedMessage;
  v.message = "unexpected change_cipher_spec record after the handshake";
  v.sealed_state.clear();
  ok &= Write(dir, "verdict_failed_alert", Cat({s13, 0x13, 0x01}, v.Encode()));
  return ok;
}

// ---- proxy_protocol_fuzzer: the first bytes of a connection ---------------

Bytes V2(uint8_t ver_cmd, uint8_t fam, const Bytes& body) {
  const Bytes sig = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
  return Cat(Cat(sig, {ver_cmd, fam, static_cast<uint8_t>(body.size() >> 8),
                       static_cast<uint8_t>(body.size())}),
             body);
}

bool ProxyProtocol(const std::string& dir) {
  // The start of a TLS ClientHello, as it follows the header.
  const Bytes hello = {0x16, 0x03, 0x01, 0x00, 0xf4, 0x01, 0x00, 0x00, 0xf0, 0x03, 0x03};
  const Bytes v4 = {192, 0, 2, 10, 198, 51, 100, 1, 0xc3, 0x50, 0x01, 0xbb};
  Bytes v6(36, 0);
  const uint8_t v6_bytes[][2] = {{0, 0x20}, {1, 0x01},  {2, 0x0d},  {3, 0xb8},  {15, 1},
                                 {31, 1},   {32, 0xc3}, {33, 0x50}, {34, 0x01}, {35, 0xbb}};
  for (const auto& [at, value] : v6_bytes) v6[at] = value;  // 2001:db8::1 -> ::1
  // A TLV (PP2_TYPE_AUTHORITY "example.com") after the addresses.
  const Bytes tlv = Cat({0x02, 0x00, 0x0b}, B("example.com"));
  bool ok = true;
  ok &= Write(dir, "v1_tcp4", Cat(B("PROXY TCP4 192.0.2.10 198.51.100.1 50000 443\r\n"), hello));
  ok &= Write(dir, "v1_tcp6", B("PROXY TCP6 2001:db8::1 ::1 50000 443\r\n"));
  ok &= Write(dir, "v1_unknown", B("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"));
  ok &= Write(dir, "v1_longest",
              B("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"));
  ok &= Write(dir, "v1_incomplete", B("PROXY TCP4 192.0.2.10 198.51"));
  ok &= Write(dir, "v1_bad_port", B("PROXY TCP4 192.0.2.10 198.51.100.1 050000 443\r\n"));
  ok &= Write(dir, "v1_no_crlf_108", Cat(B("PROXY "), Bytes(102, 'x')));
  ok &= Write(dir, "v2_proxy_tcp4", Cat(V2(0x21, 0x11, v4), hello));
  ok &= Write(dir, "v2_proxy_tcp6_tlv", V2(0x21, 0x21, Cat(v6, tlv)));
  ok &= Write(dir, "v2_local", Cat(V2(0x20, 0x00, {}), hello));
  ok &= Write(dir, "v2_unix", V2(0x21, 0x31, Bytes(216, 0)));
  ok &= Write(dir, "v2_short_ipv4_block", V2(0x21, 0x11, Bytes(v4.begin(), v4.end() - 1)));
  ok &= Write(dir, "v2_too_long", V2(0x21, 0x11, Bytes(1025, 0)));
  const Bytes v2_tcp6 = V2(0x21, 0x21, v6);
  ok &= Write(dir, "v2_incomplete", Bytes(v2_tcp6.begin(), v2_tcp6.end() - 5));
  ok &= Write(dir, "v2_version_1", V2(0x11, 0x11, v4));
  ok &= Write(dir, "no_header_tls", hello);
  ok &= Write(dir, "no_header_http", B("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"));
  return ok;
}

}  // namespace
}  // namespace tlsd

int main(int argc, char** argv) {
  using namespace tlsd;
  if (argc != 2) {
    fprintf(stderr,
            "usage: %s CORPUS_DIR (writes its sealed_state/, control_record/, "
            "proxy_protocol/)\n",
            argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  bool ok = SealedState(dir + "/sealed_state");
  ok &= ControlRecords(dir + "/control_record");
  ok &= ProxyProtocol(dir + "/proxy_protocol");
  return ok ? 0 : 1;
}
