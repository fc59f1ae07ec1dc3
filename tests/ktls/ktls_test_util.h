#ifndef TLSD_TESTS_KTLS_KTLS_TEST_UTIL_H_
#define TLSD_TESTS_KTLS_KTLS_TEST_UTIL_H_

// Helpers for the kTLS tests: loopback TCP pairs, OpenSSL contexts pinned to
// one version and AEAD, and a two-thread handshake that ends in CompleteKtls
// on both ends.

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/unique_fd.h"
#include "gtest/gtest.h"
#include "tests/support/test_certs.h"
#include "tlsd/tls/ktls.h"
#include "tlsd/tls/ktls_types.h"
#include "tlsd/tls/ossl_ptr.h"

namespace tlsd {
namespace testing {

// InVmLane is true when the kTLS VM lane runs this binary (TLSD_IN_VM=1).
// There a missing TLS ULP is a failure, never a skip.
bool InVmLane();

// TLSD_REQUIRE_KTLS_OR_SKIP() ends the current test when the kernel cannot
// attach the TLS ULP: a skip with a reason on a host, a failure in the VM
// lane (which must never silently skip).
#define TLSD_REQUIRE_KTLS_OR_SKIP()                                       \
  do {                                                                    \
    if (!::tlsd::KernelHasTlsUlp()) {                                     \
      if (::tlsd::testing::InVmLane()) {                                  \
        FAIL() << "TLSD_IN_VM=1 but the kernel has no TLS ULP: the lane " \
                  "must run kTLS tests, not skip them";                   \
      }                                                                   \
      GTEST_SKIP() << "skipped: kernel has no TLS ULP";                   \
    }                                                                     \
  } while (0)

// SockDiagAvailable is true when the kernel answers a TCP sock_diag lookup
// (tcp_diag is a module on Debian kernels; a minimal VM may lack it). Then a
// root process gets verified kTLS modes from CompleteKtls.
bool SockDiagAvailable();

// TlsParams is one (version, AEAD) combination under test.
struct TlsParams {
  TlsVersion version;
  KtlsCipher cipher;
};

// PrintTo makes gtest print "TLSv1.3/AES-128-GCM" instead of raw bytes.
void PrintTo(const TlsParams& params, std::ostream* os);

// TlsParamsName makes a gtest-safe name such as "TLSv13_AES_128_GCM".
std::string TlsParamsName(const ::testing::TestParamInfo<TlsParams>& info);

// AllTlsParams is TLS 1.2 and 1.3 x the three AEADs (6 combinations).
std::vector<TlsParams> AllTlsParams();

// TcpPair is a connected loopback TCP connection (blocking sockets, with
// 60 s SO_RCVTIMEO/SO_SNDTIMEO so a stuck test fails instead of hanging).
struct TcpPair {
  UniqueFd client;
  UniqueFd server;
};
absl::StatusOr<TcpPair> MakeTcpPair();

// MakeCtx builds a client or server SSL_CTX limited to `params` (TLS 1.2 uses
// the ECDHE-ECDSA suite with that AEAD), with SSL_OP_ENABLE_KTLS when `ktls`
// and InstallSecretCapture when `capture`. The server presents the ECDSA
// certificate; the client trusts the test CA and checks "localhost".
absl::StatusOr<SslCtxPtr> MakeCtx(const TestCerts& certs, bool is_server, const TlsParams& params,
                                  bool ktls = true, bool capture = true);

// HandshakeError turns a failed SSL_do_handshake into a Status.
absl::Status HandshakeError(SSL* ssl, int ret, absl::string_view who);

// Connection is one client/server pair after the handshake. The SSL objects
// are declared after the sockets so they are freed first (SSL_set_fd borrows
// the fds: BIO_NOCLOSE).
struct Connection {
  TcpPair fds;
  SslPtr client;
  SslPtr server;
  absl::StatusOr<KtlsOutcome> client_outcome = absl::UnknownError("unset");
  absl::StatusOr<KtlsOutcome> server_outcome = absl::UnknownError("unset");
};

// Connect makes a TCP pair and SSLs from the two contexts, runs both
// handshakes at once (the server in a second thread, as a real peer would),
// and, when `complete_ktls`, calls CompleteKtls on each end right after its
// own SSL_do_handshake returned 1, in the thread that did the handshake.
absl::StatusOr<Connection> Connect(SSL_CTX* client_ctx, SSL_CTX* server_ctx,
                                   const KtlsOptions& opts, bool complete_ktls = true);

// ReadAll reads exactly `len` bytes with RecvTlsRecord, and counts the
// handshake records and handshake messages met on the way (kTLS RX returns
// e.g. TLS 1.3 NewSessionTickets as records of type 22). Any other record
// type is an error.
struct ReadAllResult {
  std::string data;
  int num_handshake_records = 0;
  int num_new_session_tickets = 0;
};
absl::StatusOr<ReadAllResult> ReadAll(int fd, size_t len);

// WriteAll writes `data` with plain write(2) calls of varying sizes, so
// record boundaries vary.
absl::Status WriteAll(int fd, absl::string_view data);

// RandomBytes returns `len` bytes from the OpenSSL DRBG.
std::string RandomBytes(size_t len);

}  // namespace testing
}  // namespace tlsd

#endif  // TLSD_TESTS_KTLS_KTLS_TEST_UTIL_H_
