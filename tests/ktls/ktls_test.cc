// The kTLS suite that proves the VM lane is real: OpenSSL handshakes over
// loopback TCP, CompleteKtls on both ends, and then the kernel alone moves
// the data (plain write(2), sendfile(2), and RecvTlsRecord for reads), with
// /proc/net/tls_stat showing exactly the software kTLS contexts expected.
//
// On a host without the TLS ULP every test here skips with "skipped: kernel
// has no TLS ULP"; with TLSD_IN_VM=1 the same condition is a failure.

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <iostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/base/unique_fd.h"
#include "common/ktls/record_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ktls/ktls_test_util.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_certs.h"
#include "tlsd/tls/ktls.h"
#include "tlsd/tls/sock_diag.h"
#include "tlsd/tls/tls_stat.h"

namespace tlsd {
namespace {

using ::testing::HasSubstr;
using ::tlsd::testing::IsOk;
using ::tlsd::testing::IsOkAndHolds;
using ::tlsd::testing::StatusIs;

constexpr size_t kMiB = 1024 * 1024;

// The counters this suite asserts on, and which must not move at all.
constexpr const char* kSwCounters[] = {"TlsTxSw", "TlsRxSw", "TlsCurrTxSw", "TlsCurrRxSw"};
constexpr const char* kQuietCounters[] = {"TlsTxDevice", "TlsRxDevice", "TlsDecryptError"};

int64_t Delta(const TlsStat& after, const TlsStat& before, const char* name) {
  return TlsStatValue(after, name) - TlsStatValue(before, name);
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EXPECT_EQ(EVP_Digest(data.data(), data.size(), md, &md_len, EVP_sha256(), nullptr), 1);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md), md_len));
}

// Sends close_notify through kTLS TX on `from` and checks that `to` reads it
// as an alert record through kTLS RX.
void ExchangeCloseNotify(int from, int to) {
  const std::vector<uint8_t> close_notify = {1, 0};  // warning, close_notify
  EXPECT_THAT(SendTlsRecord(from, kRecordAlert, close_notify), IsOk());
  std::vector<uint8_t> buf(kMaxTlsPlaintextLen);
  absl::StatusOr<RecordRead> r = RecvTlsRecord(to, absl::MakeSpan(buf));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->record_type, kRecordAlert);
  ASSERT_EQ(r->len, 2u);
  EXPECT_EQ(buf[0], 1);
  EXPECT_EQ(buf[1], 0);
}

class KtlsTest : public ::testing::TestWithParam<testing::TlsParams> {
 protected:
  static void SetUpTestSuite() {
    testing::TestCertsOptions opts;
    opts.with_rsa_server = false;  // ECDSA only: RSA keygen is slow under TCG
    auto certs = testing::TestCerts::Generate(opts);
    ASSERT_THAT(certs, IsOk());
    certs_ = new testing::TestCerts(std::move(*certs));
  }
  static void TearDownTestSuite() {
    delete certs_;
    certs_ = nullptr;
  }

  // Connects a client and a server, both with SSL_OP_ENABLE_KTLS and secret
  // capture, and CompleteKtls on each end.
  absl::StatusOr<testing::Connection> ConnectKtls(const testing::TlsParams& p,
                                                  const KtlsOptions& opts) {
    absl::StatusOr<SslCtxPtr> client_ctx = testing::MakeCtx(*certs_, false, p);
    if (!client_ctx.ok()) return client_ctx.status();
    absl::StatusOr<SslCtxPtr> server_ctx = testing::MakeCtx(*certs_, true, p);
    if (!server_ctx.ok()) return server_ctx.status();
    return testing::Connect(client_ctx->get(), server_ctx->get(), opts);
  }

  static testing::TestCerts* certs_;
};
testing::TestCerts* KtlsTest::certs_ = nullptr;

