// What a backend learns about each connection: the metadata record tlsd
// sends with the socket, field by field, as an in-process libtlsfd backend
// receives it; and mutual TLS (client certificate subject and fingerprint,
// refusal of a client without a certificate).

#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;

struct CertFacts {
  std::string subject_rfc2253;
  std::string sha256_hex;
  std::string sha256_raw;
};

// Computes what tlsd should report from the certificate file itself.
CertFacts FactsFromCertFile(const std::string& path) {
  CertFacts f;
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) return f;
  BIO* bio = BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return f;
  BIO* out = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(out, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long len = BIO_get_mem_data(out, &data);
  f.subject_rfc2253.assign(data, len);
  BIO_free(out);
  unsigned char md[32];
  unsigned int md_len = 0;
  X509_digest(cert, EVP_sha256(), md, &md_len);
  f.sha256_raw.assign(reinterpret_cast<const char*>(md), md_len);
  static const char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < md_len; ++i) {
    f.sha256_hex.push_back(kHex[md[i] >> 4]);
    f.sha256_hex.push_back(kHex[md[i] & 15]);
  }
  X509_free(cert);
  return f;
}

class MetadataTest : public ::testing::TestWithParam<int> {};

std::string VersionName(const ::testing::TestParamInfo<int>& info) {
  return info.param == TLS1_3_VERSION ? "TLSv13" : "TLSv12";
}

TEST_P(MetadataTest, BackendReceivesEveryFieldOfTheConnection) {
  TLSD_IT_CHECK_KERNEL();
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon =
      TestDaemon::Start({.config = [](const DaemonEnv& env) {
        return SimpleConfig(env, "alpn = [\"h2\", \"http/1.1\"]\n");
      }});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  TestDaemon& d = **daemon;
  absl::StatusOr<std::unique_ptr<InProcessBackend>> backend =
      InProcessBackend::Subscribe(d.control(), "app", EchoHandler());
  ASSERT_TRUE(backend.ok()) << backend.status();

  TlsStatSnapshot before;
  ClientOptions opts;
  opts.version = GetParam();
  opts.sni = "localhost";
  opts.alpn = {"http/1.1"};
  absl::StatusOr<std::unique_ptr<TlsClient>> client = TlsClient::Connect(d.port(), opts);
  ASSERT_TRUE(client.ok()) << client.status() << "\ntlsd log:\n" << d.Log();
  TlsClient& cl = **client;
  ASSERT_TRUE(cl.Write("ping\n").ok());
  absl::StatusOr<std::string> echo = cl.ReadExactly(5);
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(*echo, "ping\n");
  const SSL_CIPHER* cipher = SSL_get_current_cipher(cl.ssl());
  const std::string client_addr = cl.LocalAddress();
  cl.Close();

  std::vector<ConnRecord> recs = (*backend)->WaitForConnections(1);
  ASSERT_EQ(recs.size(), 1u) << d.Log();
  const ConnRecord& r = recs[0];
  EXPECT_EQ(r.handler_error, "");
  EXPECT_GT(r.connection_id, 0u);
  EXPECT_EQ(r.service, "web");
  EXPECT_EQ(r.backend, "app");
  EXPECT_EQ(r.sni, "localhost");
  EXPECT_EQ(r.alpn, "http/1.1");
  EXPECT_EQ(r.tls_version, GetParam());
  EXPECT_EQ(r.tls_version_name, GetParam() == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2");
  EXPECT_EQ(r.cipher_suite, SSL_CIPHER_get_protocol_id(cipher));
  EXPECT_EQ(r.cipher_name, SSL_CIPHER_get_name(cipher));
  // The peer is this client's own socket; local is what it connected to.
  EXPECT_EQ(r.peer, client_addr);
  EXPECT_EQ(r.peer_family, AF_INET);
  EXPECT_EQ(r.local, absl::StrCat("127.0.0.1:", d.port()));
  EXPECT_EQ(r.local_family, AF_INET);
  EXPECT_EQ(r.resumed, 0);
  EXPECT_GT(r.handshake_us, 0u);
  EXPECT_EQ(r.has_client_cert, 0);
  EXPECT_EQ(r.client_cert_subject, "");
  EXPECT_EQ(r.client_cert_sha256_hex, "");
  EXPECT_EQ(r.client_cert_sha256_raw, std::string(32, '\0'));
  ExpectDataPath(r, d);
  ExpectKtlsCounters(before, 1);

  // The log line tells the same story.
  absl::StatusOr<ConnLogLine> line = d.WaitForConnLog(r.connection_id);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->Field("peer"), client_addr) << line->line;
  EXPECT_EQ(line->Field("sni"), "localhost") << line->line;
  EXPECT_EQ(line->Field("alpn"), "http/1.1") << line->line;
  EXPECT_EQ(line->Field("version"), r.tls_version_name) << line->line;
  EXPECT_EQ(line->Field("cipher"), r.cipher_name) << line->line;
}

