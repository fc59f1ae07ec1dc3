// Outgoing connections (CONNECT, libtlsfd's tlsfd_connect) against real
// `openssl s_server` peers: tlsd connects, verifies the server's chain and
// name with the client profile's trust store, installs kTLS (relays on a
// host without it) and hands the app the socket; sessions are kept per
// destination and resumed; verification and policy failures reach the app as
// clear errors.

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/base/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "libtlsfd/include/tlsfd.h"
#include "tests/integration/support/harness.h"
#include "tlsd/tls/ossl_ptr.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::HasSubstr;

// Two s_servers on free ports: good_port_ with the shared test certificate
// (SANs localhost, 127.0.0.1, ::1), other_port_ with a certificate for
// other.example from another CA, and expired_port_ with an expired one.
std::string ConnectConfig(const DaemonEnv& env) {
  const std::string other_ca = absl::StrCat(env.dir, "/other/ca.pem");
  auto profile = [&](absl::string_view name, absl::string_view extra) {
    return absl::StrCat("\n[[client_profile]]\nname = \"", name, "\"\n", extra, "\n");
  };
  return absl::StrCat(
      SimpleConfig(env),
      profile("up", absl::StrCat("allow_uids = [0]\ndestinations = [\"localhost:*\", "
                                 "\"127.0.0.1:*\"]\nca_file = \"",
                                 env.ca, "\"")),
      profile("up12", absl::StrCat("allow_uids = [0]\ndestinations = [\"localhost:*\"]\n"
                                   "max_version = \"1.2\"\nca_file = \"",
                                   env.ca, "\"")),
      profile("other", absl::StrCat("allow_uids = [0]\ndestinations = [\"localhost:*\"]\n"
                                    "ca_file = \"",
                                    other_ca, "\"")),
      profile("expired", absl::StrCat("allow_uids = [0]\ndestinations = [\"localhost:*\"]\n"
                                      "ca_file = \"",
                                      env.dir, "/expired/ca.pem\"")),
      profile("nobody", absl::StrCat("allow_uids = [4242]\ndestinations = [\"localhost:*\"]\n"
                                     "ca_file = \"",
                                     env.ca, "\"")));
}

// Listening: a TCP connect to 127.0.0.1:port succeeds.
bool Listening(int port) { return ConnectLoopback(port).valid(); }

// WriteServerCerts makes the other servers' certificates: DIR/other (its own
// CA; leaf for other.example) and DIR/expired (its own CA; the leaf expires
// the moment it is made).
absl::Status WriteServerCerts(const DaemonEnv& env) {
  testing::TestCertsOptions other_opts;
  other_opts.server_sans = {"other.example"};
  other_opts.with_rsa_server = false;
  absl::StatusOr<testing::TestCerts> other = testing::TestCerts::Generate(other_opts);
  if (!other.ok()) return other.status();
  if (absl::Status s = other->WriteTo(absl::StrCat(env.dir, "/other")); !s.ok()) return s;
  testing::TestCertsOptions expired_opts;
  expired_opts.with_rsa_server = false;
  expired_opts.valid_days = 0;
  absl::StatusOr<testing::TestCerts> expired = testing::TestCerts::Generate(expired_opts);
  if (!expired.ok()) return expired.status();
  return expired->WriteTo(absl::StrCat(env.dir, "/expired"));
}

class ConnectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TestDaemon>> d =
        TestDaemon::Start({.config = ConnectConfig, .prepare = WriteServerCerts});
    ASSERT_TRUE(d.ok()) << d.status();
    daemon_ = *std::move(d);
    const DaemonEnv& env = daemon_->env();
    good_port_ = PickFreePort();
    other_port_ = PickFreePort();
    expired_port_ = PickFreePort();
    good_ = StartServer(good_port_, env.cert, env.key, "good");
    other_ = StartServer(other_port_, absl::StrCat(env.dir, "/other/server-ecdsa.pem"),
                         absl::StrCat(env.dir, "/other/server-ecdsa.key"), "other");
    expired_ = StartServer(expired_port_, absl::StrCat(env.dir, "/expired/server-ecdsa.pem"),
                           absl::StrCat(env.dir, "/expired/server-ecdsa.key"), "expired");
    ASSERT_NE(good_, nullptr);
    ASSERT_NE(other_, nullptr);
    ASSERT_NE(expired_, nullptr);
  }

  std::unique_ptr<BackgroundProcess> StartServer(int port, const std::string& cert,
                                                 const std::string& key, absl::string_view name) {
    absl::StatusOr<std::unique_ptr<BackgroundProcess>> p = BackgroundProcess::Start(
        {kOpenssl, "s_server", "-accept", absl::StrCat(port), "-cert", cert, "-key", key, "-www"},
        absl::StrCat(daemon_->env().dir, "/s_server-", name, ".log"));
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return nullptr;
    // s_server's "ACCEPT" sits in its stdio buffer: wait for the socket.
    EXPECT_TRUE(WaitFor([port] { return Listening(port); }, absl::Seconds(10)))
        << "s_server did not listen on " << port << ":\n"
        << (*p)->Output();
    return *std::move(p);
  }

  // Connect asks tlsd for profile/host/port; returns tlsfd_connect's result.
  int Connect(const char* profile, const char* host, int port, tlsfd_conn** out) {
    tlsfd_connect_params p{};
    p.struct_size = sizeof(p);
    p.profile = profile;
    p.host = host;
    p.port = static_cast<uint16_t>(port);
    return tlsfd_connect(daemon_->control().c_str(), &p, 0, out);
  }

  // Get sends an HTTP/1.0 request and reads s_server's -www page to its end.
  static std::string Get(tlsfd_conn* c) {
    const std::string req = "GET / HTTP/1.0\r\n\r\n";
    EXPECT_EQ(tlsfd_write(c, req.data(), req.size()), static_cast<ssize_t>(req.size()));
    std::string page;
    char buf[4096];
    for (;;) {
      ssize_t n = tlsfd_read(c, buf, sizeof(buf));
      if (n == -EINTR) continue;
      if (n <= 0) {
        EXPECT_EQ(n, 0) << strerror(static_cast<int>(-n)) << ": " << tlsfd_last_error();
        break;
      }
      page.append(buf, n);
    }
    return page;
  }

  std::unique_ptr<TestDaemon> daemon_;
  std::unique_ptr<BackgroundProcess> good_;
  std::unique_ptr<BackgroundProcess> other_;
  int good_port_ = 0;
  int other_port_ = 0;
  std::unique_ptr<BackgroundProcess> expired_;
  int expired_port_ = 0;
};

struct VersionCase {
  const char* profile;
  uint16_t version;
};

class ConnectVersionTest : public ConnectTest, public ::testing::WithParamInterface<VersionCase> {};