TEST_P(KtlsTest, BothEndsInKernelCarryOneMiBEachWay) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  const testing::TlsParams params = GetParam();
  const bool tls13 = params.version == TlsVersion::kTls13;
  TLSD_ASSERT_OK_AND_ASSIGN(const TlsStat before, ReadTlsStat());
  {
    TLSD_ASSERT_OK_AND_ASSIGN(testing::Connection conn, ConnectKtls(params, KtlsOptions()));
    for (const auto* o : {&conn.client_outcome, &conn.server_outcome}) {
      ASSERT_THAT(*o, IsOk());
      EXPECT_EQ((*o)->tx, KtlsMode::kSoftware) << (*o)->reason;
      EXPECT_EQ((*o)->rx, KtlsMode::kSoftware) << (*o)->reason;
      EXPECT_EQ((*o)->reason, "");
      EXPECT_EQ((*o)->rx_installed_by_tlsd, tls13);
      if (::geteuid() == 0 && testing::SockDiagAvailable()) {
        // Root has CAP_NET_ADMIN, so sock_diag must have answered.
        EXPECT_TRUE((*o)->verified) << (*o)->unverified_why;
      }
    }
    for (const auto& [who, o] :
         {std::pair{"client", &conn.client_outcome}, std::pair{"server", &conn.server_outcome}}) {
      std::cout << "[   INFO   ] " << who << ": tx=" << KtlsModeName((*o)->tx, (*o)->verified)
                << " rx=" << KtlsModeName((*o)->rx, (*o)->verified)
                << ((*o)->rx_installed_by_tlsd ? " (rx installed by tlsd)"
                                               : " (rx installed by OpenSSL)")
                << ((*o)->verified ? "" : " unverified: ") << (*o)->unverified_why << "\n";
    }
    // Both ends' modes, straight from the kernel.
    for (int fd : {conn.fds.client.get(), conn.fds.server.get()}) {
      absl::StatusOr<TcpUlpDiag> diag = QueryTcpUlpDiag(fd);
      if (diag.ok() && diag->has_ulp_info) {
        EXPECT_EQ(diag->ulp_name, "tls");
        EXPECT_EQ(diag->version, static_cast<uint16_t>(params.version));
        EXPECT_EQ(diag->tx_conf, KtlsConf::kSw);
        EXPECT_EQ(diag->rx_conf, KtlsConf::kSw);
      }
    }

    // Two software contexts per direction while both ends are open.
    TLSD_ASSERT_OK_AND_ASSIGN(const TlsStat during, ReadTlsStat());
    for (const char* name : kSwCounters) {
      EXPECT_EQ(Delta(during, before, name), 2) << name;
    }

    // 1 MiB each way at once, over the raw fds: write(2) into kTLS TX,
    // RecvTlsRecord out of kTLS RX (a plain read would fail with EIO on the
    // TLS 1.3 NewSessionTickets queued ahead of the data).
    const std::string to_server = testing::RandomBytes(kMiB);
    const std::string to_client = testing::RandomBytes(kMiB);
    absl::Status client_write, server_write;
    absl::StatusOr<testing::ReadAllResult> at_server = absl::UnknownError("");
    absl::StatusOr<testing::ReadAllResult> at_client = absl::UnknownError("");
    {
      const int c = conn.fds.client.get();
      const int s = conn.fds.server.get();
      // If any side fails (say a reader gets EBADMSG), shut both sockets so
      // the other threads' blocked I/O returns at once.
      auto stop_all_on_error = [c, s](bool ok) {
        if (!ok) {
          ::shutdown(c, SHUT_RDWR);
          ::shutdown(s, SHUT_RDWR);
        }
      };
      std::thread t1([&] {
        client_write = testing::WriteAll(c, to_server);
        stop_all_on_error(client_write.ok());
      });
      std::thread t2([&] {
        server_write = testing::WriteAll(s, to_client);
        stop_all_on_error(server_write.ok());
      });
      std::thread t3([&] {
        at_server = testing::ReadAll(s, kMiB);
        stop_all_on_error(at_server.ok());
      });
      std::thread t4([&] {
        at_client = testing::ReadAll(c, kMiB);
        stop_all_on_error(at_client.ok());
      });
      t1.join();
      t2.join();
      t3.join();
      t4.join();
    }
    // Readers first: their error is the cause, a writer's EPIPE the effect.
    ASSERT_THAT(at_server, IsOk()) << "client->server";
    ASSERT_THAT(at_client, IsOk()) << "server->client";
    ASSERT_THAT(client_write, IsOk());
    ASSERT_THAT(server_write, IsOk());
    EXPECT_TRUE(at_server->data == to_server) << "client->server bytes differ";
    EXPECT_TRUE(at_client->data == to_client) << "server->client bytes differ";
    // TLS 1.3: the server's two NewSessionTickets reach the client through the
    // RX key tlsd installed at sequence 0 (OpenSSL sent them through its kTLS
    // TX). TLS 1.2 sends its ticket inside the handshake.
    EXPECT_EQ(at_client->num_new_session_tickets, tls13 ? 2 : 0);
    EXPECT_EQ(at_server->num_handshake_records, 0);
    std::cout << "[   INFO   ] 1 MiB each way ok; client saw " << at_client->num_new_session_tickets
              << " NewSessionTicket(s) in " << at_client->num_handshake_records
              << " handshake record(s)\n";

    // Control records both ways: what the daemon will do to end a session.
    ExchangeCloseNotify(conn.fds.client.get(), conn.fds.server.get());
    ExchangeCloseNotify(conn.fds.server.get(), conn.fds.client.get());

    TLSD_ASSERT_OK_AND_ASSIGN(const TlsStat after_data, ReadTlsStat());
    for (const char* name : kQuietCounters) {
      EXPECT_EQ(Delta(after_data, before, name), 0) << name;
    }
  }  // both sockets closed here

  TLSD_ASSERT_OK_AND_ASSIGN(const TlsStat after, ReadTlsStat());
  std::cout << "[   INFO   ] tls_stat after close: TlsTxSw +" << Delta(after, before, "TlsTxSw")
            << " TlsRxSw +" << Delta(after, before, "TlsRxSw") << " TlsCurrTxSw "
            << TlsStatValue(after, "TlsCurrTxSw") << " TlsCurrRxSw "
            << TlsStatValue(after, "TlsCurrRxSw") << "\n";
  EXPECT_EQ(Delta(after, before, "TlsTxSw"), 2);
  EXPECT_EQ(Delta(after, before, "TlsRxSw"), 2);
  EXPECT_EQ(Delta(after, before, "TlsCurrTxSw"), 0);
  EXPECT_EQ(Delta(after, before, "TlsCurrRxSw"), 0);
}

