// CollectTls13Tickets on real OpenSSL connections (no kTLS needed): it lets
// the client's OpenSSL take the server's NewSessionTickets and nothing
// behind them. What it leaves is proven intact by the client's OpenSSL
// reading on from the socket: a record taken too many, or one fed twice,
// would break the sequence and fail that read.

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/ktls/ktls_test_util.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_certs.h"
#include "tlsd/tls/tls13_tickets.h"

namespace tlsd {
namespace {

using ::tlsd::testing::IsOkAndHolds;

constexpr char kBanner[] = "220 the server speaks first\n";

// Sessions OpenSSL handed the client's new-session callback.
int g_sessions = 0;
int CountSession(SSL*, SSL_SESSION*) {
  ++g_sessions;
  return 0;  // not kept: OpenSSL frees it
}

class Tls13TicketsTest : public ::testing::TestWithParam<KtlsCipher> {
 protected:
  static void SetUpTestSuite() {
    testing::TestCertsOptions opts;
    opts.with_rsa_server = false;
    auto certs = testing::TestCerts::Generate(opts);
    ASSERT_TRUE(certs.ok()) << certs.status();
    certs_ = new testing::TestCerts(std::move(*certs));
  }
  static void TearDownTestSuite() {
    delete certs_;
    certs_ = nullptr;
  }