TEST_P(ConnectVersionTest, VerifiedConnectionCarriesDataAndASecondOneResumes) {
  const VersionCase& v = GetParam();
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round == 0 ? "first connection" : "second connection");
    tlsfd_conn* c = nullptr;
    ASSERT_EQ(Connect(v.profile, "localhost", good_port_, &c), 0) << tlsfd_last_error() << "\n"
                                                                  << daemon_->Log();
    tlsfd_info info{};
    info.struct_size = sizeof(info);
    ASSERT_EQ(tlsfd_conn_info(c, &info), 0);
    EXPECT_EQ(info.tls_version, v.version);
    EXPECT_STREQ(info.service, v.profile);
    EXPECT_STREQ(info.sni, "localhost");
    const std::string path = KernelKtls() ? "ktls-sw" : "relay";
    EXPECT_EQ(info.tx_path_name, path);
    EXPECT_EQ(info.rx_path_name, path);
    const std::string page = Get(c);
    EXPECT_THAT(page, HasSubstr("HTTP/1.0 200 ok")) << page;
    EXPECT_THAT(page, HasSubstr("Cipher is")) << page;
    if (round == 1) {
      // TLS 1.3 over kTLS: the tickets s_server sends after the handshake
      // were taken in before the handoff (tls13_tickets.h).
      EXPECT_EQ(info.resumed, 1) << "tlsd keeps the destination's session and resumes it";
      EXPECT_THAT(page, HasSubstr("Reused, ")) << page;
    } else {
      EXPECT_EQ(info.resumed, 0);
      EXPECT_THAT(page, HasSubstr("New, ")) << page;
    }
    EXPECT_EQ(tlsfd_close(c), 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, ConnectVersionTest,
                         ::testing::Values(VersionCase{"up12", 0x0303}, VersionCase{"up", 0x0304}),
                         [](const auto& info) {
                           return info.param.version == 0x0303 ? "Tls12" : "Tls13";
                         });

// A TLS 1.3 server that speaks first: right behind its handshake and its two
// tickets it writes a banner, then echoes what it reads once and closes. It
// serves `connections` connections, in a thread, on a port of its own.
class SpeakFirstServer {
 public:
  static constexpr absl::string_view kBanner = "220 banner right behind the tickets\n";

  SpeakFirstServer(const DaemonEnv& env, int connections) {
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_3_VERSION);
    EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx_.get(), env.cert.c_str()), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx_.get(), env.key.c_str(), SSL_FILETYPE_PEM), 1);
    listener_ = UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    EXPECT_EQ(bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), len), 0);
    EXPECT_EQ(listen(listener_.get(), 4), 0);
    EXPECT_EQ(getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this, connections] {
      for (int i = 0; i < connections; ++i) Serve();
    });
  }
  ~SpeakFirstServer() {
    shutdown(listener_.get(), SHUT_RDWR);  // ends a pending accept
    thread_.join();
  }
  int port() const { return port_; }

 private:
  void Serve() {
    UniqueFd fd(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd.valid()) return;
    SslPtr ssl(SSL_new(ctx_.get()));
    SSL_set_fd(ssl.get(), fd.get());
    if (SSL_accept(ssl.get()) != 1) return;  // the client reports it
    // SSL_accept has sent the tickets; the banner goes right behind them.
    SSL_write(ssl.get(), kBanner.data(), static_cast<int>(kBanner.size()));
    char buf[256];
    const int n = SSL_read(ssl.get(), buf, sizeof(buf));
    if (n > 0) SSL_write(ssl.get(), buf, n);
    SSL_shutdown(ssl.get());
  }

  SslCtxPtr ctx_;
  UniqueFd listener_;
  int port_ = 0;
  std::thread thread_;
};

// What the server sends right behind its tickets is the app's: the tickets
// go to tlsd (so the second connection resumes), the banner reaches the
// app's first read intact, through kTLS where the kernel has it.
TEST_F(ConnectTest, Tls13ServerThatSpeaksFirstKeepsItsBannerAndTicketsAreStored) {
  SpeakFirstServer server(daemon_->env(), 2);
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round == 0 ? "first connection" : "second connection");
    tlsfd_conn* c = nullptr;
    ASSERT_EQ(Connect("up", "localhost", server.port(), &c), 0) << tlsfd_last_error() << "\n"
                                                                << daemon_->Log();
    tlsfd_info info{};
    info.struct_size = sizeof(info);
    ASSERT_EQ(tlsfd_conn_info(c, &info), 0);
    EXPECT_EQ(info.tls_version, 0x0304);
    const std::string path = KernelKtls() ? "ktls-sw" : "relay";
    EXPECT_EQ(info.rx_path_name, path);
    EXPECT_EQ(info.resumed, round) << (round == 1 ? "the tickets were not kept" : "");
    std::string banner;
    char buf[256];
    while (banner.size() < SpeakFirstServer::kBanner.size()) {
      ssize_t n = tlsfd_read(c, buf, sizeof(buf));
      if (n == -EINTR) continue;
      ASSERT_GT(n, 0) << strerror(static_cast<int>(-n)) << ": " << tlsfd_last_error();
      banner.append(buf, n);
    }
    EXPECT_EQ(banner, SpeakFirstServer::kBanner);
    ASSERT_EQ(tlsfd_write(c, "ping", 4), 4);
    std::string echo;
    while (echo.size() < 4) {
      ssize_t n = tlsfd_read(c, buf, sizeof(buf));
      if (n == -EINTR) continue;
      ASSERT_GT(n, 0) << strerror(static_cast<int>(-n)) << ": " << tlsfd_last_error();
      echo.append(buf, n);
    }
    EXPECT_EQ(echo, "ping");
    EXPECT_EQ(tlsfd_close(c), 0);
  }
}