INSTANTIATE_TEST_SUITE_P(AllVersionsAndAeads, KtlsTest,
                         ::testing::ValuesIn(testing::AllTlsParams()), testing::TlsParamsName);

// sendfile(2) of a 4 MiB file through kTLS TX, with both options on.
TEST_F(KtlsTest, SendfileThroughKtlsTx) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  const testing::TlsParams params{TlsVersion::kTls13, KtlsCipher::kAes128Gcm};
  KtlsOptions opts;
  opts.rx_expect_no_pad = true;
  opts.tx_zerocopy_ro = true;
  TLSD_ASSERT_OK_AND_ASSIGN(testing::Connection conn, ConnectKtls(params, opts));
  ASSERT_THAT(conn.server_outcome, IsOk());
  ASSERT_THAT(conn.client_outcome, IsOk());
  EXPECT_EQ(conn.server_outcome->tx, KtlsMode::kSoftware);
  EXPECT_EQ(conn.client_outcome->rx, KtlsMode::kSoftware);
  // Both options exist since 6.0, so nothing to report.
  EXPECT_EQ(conn.server_outcome->reason, "");
  EXPECT_EQ(conn.client_outcome->reason, "");
  absl::StatusOr<TcpUlpDiag> diag = QueryTcpUlpDiag(conn.fds.client.get());
  if (diag.ok() && diag->has_ulp_info) {
    EXPECT_TRUE(diag->rx_no_pad);
  }

  // A memfd is a real tmpfs file (sendfile goes through its page cache) and
  // needs no writable directory in the VM's initramfs.
  UniqueFd file(::memfd_create("ktls-sendfile", MFD_CLOEXEC));
  ASSERT_TRUE(file.valid()) << strerror(errno);
  const std::string content = testing::RandomBytes(4 * kMiB);
  ASSERT_THAT(testing::WriteAll(file.get(), content), IsOk());

  absl::StatusOr<testing::ReadAllResult> received = absl::UnknownError("");
  std::thread reader([&] {
    received = testing::ReadAll(conn.fds.client.get(), content.size());
    if (!received.ok()) {
      ::shutdown(conn.fds.server.get(), SHUT_RDWR);  // unblock sendfile
    }
  });
  off_t offset = 0;
  absl::Status sent;
  while (static_cast<size_t>(offset) < content.size()) {
    ssize_t n = ::sendfile(conn.fds.server.get(), file.get(), &offset,
                           content.size() - static_cast<size_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      sent = ErrnoToStatus(n < 0 ? errno : EIO, "sendfile");
      ::shutdown(conn.fds.server.get(), SHUT_RDWR);  // unblock the reader
      break;
    }
  }
  reader.join();
  ASSERT_THAT(received, IsOk());
  ASSERT_THAT(sent, IsOk());
  EXPECT_EQ(Sha256Hex(received->data), Sha256Hex(content));
  EXPECT_EQ(received->num_new_session_tickets, 2);
}