TEST(MetadataIpv6Test, BackendGetsIpv6PeerAndLocalAddresses) {
  TLSD_IT_CHECK_KERNEL();
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon =
      TestDaemon::Start({.config = [](const DaemonEnv& env) {
        std::string toml = SimpleConfig(env);
        const std::string v4 = absl::StrCat("\"127.0.0.1:", env.port(), "\"");
        toml.replace(toml.find(v4), v4.size(), absl::StrCat("\"[::1]:", env.port(), "\""));
        return toml;
      }});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  TestDaemon& d = **daemon;
  absl::StatusOr<std::unique_ptr<InProcessBackend>> backend =
      InProcessBackend::Subscribe(d.control(), "app", EchoHandler());
  ASSERT_TRUE(backend.ok()) << backend.status();
  TlsStatSnapshot before;
  ClientOptions opts;
  opts.ipv6 = true;
  absl::StatusOr<std::unique_ptr<TlsClient>> client = TlsClient::Connect(d.port(), opts);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->Write("v6\n").ok());
  ASSERT_TRUE((*client)->ReadExactly(3).ok());
  const std::string client_addr = (*client)->LocalAddress();
  (*client)->Close();
  std::vector<ConnRecord> recs = (*backend)->WaitForConnections(1);
  ASSERT_EQ(recs.size(), 1u) << d.Log();
  const ConnRecord& r = recs[0];
  EXPECT_EQ(r.peer, client_addr);
  EXPECT_EQ(r.peer_family, AF_INET6);
  EXPECT_EQ(r.local, absl::StrCat("[::1]:", d.port()));
  EXPECT_EQ(r.local_family, AF_INET6);
  ExpectDataPath(r, d);
  ExpectKtlsCounters(before, 1);
  absl::StatusOr<ConnLogLine> line = d.WaitForConnLog(r.connection_id);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->Field("peer"), client_addr) << line->line;
}

std::string MutualTlsConfig(const DaemonEnv& env) {
  return SimpleConfig(env,
                      absl::StrCat("client_auth = \"require\"\nclient_ca = \"", env.ca, "\"\n"));
}

