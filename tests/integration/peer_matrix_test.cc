// Real TLS clients against tlsd: curl, openssl s_client and gnutls-cli, each
// forced to one protocol version and one AEAD, exchange data with a backend
// through tlsd, both ways, and the bytes are compared. On a host the
// connection is relayed by tlsd; in the kTLS VM lane it must be handed off
// with kTLS in both directions (metadata, log line, /proc/net/tls_stat).

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::HasSubstr;

enum class Peer { kCurl, kOpensslSClient, kGnutlsCli };

struct Aead {
  const char* label;          // for test names
  const char* tls12_openssl;  // OpenSSL TLS 1.2 suite with an ECDSA key
  uint16_t tls12_id;
  const char* tls13_openssl;  // TLS 1.3 suite
  uint16_t tls13_id;
  const char* gnutls;  // GnuTLS cipher priority name
};

const Aead kAeads[] = {
    {"AES128GCM", "ECDHE-ECDSA-AES128-GCM-SHA256", 0xC02B, "TLS_AES_128_GCM_SHA256", 0x1301,
     "AES-128-GCM"},
    {"AES256GCM", "ECDHE-ECDSA-AES256-GCM-SHA384", 0xC02C, "TLS_AES_256_GCM_SHA384", 0x1302,
     "AES-256-GCM"},
    {"ChaCha20Poly1305", "ECDHE-ECDSA-CHACHA20-POLY1305", 0xCCA9, "TLS_CHACHA20_POLY1305_SHA256",
     0x1303, "CHACHA20-POLY1305"},
};

struct MatrixCase {
  Peer peer;
  bool tls13;
  const Aead* aead;
};

std::string PeerName(Peer p) {
  switch (p) {
    case Peer::kCurl:
      return "Curl";
    case Peer::kOpensslSClient:
      return "OpensslSClient";
    case Peer::kGnutlsCli:
      return "GnutlsCli";
  }
  return "?";
}

std::vector<MatrixCase> AllCases() {
  std::vector<MatrixCase> out;
  for (Peer p : {Peer::kCurl, Peer::kOpensslSClient, Peer::kGnutlsCli}) {
    for (bool tls13 : {false, true}) {
      for (const Aead& a : kAeads) out.push_back({p, tls13, &a});
    }
  }
  return out;
}

std::string CaseName(const ::testing::TestParamInfo<MatrixCase>& info) {
  return absl::StrCat(PeerName(info.param.peer), "_", info.param.tls13 ? "TLSv13" : "TLSv12", "_",
                      info.param.aead->label);
}

class PeerMatrixTest : public ::testing::TestWithParam<MatrixCase> {};