// TLS 1.3 RX needs the captured secret: forgetting InstallSecretCapture is a
// configuration bug, reported as such rather than as a silent relay.
TEST_F(KtlsTest, Tls13WithoutSecretCaptureIsAnError) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  const testing::TlsParams params{TlsVersion::kTls13, KtlsCipher::kAes128Gcm};
  TLSD_ASSERT_OK_AND_ASSIGN(SslCtxPtr client_ctx, testing::MakeCtx(*certs_, false, params));
  TLSD_ASSERT_OK_AND_ASSIGN(
      SslCtxPtr server_ctx,
      testing::MakeCtx(*certs_, true, params, /*ktls=*/true, /*capture=*/false));
  TLSD_ASSERT_OK_AND_ASSIGN(testing::Connection conn,
                            testing::Connect(client_ctx.get(), server_ctx.get(), KtlsOptions()));
  EXPECT_THAT(conn.server_outcome, StatusIs(absl::StatusCode::kFailedPrecondition,
                                            HasSubstr("CLIENT_TRAFFIC_SECRET_0")));
  EXPECT_THAT(conn.client_outcome, IsOk());
}

// With read_ahead on, OpenSSL can swallow the peer's first application record
// together with its Finished; RX at sequence 0 would then be wrong, and
// CompleteKtls must refuse instead of corrupting the stream.
TEST_F(KtlsTest, Tls13ReadAheadPastHandshakeIsRefused) {
  TLSD_REQUIRE_KTLS_OR_SKIP();
  const testing::TlsParams params{TlsVersion::kTls13, KtlsCipher::kAes128Gcm};
  TLSD_ASSERT_OK_AND_ASSIGN(SslCtxPtr client_ctx, testing::MakeCtx(*certs_, false, params));
  TLSD_ASSERT_OK_AND_ASSIGN(SslCtxPtr server_ctx, testing::MakeCtx(*certs_, true, params));
  SSL_CTX_set_read_ahead(server_ctx.get(), 1);
  TLSD_ASSERT_OK_AND_ASSIGN(testing::TcpPair fds, testing::MakeTcpPair());
  SslPtr client(SSL_new(client_ctx.get()));
  SslPtr server(SSL_new(server_ctx.get()));
  ASSERT_EQ(SSL_set_fd(client.get(), fds.client.get()), 1);
  ASSERT_EQ(SSL_set_fd(server.get(), fds.server.get()), 1);
  ASSERT_EQ(SSL_set1_host(client.get(), "localhost"), 1);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());

  // The client finishes its handshake and sends data right behind its
  // Finished before the server reads either, so the server's read-ahead read
  // takes both. The payload is larger than the client's whole last flight
  // (CCS + Finished, under 100 bytes), so once that many bytes are queued on
  // the server socket, application data is among them.
  constexpr int kPayloadLen = 1000;
  const std::string payload(kPayloadLen, 'x');
  std::atomic<bool> client_sent{false};
  absl::Status client_status;
  std::thread client_thread([&] {
    int ret = SSL_do_handshake(client.get());
    if (ret != 1) {
      client_status = testing::HandshakeError(client.get(), ret, "client");
    } else if (SSL_write(client.get(), payload.data(), kPayloadLen) != kPayloadLen) {
      client_status = absl::InternalError("client SSL_write");
    }
    client_sent = true;
  });
  ASSERT_EQ(::fcntl(fds.server.get(), F_SETFL, O_NONBLOCK), 0);
  int ret;
  while ((ret = SSL_do_handshake(server.get())) != 1) {
    if (SSL_get_error(server.get(), ret) != SSL_ERROR_WANT_READ) break;
    if (SSL_get_state(server.get()) == TLS_ST_EARLY_DATA) {
      // Waiting for the client's Finished: hold off until the data is
      // queued behind it (loopback delivers in softirq, maybe on another
      // CPU, so the client's write returning is not enough).
      for (int i = 0; i < 1000 && !client_sent; ++i) {
        ::usleep(10 * 1000);
      }
      int queued = 0;
      for (int i = 0; i < 1000 && queued < kPayloadLen; ++i) {
        ASSERT_EQ(::ioctl(fds.server.get(), FIONREAD, &queued), 0);
        if (queued < kPayloadLen) ::usleep(10 * 1000);
      }
    }
    pollfd p{fds.server.get(), POLLIN, 0};
    ::poll(&p, 1, 10000);
  }
  client_thread.join();
  ASSERT_THAT(client_status, IsOk());
  ASSERT_EQ(ret, 1) << testing::HandshakeError(server.get(), ret, "server");
  ASSERT_EQ(SSL_has_pending(server.get()), 1) << "test setup: read-ahead did not take the data";
  EXPECT_THAT(CompleteKtls(server.get(), fds.server.get(), true, KtlsOptions()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("read_ahead")));
}

}  // namespace
}  // namespace tlsd