TEST_F(ConnectTest, UnknownCaIsAVerificationError) {
  tlsfd_conn* c = nullptr;
  EXPECT_EQ(Connect("up", "localhost", other_port_, &c), -EKEYREJECTED);
  EXPECT_EQ(c, nullptr);
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("server certificate verification failed: unable to "
                                            "get local issuer certificate"));
}

TEST_F(ConnectTest, WrongHostnameIsAVerificationError) {
  // The chain is good for this profile; the name is not localhost.
  tlsfd_conn* c = nullptr;
  EXPECT_EQ(Connect("other", "localhost", other_port_, &c), -EKEYREJECTED);
  EXPECT_THAT(tlsfd_last_error(),
              HasSubstr("server certificate verification failed: hostname mismatch"));
}

TEST_F(ConnectTest, ExpiredCertificateIsAVerificationError) {
  tlsfd_conn* c = nullptr;
  EXPECT_EQ(Connect("expired", "localhost", expired_port_, &c), -EKEYREJECTED);
  EXPECT_THAT(tlsfd_last_error(),
              HasSubstr("server certificate verification failed: certificate has expired"));
}

TEST_F(ConnectTest, PolicyRefusalsAreClearErrors) {
  tlsfd_conn* c = nullptr;
  EXPECT_EQ(Connect("nobody", "localhost", good_port_, &c), -EACCES);
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("may not use client profile 'nobody'"));
  EXPECT_EQ(Connect("up", "127.0.0.2", good_port_, &c), -EACCES);
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("is not a destination of client profile 'up'"));
  EXPECT_EQ(Connect("nope", "localhost", good_port_, &c), -ENOENT);
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("no client profile named 'nope'"));
  EXPECT_TRUE(daemon_->WaitForLog("not allowed to use client profile 'nobody'")) << daemon_->Log();
}

TEST_F(ConnectTest, ClosedPortIsConnectionRefused) {
  const int closed = PickFreePort();
  tlsfd_conn* c = nullptr;
  EXPECT_EQ(Connect("up", "127.0.0.1", closed, &c), -ECONNREFUSED);
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("Connection refused"));
}

TEST_F(ConnectTest, BadParametersAreEinvalBeforeAskingTlsd) {
  tlsfd_connect_params p{};
  p.struct_size = sizeof(p);
  p.profile = "up";
  p.host = "bad host";
  p.port = 443;
  tlsfd_conn* c = nullptr;
  EXPECT_EQ(tlsfd_connect(daemon_->control().c_str(), &p, 0, &c), -EINVAL);
  EXPECT_THAT(tlsfd_last_error(), HasSubstr("host"));
  p.host = "localhost";
  p.port = 0;
  EXPECT_EQ(tlsfd_connect(daemon_->control().c_str(), &p, 0, &c), -EINVAL);
  p.struct_size = 8;
  EXPECT_EQ(tlsfd_connect(daemon_->control().c_str(), &p, 0, &c), -EINVAL);
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