  // A TLS 1.3 connection whose server sends `tickets` tickets; no kTLS, so
  // everything stays on the wire.
  testing::Connection Connect(int tickets, TlsVersion version = TlsVersion::kTls13) {
    const testing::TlsParams params{version, GetParam()};
    absl::StatusOr<SslCtxPtr> client_ctx =
        testing::MakeCtx(*certs_, /*is_server=*/false, params, /*ktls=*/false);
    absl::StatusOr<SslCtxPtr> server_ctx =
        testing::MakeCtx(*certs_, /*is_server=*/true, params, /*ktls=*/false);
    EXPECT_TRUE(client_ctx.ok() && server_ctx.ok());
    SSL_CTX_set_session_cache_mode(client_ctx->get(),
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(client_ctx->get(), &CountSession);
    SSL_CTX_set_num_tickets(server_ctx->get(), tickets);
    g_sessions = 0;
    absl::StatusOr<testing::Connection> conn = testing::Connect(
        client_ctx->get(), server_ctx->get(), KtlsOptions(), /*complete_ktls=*/false);
    EXPECT_TRUE(conn.ok()) << conn.status();
    return *std::move(conn);
  }

  // The client's OpenSSL reads on from the socket: the banner, exactly.
  static void ExpectBannerIntact(SSL* client) {
    char buf[256];
    const int n = SSL_read(client, buf, sizeof(buf));
    ASSERT_GT(n, 0) << "the client's OpenSSL lost its place in the stream";
    EXPECT_EQ(std::string(buf, n), kBanner);
  }

  static testing::TestCerts* certs_;
};
testing::TestCerts* Tls13TicketsTest::certs_ = nullptr;

// The server's two tickets, then its banner right behind them: the two
// ticket records are taken (both sessions reach the callback), the banner is
// not.
TEST_P(Tls13TicketsTest, TakesTheTicketsAndLeavesTheDataBehindThem) {
  testing::Connection conn = Connect(2);
  ASSERT_EQ(SSL_write(conn.server.get(), kBanner, sizeof(kBanner) - 1), sizeof(kBanner) - 1);
  // Let all three records reach the client's socket, so the collector meets
  // the banner in the same look (either way it must take exactly 2).
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_THAT(
      CollectTls13Tickets(conn.client.get(), conn.fds.client.get(), absl::Now() + absl::Seconds(5)),
      IsOkAndHolds(2u));
  EXPECT_EQ(g_sessions, 2);
  ExpectBannerIntact(conn.client.get());
}

// No tickets: the banner is the first record, and it stays.
TEST_P(Tls13TicketsTest, ServerWithoutTicketsLosesNothing) {
  testing::Connection conn = Connect(0);
  ASSERT_EQ(SSL_write(conn.server.get(), kBanner, sizeof(kBanner) - 1), sizeof(kBanner) - 1);
  EXPECT_THAT(
      CollectTls13Tickets(conn.client.get(), conn.fds.client.get(), absl::Now() + absl::Seconds(5)),
      IsOkAndHolds(0u));
  EXPECT_EQ(g_sessions, 0);
  ExpectBannerIntact(conn.client.get());
}

// Tickets, and then silence: once it has tickets the collector takes only
// what is already there, so it returns long before `until`.
TEST_P(Tls13TicketsTest, AfterTheTicketsItDoesNotWaitForMore) {
  testing::Connection conn = Connect(1);
  const absl::Time start = absl::Now();
  EXPECT_THAT(
      CollectTls13Tickets(conn.client.get(), conn.fds.client.get(), start + absl::Seconds(30)),
      IsOkAndHolds(1u));
  EXPECT_LT(absl::Now() - start, absl::Seconds(15)) << "it waited for the deadline";
  EXPECT_EQ(g_sessions, 1);
  ASSERT_EQ(SSL_write(conn.server.get(), kBanner, sizeof(kBanner) - 1), sizeof(kBanner) - 1);
  ExpectBannerIntact(conn.client.get());
}

// No tickets and silence: the wait ends at `until`, not before, with
// nothing taken.
TEST_P(Tls13TicketsTest, SilentServerEndsTheWaitAtTheDeadline) {
  testing::Connection conn = Connect(0);
  const absl::Time until = absl::Now() + absl::Milliseconds(200);
  EXPECT_THAT(CollectTls13Tickets(conn.client.get(), conn.fds.client.get(), until),
              IsOkAndHolds(0u));
  EXPECT_GE(absl::Now(), until);
  ASSERT_EQ(SSL_write(conn.server.get(), kBanner, sizeof(kBanner) - 1), sizeof(kBanner) - 1);
  ExpectBannerIntact(conn.client.get());
}

// A server's TLS 1.3 KeyUpdate is not a ticket: left for the app (and tlsd's
// control-record path), with the tickets before it taken.
TEST_P(Tls13TicketsTest, KeyUpdateIsLeftAlone) {
  testing::Connection conn = Connect(1);
  ASSERT_EQ(SSL_key_update(conn.server.get(), SSL_KEY_UPDATE_NOT_REQUESTED), 1);
  ASSERT_EQ(SSL_write(conn.server.get(), kBanner, sizeof(kBanner) - 1), sizeof(kBanner) - 1);
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_THAT(
      CollectTls13Tickets(conn.client.get(), conn.fds.client.get(), absl::Now() + absl::Seconds(5)),
      IsOkAndHolds(1u));
  ExpectBannerIntact(conn.client.get());  // OpenSSL takes the KeyUpdate, then the banner
}

// TLS 1.2 has its ticket inside the handshake: nothing to collect, nothing
// read.
TEST_P(Tls13TicketsTest, Tls12IsLeftAlone) {
  testing::Connection conn = Connect(2, TlsVersion::kTls12);
  ASSERT_EQ(SSL_write(conn.server.get(), kBanner, sizeof(kBanner) - 1), sizeof(kBanner) - 1);
  EXPECT_THAT(
      CollectTls13Tickets(conn.client.get(), conn.fds.client.get(), absl::Now() + absl::Seconds(5)),
      IsOkAndHolds(0u));
  ExpectBannerIntact(conn.client.get());
}

INSTANTIATE_TEST_SUITE_P(AllAeads, Tls13TicketsTest,
                         ::testing::Values(KtlsCipher::kAes128Gcm, KtlsCipher::kAes256Gcm,
                                           KtlsCipher::kChaCha20Poly1305),
                         [](const auto& info) {
                           switch (info.param) {
                             case KtlsCipher::kAes128Gcm:
                               return "Aes128Gcm";
                             case KtlsCipher::kAes256Gcm:
                               return "Aes256Gcm";
                             default:
                               return "ChaCha20Poly1305";
                           }
                         });

}  // namespace
}  // namespace tlsd