TEST_P(PeerMatrixTest, CompletesHandshakeAndExchangesDataBothWays) {
  TLSD_IT_CHECK_KERNEL();
  const MatrixCase& c = GetParam();
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon =
      TestDaemon::Start({.config = [](const DaemonEnv& env) { return SimpleConfig(env); }});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  TestDaemon& d = **daemon;
  absl::StatusOr<std::unique_ptr<InProcessBackend>> backend = InProcessBackend::Subscribe(
      d.control(), "app", c.peer == Peer::kCurl ? HttpEchoHandler() : EchoHandler());
  ASSERT_TRUE(backend.ok()) << backend.status();

  // 48 KiB of hex in lines: several TLS records each way.
  std::string payload;
  for (int i = 0; i < 48; ++i) absl::StrAppend(&payload, RandomHex(511), "\n");
  const std::string port = absl::StrCat(d.port());
  const std::string version = c.tls13 ? "TLSv1.3" : "TLSv1.2";
  const std::string cipher = c.tls13 ? c.aead->tls13_openssl : c.aead->tls12_openssl;

  TlsStatSnapshot before;
  PeerResult r;
  if (c.peer == Peer::kCurl) {
    const std::string body = absl::StrCat(d.env().dir, "/body");
    ASSERT_TRUE(WriteFile(body, payload).ok());
    std::vector<std::string> argv = {kCurl,
                                     "-q",
                                     "-sS",
                                     "--cacert",
                                     d.env().ca,
                                     "--resolve",
                                     absl::StrCat("localhost:", port, ":127.0.0.1"),
                                     "-H",
                                     "Expect:",
                                     "--data-binary",
                                     absl::StrCat("@", body)};
    if (c.tls13) {
      argv.insert(argv.end(), {"--tlsv1.3", "--tls-max", "1.3", "--tls13-ciphers", cipher});
    } else {
      argv.insert(argv.end(), {"--tlsv1.2", "--tls-max", "1.2", "--ciphers", cipher});
    }
    argv.push_back(absl::StrCat("https://localhost:", port, "/"));
    r = RunPeer(argv);
  } else if (c.peer == Peer::kOpensslSClient) {
    std::vector<std::string> argv = {kOpenssl,
                                     "s_client",
                                     "-connect",
                                     absl::StrCat("127.0.0.1:", port),
                                     "-servername",
                                     "localhost",
                                     "-verify_hostname",
                                     "localhost",
                                     "-CAfile",
                                     d.env().ca,
                                     "-verify_return_error",
                                     "-quiet",
                                     "-no_ign_eof",
                                     "-nocommands"};
    if (c.tls13) {
      argv.insert(argv.end(), {"-tls1_3", "-ciphersuites", cipher});
    } else {
      argv.insert(argv.end(), {"-tls1_2", "-cipher", cipher});
    }
    r = RunPeer(argv, {.stdin_data = payload, .close_stdin_after_stdout_has = payload});
  } else {
    const std::string priority = absl::StrCat(
        "NORMAL:-VERS-ALL:+VERS-", c.tls13 ? "TLS1.3" : "TLS1.2", ":-CIPHER-ALL:+", c.aead->gnutls);
    std::vector<std::string> argv = {
        kGnutlsCli,  "--x509cafile",      d.env().ca,  "--port",     port,     "--sni-hostname",
        "localhost", "--verify-hostname", "localhost", "--priority", priority, "127.0.0.1"};
    r = RunPeer(argv, {.stdin_data = payload, .close_stdin_after_stdout_has = payload});
  }
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_FALSE(r.timed_out) << r.Describe();
  // The backend's bytes reached the client (stdout) ...
  if (c.peer == Peer::kCurl) {
    EXPECT_EQ(r.out.size(), payload.size()) << r.Describe();
    EXPECT_TRUE(r.out == payload) << "curl's output differs from what it sent";
  } else {
    // gnutls-cli also prints its progress ("- Handshake was completed") to
    // stdout; s_client -quiet prints only the data.
    EXPECT_THAT(r.out, HasSubstr(payload)) << r.Describe();
    if (c.peer == Peer::kOpensslSClient) {
      EXPECT_EQ(r.out.size(), payload.size());
    }
  }

  std::vector<ConnRecord> recs = (*backend)->WaitForConnections(1);
  ASSERT_EQ(recs.size(), 1u) << "backend got no connection; tlsd log:\n" << d.Log();
  const ConnRecord& rec = recs[0];
  // ... and the client's bytes reached the backend intact.
  EXPECT_EQ(rec.handler_error, "");
  EXPECT_EQ(rec.received.size(), payload.size());
  EXPECT_TRUE(rec.received == payload) << "the backend received different bytes";
  // The forced version and AEAD are what was negotiated.
  EXPECT_EQ(rec.tls_version_name, version);
  EXPECT_EQ(rec.tls_version, c.tls13 ? 0x0304 : 0x0303);
  EXPECT_EQ(rec.cipher_name, cipher);
  EXPECT_EQ(rec.cipher_suite, c.tls13 ? c.aead->tls13_id : c.aead->tls12_id);
  EXPECT_EQ(rec.service, "web");
  EXPECT_EQ(rec.backend, "app");
  ExpectDataPath(rec, d);
  ExpectKtlsCounters(before, 1);
}

INSTANTIATE_TEST_SUITE_P(AllPeersVersionsAndAeads, PeerMatrixTest, ::testing::ValuesIn(AllCases()),
                         CaseName);

}  // namespace
}  // namespace integration
}  // namespace tlsd