TEST_P(MetadataTest, MutualTlsReportsClientCertificateSubjectAndFingerprint) {
  TLSD_IT_CHECK_KERNEL();
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon =
      TestDaemon::Start({.config = MutualTlsConfig});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  TestDaemon& d = **daemon;
  absl::StatusOr<std::unique_ptr<InProcessBackend>> backend =
      InProcessBackend::Subscribe(d.control(), "app", EchoHandler());
  ASSERT_TRUE(backend.ok()) << backend.status();

  TlsStatSnapshot before;
  const std::string payload = absl::StrCat(RandomHex(64), "\n");
  PeerResult p = RunPeer(
      {kOpenssl, "s_client", "-connect", absl::StrCat("127.0.0.1:", d.port()), "-servername",
       "localhost", "-CAfile", d.env().ca, "-verify_return_error", "-cert", d.env().client_cert,
       "-key", d.env().client_key, GetParam() == TLS1_3_VERSION ? "-tls1_3" : "-tls1_2", "-quiet",
       "-no_ign_eof", "-nocommands"},
      {.stdin_data = payload, .close_stdin_after_stdout_has = payload});
  EXPECT_EQ(p.exit_code, 0) << p.Describe();
  EXPECT_EQ(p.out, payload) << p.Describe();

  std::vector<ConnRecord> recs = (*backend)->WaitForConnections(1);
  ASSERT_EQ(recs.size(), 1u) << d.Log();
  const ConnRecord& r = recs[0];
  const CertFacts want = FactsFromCertFile(d.env().client_cert);
  ASSERT_FALSE(want.subject_rfc2253.empty());
  EXPECT_EQ(r.has_client_cert, 1);
  EXPECT_EQ(r.client_cert_subject, want.subject_rfc2253);
  EXPECT_EQ(r.client_cert_sha256_hex, want.sha256_hex);
  EXPECT_TRUE(r.client_cert_sha256_raw == want.sha256_raw) << "raw SHA-256 differs from the hex";
  EXPECT_EQ(r.received, payload);
  ExpectDataPath(r, d);
  ExpectKtlsCounters(before, 1);
}

TEST_P(MetadataTest, RequireServiceRefusesClientWithoutCertificateWithAnAlert) {
  TLSD_IT_CHECK_KERNEL();
  absl::StatusOr<std::unique_ptr<TestDaemon>> daemon =
      TestDaemon::Start({.config = MutualTlsConfig});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  TestDaemon& d = **daemon;
  absl::StatusOr<std::unique_ptr<InProcessBackend>> backend =
      InProcessBackend::Subscribe(d.control(), "app", EchoHandler());
  ASSERT_TRUE(backend.ok()) << backend.status();

  // stdin stays open (nothing will be echoed), so s_client is still reading
  // when tlsd's alert arrives (TLS 1.3 clients finish their side of the
  // handshake before the server has checked their certificate).
  PeerResult p = RunPeer({kOpenssl, "s_client", "-connect", absl::StrCat("127.0.0.1:", d.port()),
                          "-servername", "localhost", "-CAfile", d.env().ca, "-verify_return_error",
                          GetParam() == TLS1_3_VERSION ? "-tls1_3" : "-tls1_2", "-nocommands"},
                         {.stdin_data = "hello\n",
                          .close_stdin_after_stdout_has = "never printed",
                          .timeout = absl::Seconds(15)});
  EXPECT_FALSE(p.timed_out) << "s_client did not see the connection end\n" << p.Describe();
  EXPECT_THAT(p.err, HasSubstr("alert")) << p.Describe();
  EXPECT_THAT(p.err, GetParam() == TLS1_3_VERSION ? HasSubstr("alert certificate required")
                                                  : HasSubstr("alert handshake failure"))
      << p.Describe();
  EXPECT_NE(p.exit_code, 0) << p.Describe();
  EXPECT_EQ((*backend)->NumAccepted(), 0u) << "a client without a certificate reached the backend";
  // tlsd says why.
  ASSERT_TRUE(d.WaitForLog("outcome=handshake-failed")) << d.Log();
  std::vector<ConnLogLine> lines = d.ConnLogLines();
  ASSERT_EQ(lines.size(), 1u) << d.Log();
  EXPECT_EQ(lines[0].Field("outcome"), "handshake-failed") << lines[0].line;
  EXPECT_THAT(lines[0].line, HasSubstr("certificate")) << lines[0].line;
}

INSTANTIATE_TEST_SUITE_P(Tls12AndTls13, MetadataTest,
                         ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION), VersionName);

}  // namespace
}  // namespace integration
}  // namespace tlsd
