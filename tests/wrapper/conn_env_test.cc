// ConnEnv and MergeEnv: what a wrapped program finds in its environment.

#include "wrapper/conn_env.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tlswrap {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsSupersetOf;
using ::testing::Not;
using ::testing::StartsWith;

tlsfd_info Info() {
  tlsfd_info info{};
  info.struct_size = sizeof(info);
  info.connection_id = 42;
  info.service = "web";
  info.backend = "app";
  info.sni = "example.com";
  info.alpn = "";
  info.tls_version_name = "TLSv1.3";
  info.cipher_name = "TLS_AES_128_GCM_SHA256";
  info.tx_path_name = "ktls-sw";
  info.rx_path_name = "ktls-sw";
  info.client_cert_sha256_hex = "";
  info.client_cert_subject = "";
  auto* peer = reinterpret_cast<sockaddr_in6*>(&info.peer_addr);
  peer->sin6_family = AF_INET6;
  inet_pton(AF_INET6, "2001:db8::1", &peer->sin6_addr);
  peer->sin6_port = htons(51234);
  auto* local = reinterpret_cast<sockaddr_in*>(&info.local_addr);
  local->sin_family = AF_INET;
  inet_pton(AF_INET, "192.0.2.7", &local->sin_addr);
  local->sin_port = htons(443);
  return info;
}

TEST(ConnEnvTest, NamesEveryFieldThatHasAValue) {
  EXPECT_THAT(
      ConnEnv(Info()),
      ElementsAre("TLS_SERVICE=web", "TLS_CONNECTION_ID=42", "TLS_SNI=example.com",
                  "TLS_VERSION=TLSv1.3", "TLS_CIPHER=TLS_AES_128_GCM_SHA256", "TLS_RESUMED=0",
                  "TLS_KTLS_TX=ktls-sw", "TLS_KTLS_RX=ktls-sw", "REMOTE_ADDR=2001:db8::1",
                  "REMOTE_PORT=51234", "LOCAL_ADDR=192.0.2.7", "LOCAL_PORT=443"));
}

TEST(ConnEnvTest, ClientCertificateAddsItsFingerprintAndSubject) {
  tlsfd_info info = Info();
  info.has_client_cert = 1;
  info.client_cert_sha256_hex = "ab12";
  info.client_cert_subject = "CN=alice,O=Example";
  info.alpn = "h2";
  info.resumed = 1;
  EXPECT_THAT(ConnEnv(info),
              IsSupersetOf({"TLS_PEER_CERT_SHA256=ab12", "TLS_PEER_CERT_SUBJECT=CN=alice,O=Example",
                            "TLS_ALPN=h2", "TLS_RESUMED=1"}));
}

TEST(ConnEnvTest, UnknownAddressAndNewlinesAreLeftOut) {
  tlsfd_info info = Info();
  std::memset(&info.peer_addr, 0, sizeof(info.peer_addr));  // AF_UNSPEC
  info.sni = "evil\nTLS_VERSION=SSLv2";
  const std::vector<std::string> env = ConnEnv(info);
  EXPECT_THAT(env, Not(Contains(StartsWith("REMOTE_"))));
  EXPECT_THAT(env, Not(Contains(StartsWith("TLS_SNI="))));
  EXPECT_THAT(env, Contains("LOCAL_PORT=443"));
}

TEST(MergeEnvTest, StaleConnectionVariablesGoAndTheRestStays) {
  const std::vector<std::string> base = {"PATH=/usr/bin", "TLS_SNI=stale",
                                         "TLS_PEER_CERT_SHA256=stale", "REMOTE_ADDR=10.0.0.1",
                                         "HOME=/root"};
  EXPECT_THAT(MergeEnv(base, {"TLS_SNI=example.com"}),
              ElementsAre("PATH=/usr/bin", "HOME=/root", "TLS_SNI=example.com"));
}

}  // namespace
}  // namespace tlswrap
