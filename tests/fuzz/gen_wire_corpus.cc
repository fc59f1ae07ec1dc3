// Writes the seed corpus for wire_decode_fuzzer: a few valid encodings, as
// whole frames and as bare payloads. The output is committed under
// tests/fuzz/corpus/wire/; regenerate it after a wire format change with
//   ninja -C build gen_wire_corpus && build/tests/fuzz/gen_wire_corpus tests/fuzz/corpus/wire

#include <errno.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "common/wire/frame.h"
#include "common/wire/messages.h"

namespace tlsd {
namespace {

ConnectionInfo V4NoCert() {
  ConnectionInfo c;
  c.connection_id = 1;
  c.service = "web";
  c.backend = "app";
  c.sni = "www.example.com";
  c.alpn = "h2";
  c.tls_version = 0x0304;
  c.cipher_suite = 0x1301;
  c.cipher_name = "TLS_AES_128_GCM_SHA256";
  c.tx_path = DataPath::kKernelSoftware;
  c.rx_path = DataPath::kRelay;
  c.path_reason = "rx: relay";
  c.peer = WireAddress{4, {192, 0, 2, 10}, 50000};
  c.local = WireAddress{4, {198, 51, 100, 1}, 443};
  c.resumed = true;
  c.handshake_us = 1500;
  c.sealed_state = "sealed";
  return c;
}

ConnectionInfo V6WithCert() {
  ConnectionInfo c;
  c.connection_id = 0x0102030405060708ull;
  c.service = "imaps";
  c.backend = "dovecot";
  c.sni = "mail.example.org";
  c.tls_version = 0x0303;
  c.cipher_suite = 0xc02f;
  c.cipher_name = "ECDHE-RSA-AES128-GCM-SHA256";
  c.tx_path = DataPath::kKernelDevice;
  c.rx_path = DataPath::kKernelSoftware;
  c.peer = WireAddress{6, {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 1};
  c.local = WireAddress{};  // unknown
  c.has_client_cert = true;
  c.client_cert_subject = "CN=client,O=Example";
  for (size_t i = 0; i < c.client_cert_sha256.size(); ++i)
    c.client_cert_sha256[i] = static_cast<uint8_t>(i);
  c.handshake_us = 0xffffffffu;
  return c;
}

bool Write(const std::string& dir, const char* name, const std::vector<uint8_t>& bytes) {
  std::string path = dir + "/" + name;
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

}  // namespace
}  // namespace tlsd

int main(int argc, char** argv) {
  using namespace tlsd;
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const std::vector<uint8_t> hello = Hello{"app"}.Encode();
  const std::vector<uint8_t> error = ErrorMsg{ECONNREFUSED, "unknown backend"}.Encode();
  const std::vector<uint8_t> v4 = V4NoCert().Encode();
  const std::vector<uint8_t> v6 = V6WithCert().Encode();
  bool ok = true;
  ok &= Write(dir, "frame_hello", EncodeFrame(MsgType::kHello, 1, hello));
  ok &= Write(dir, "frame_hello_ok", EncodeFrame(MsgType::kHelloOk, 1, {}));
  ok &= Write(dir, "frame_error", EncodeFrame(MsgType::kError, 2, error));
  ok &= Write(dir, "frame_connection_v4", EncodeFrame(MsgType::kConnection, 3, v4));
  ok &= Write(dir, "frame_connect_reply_v6_cert", EncodeFrame(MsgType::kConnectReply, 4, v6));
  ok &= Write(dir, "payload_hello", hello);
  ok &= Write(dir, "payload_error", error);
  ok &= Write(dir, "payload_connection_v4", v4);
  ok &= Write(dir, "payload_connection_v6_cert", v6);
  const std::vector<uint8_t> admin = AdminRequest{AdminCommand::kStatus}.Encode();
  const std::vector<uint8_t> reply = AdminReplyChunk{true, "{\"ok\":true}"}.Encode();
  ok &= Write(dir, "frame_admin_request", EncodeFrame(MsgType::kAdminRequest, 5, admin));
  ok &= Write(dir, "frame_admin_reply", EncodeFrame(MsgType::kAdminReply, 5, reply));
  ok &= Write(dir, "payload_admin_reply", reply);
  return ok ? 0 : 1;
}
