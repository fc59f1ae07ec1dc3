// The parts of kTLS installation that do not need a kTLS kernel: crypto_info
// layout, cipher mapping, tls_stat parsing, record I/O framing, sock_diag on
// plain sockets, error mapping, and CompleteKtls's report on a kernel
// without the TLS ULP. Every test here also runs (and must pass) in the VM
// lane, where the kernel-dependent expectations flip.

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/ktls/record_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ktls/ktls_test_util.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_certs.h"
#include "tlsd/tls/ktls.h"
#include "tlsd/tls/ktls_types.h"
#include "tlsd/tls/ossl_error.h"
#include "tlsd/tls/sock_diag.h"
#include "tlsd/tls/tls_stat.h"

namespace tlsd {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::tlsd::testing::IsOk;
using ::tlsd::testing::IsOkAndHolds;
using ::tlsd::testing::StatusIs;

// KernelAtLeast compares the running kernel's release with major.minor.
bool KernelAtLeast(int major, int minor) {
  utsname u;
  int got_major = 0;
  int got_minor = 0;
  if (::uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &got_major, &got_minor) != 2) {
    return false;
  }
  return got_major > major || (got_major == major && got_minor >= minor);
}

std::vector<uint8_t> Seq(size_t n, uint8_t first) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(first + i);
  return v;
}

// --- crypto_info -------------------------------------------------------------

TEST(CryptoInfoTest, Tls13AesGcm128SplitsIvIntoSaltAndIv) {
  const std::vector<uint8_t> key = Seq(16, 0x10);
  const std::vector<uint8_t> iv = Seq(12, 0xa0);
  TLSD_ASSERT_OK_AND_ASSIGN(
      CryptoInfo info,
      BuildCryptoInfo(TlsVersion::kTls13, KtlsCipher::kAes128Gcm, key, iv, 0x0102030405060708ull));
  ASSERT_EQ(info.size(), sizeof(tls12_crypto_info_aes_gcm_128));
  tls12_crypto_info_aes_gcm_128 raw;
  std::memcpy(&raw, info.data(), sizeof(raw));
  EXPECT_EQ(raw.info.version, TLS_1_3_VERSION);
  EXPECT_EQ(raw.info.cipher_type, TLS_CIPHER_AES_GCM_128);
  EXPECT_THAT(raw.key, ElementsAreArray(key));
  EXPECT_THAT(raw.salt, ElementsAre(0xa0, 0xa1, 0xa2, 0xa3));
  EXPECT_THAT(raw.iv, ElementsAre(0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab));
  EXPECT_THAT(raw.rec_seq, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8));  // big-endian
  EXPECT_THAT(info.salt(), ElementsAre(0xa0, 0xa1, 0xa2, 0xa3));
  EXPECT_THAT(info.key(), ElementsAreArray(key));
}

TEST(CryptoInfoTest, Tls12AesGcm256) {
  const std::vector<uint8_t> key = Seq(32, 0x40);
  const std::vector<uint8_t> iv = Seq(12, 0x01);
  TLSD_ASSERT_OK_AND_ASSIGN(
      CryptoInfo info, BuildCryptoInfo(TlsVersion::kTls12, KtlsCipher::kAes256Gcm, key, iv, 1));
  ASSERT_EQ(info.size(), sizeof(tls12_crypto_info_aes_gcm_256));
  tls12_crypto_info_aes_gcm_256 raw;
  std::memcpy(&raw, info.data(), sizeof(raw));
  EXPECT_EQ(raw.info.version, TLS_1_2_VERSION);
  EXPECT_EQ(raw.info.cipher_type, TLS_CIPHER_AES_GCM_256);
  EXPECT_THAT(raw.key, ElementsAreArray(key));
  EXPECT_THAT(raw.salt, ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(raw.iv, ElementsAre(5, 6, 7, 8, 9, 10, 11, 12));
  EXPECT_THAT(raw.rec_seq, ElementsAre(0, 0, 0, 0, 0, 0, 0, 1));
}

TEST(CryptoInfoTest, ChaChaKeepsTheWholeIv) {
  const std::vector<uint8_t> key = Seq(32, 0x80);
  const std::vector<uint8_t> iv = Seq(12, 0x20);
  for (TlsVersion v : {TlsVersion::kTls12, TlsVersion::kTls13}) {
    TLSD_ASSERT_OK_AND_ASSIGN(CryptoInfo info,
                              BuildCryptoInfo(v, KtlsCipher::kChaCha20Poly1305, key, iv, 0));
    ASSERT_EQ(info.size(), sizeof(tls12_crypto_info_chacha20_poly1305));
    tls12_crypto_info_chacha20_poly1305 raw;
    std::memcpy(&raw, info.data(), sizeof(raw));
    EXPECT_EQ(raw.info.version, static_cast<uint16_t>(v));
    EXPECT_EQ(raw.info.cipher_type, TLS_CIPHER_CHACHA20_POLY1305);
    EXPECT_THAT(raw.iv, ElementsAreArray(iv));
    EXPECT_THAT(raw.key, ElementsAreArray(key));
    EXPECT_THAT(info.salt(), IsEmpty());
  }
}

TEST(CryptoInfoTest, RejectsWrongLengths) {
  const std::vector<uint8_t> key16 = Seq(16, 0);
  const std::vector<uint8_t> key32 = Seq(32, 0);
  const std::vector<uint8_t> iv12 = Seq(12, 0);
  const std::vector<uint8_t> iv8 = Seq(8, 0);
  EXPECT_THAT(BuildCryptoInfo(TlsVersion::kTls13, KtlsCipher::kAes128Gcm, key32, iv12, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("key")));
  EXPECT_THAT(BuildCryptoInfo(TlsVersion::kTls13, KtlsCipher::kAes256Gcm, key16, iv12, 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(BuildCryptoInfo(TlsVersion::kTls13, KtlsCipher::kAes128Gcm, key16, iv8, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("iv")));
  EXPECT_THAT(
      BuildCryptoInfo(static_cast<TlsVersion>(0x0302), KtlsCipher::kAes128Gcm, key16, iv12, 0),
      StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CryptoInfoTest, MoveClearsTheSource) {
  const std::vector<uint8_t> key = Seq(16, 1);
  const std::vector<uint8_t> iv = Seq(12, 1);
  TLSD_ASSERT_OK_AND_ASSIGN(
      CryptoInfo a, BuildCryptoInfo(TlsVersion::kTls13, KtlsCipher::kAes128Gcm, key, iv, 0));
  CryptoInfo b = std::move(a);
  EXPECT_THAT(b.key(), ElementsAreArray(key));
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): checking wipe
  EXPECT_THAT(a.key(), ::testing::Each(0));
}

// --- cipher mapping ----------------------------------------------------------

TEST(KtlsTypesTest, SuiteIdsMapByAead) {
  EXPECT_THAT(KtlsCipherFromSuiteId(0x1301), IsOkAndHolds(KtlsCipher::kAes128Gcm));
  EXPECT_THAT(KtlsCipherFromSuiteId(0x1302), IsOkAndHolds(KtlsCipher::kAes256Gcm));
  EXPECT_THAT(KtlsCipherFromSuiteId(0x1303), IsOkAndHolds(KtlsCipher::kChaCha20Poly1305));
  EXPECT_THAT(KtlsCipherFromSuiteId(0xC02B), IsOkAndHolds(KtlsCipher::kAes128Gcm));
  EXPECT_THAT(KtlsCipherFromSuiteId(0xC030), IsOkAndHolds(KtlsCipher::kAes256Gcm));
  EXPECT_THAT(KtlsCipherFromSuiteId(0xCCA9), IsOkAndHolds(KtlsCipher::kChaCha20Poly1305));
  // TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, TLS_AES_128_CCM_SHA256.
  EXPECT_THAT(KtlsCipherFromSuiteId(0xC009),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("0xC009")));
  EXPECT_THAT(KtlsCipherFromSuiteId(0x1304), StatusIs(absl::StatusCode::kNotFound));
  for (KtlsCipher c :
       {KtlsCipher::kAes128Gcm, KtlsCipher::kAes256Gcm, KtlsCipher::kChaCha20Poly1305}) {
    EXPECT_THAT(KtlsCipherFromSuiteId(Tls13SuiteId(c)), IsOkAndHolds(c));
  }
}

TEST(KtlsTypesTest, Names) {
  EXPECT_EQ(KtlsModeName(KtlsMode::kNone, false), "none");
  EXPECT_EQ(KtlsModeName(KtlsMode::kSoftware, true), "sw");
  EXPECT_EQ(KtlsModeName(KtlsMode::kSoftware, false), "sw(unverified)");
  EXPECT_EQ(KtlsModeName(KtlsMode::kDevice, true), "hw");
  EXPECT_EQ(TlsVersionName(TlsVersion::kTls13), "TLSv1.3");
  EXPECT_EQ(DirectionName(Direction::kRx), "rx");
}

// --- tls_stat ----------------------------------------------------------------

TEST(TlsStatTest, ParsesKernelFormat) {
  constexpr char kText[] =
      "TlsCurrTxSw                     \t1\n"
      "TlsCurrRxSw                     \t2\n"
      "TlsTxSw                         \t30\n"
      "TlsDecryptError                 \t0\n";
  TLSD_ASSERT_OK_AND_ASSIGN(TlsStat stat, ParseTlsStat(kText));
  EXPECT_EQ(stat.size(), 4u);
  EXPECT_EQ(TlsStatValue(stat, "TlsCurrTxSw"), 1);
  EXPECT_EQ(TlsStatValue(stat, "TlsTxSw"), 30);
  EXPECT_EQ(TlsStatValue(stat, "TlsRxRekeyOk"), 0);  // absent: 0
}

TEST(TlsStatTest, RejectsMalformedAndDuplicates) {
  EXPECT_THAT(ParseTlsStat("TlsTxSw\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 1")));
  EXPECT_THAT(ParseTlsStat("TlsTxSw 1\nTlsRxSw x\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 2")));
  EXPECT_THAT(ParseTlsStat("TlsTxSw 1\nTlsTxSw 2\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duplicate")));
  EXPECT_THAT(ParseTlsStat(""), IsOkAndHolds(IsEmpty()));
}

TEST(TlsStatTest, MissingFileIsNotFound) {
  EXPECT_THAT(ReadTlsStat("/nonexistent/tls_stat"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(TlsStatTest, RealFileMatchesKernel) {
  absl::StatusOr<TlsStat> stat = ReadTlsStat();
  if (KernelHasTlsUlp()) {
    // The probe attached the ULP, so the module is loaded and the file exists.
    ASSERT_THAT(stat, IsOk());
    EXPECT_TRUE(stat->contains("TlsTxSw"));
  } else {
    EXPECT_THAT(stat, StatusIs(absl::StatusCode::kNotFound));
  }
}

// --- ULP probe and installation errors --------------------------------------

TEST(KtlsSocketTest, ProbeAgreesWithCache) {
  EXPECT_THAT(ProbeKernelTlsUlp(), IsOkAndHolds(KernelHasTlsUlp()));
}

TEST(KtlsSocketTest, AttachAndInstallReportTheKernel) {
  TLSD_ASSERT_OK_AND_ASSIGN(testing::TcpPair pair, testing::MakeTcpPair());
  EXPECT_THAT(GetTcpUlp(pair.client.get()), IsOkAndHolds(""));
  TLSD_ASSERT_OK_AND_ASSIGN(
      CryptoInfo info,
      BuildCryptoInfo(TlsVersion::kTls13, KtlsCipher::kAes128Gcm, Seq(16, 0), Seq(12, 0), 0));
  if (KernelHasTlsUlp()) {
    EXPECT_THAT(AttachTlsUlp(pair.client.get()), IsOk());
    EXPECT_THAT(AttachTlsUlp(pair.client.get()), IsOk());  // EEXIST is fine
    EXPECT_THAT(GetTcpUlp(pair.client.get()), IsOkAndHolds("tls"));
    EXPECT_THAT(InstallKtlsDirection(pair.client.get(), Direction::kTx, info), IsOk());
    // Setting TLS 1.3 TX again is a rekey: kernels since 6.14 take it (user
    // space sends its KeyUpdate first), older ones refuse with EBUSY.
    absl::Status again = InstallKtlsDirection(pair.client.get(), Direction::kTx, info);
    if (KernelAtLeast(6, 14)) {
      EXPECT_THAT(again, IsOk());
    } else {
      EXPECT_THAT(again, StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("already set")));
      EXPECT_EQ(StatusToErrno(again), EBUSY);
    }
    // TLS 1.2 is never rekeyed.
    TLSD_ASSERT_OK_AND_ASSIGN(
        CryptoInfo info12,
        BuildCryptoInfo(TlsVersion::kTls12, KtlsCipher::kAes128Gcm, Seq(16, 0), Seq(12, 0), 0));
    EXPECT_THAT(InstallKtlsDirection(pair.server.get(), Direction::kTx, info12), IsOk());
    EXPECT_THAT(InstallKtlsDirection(pair.server.get(), Direction::kTx, info12),
                StatusIs(absl::StatusCode::kFailedPrecondition));
  } else {
    absl::Status attached = AttachTlsUlp(pair.client.get());
    EXPECT_THAT(attached, StatusIs(absl::StatusCode::kUnimplemented, "kernel has no TLS ULP"));
    EXPECT_EQ(StatusToErrno(attached), ENOENT);
    EXPECT_THAT(InstallKtlsDirection(pair.client.get(), Direction::kRx, info),
                StatusIs(absl::StatusCode::kUnimplemented, "kernel has no TLS ULP"));
  }
}

TEST(KtlsSocketTest, AttachOnUnconnectedSocket) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(s.valid());
  // The kernel looks the ULP up before it checks the socket state.
  EXPECT_THAT(AttachTlsUlp(s.get()),
              StatusIs(KernelHasTlsUlp() ? absl::StatusCode::kFailedPrecondition
                                         : absl::StatusCode::kUnimplemented));
}

// --- sock_diag ---------------------------------------------------------------

// Every sock_diag test below needs the kernel's TCP diag handler. Its
// absence is reported once, here: a failure in the VM lane (which must
// provide the inet_diag and tcp_diag modules, or CompleteKtls can never
// verify a mode there) and a reasoned skip on a host.
TEST(SockDiagTest, KernelAnswersTcpLookups) {
  TLSD_ASSERT_OK_AND_ASSIGN(testing::TcpPair pair, testing::MakeTcpPair());
  absl::StatusOr<TcpUlpDiag> diag = QueryTcpUlpDiag(pair.client.get());
  if (diag.status().code() == absl::StatusCode::kNotFound && !testing::InVmLane()) {
    GTEST_SKIP() << "skipped: " << diag.status().message();
  }
  EXPECT_THAT(diag, IsOk()) << (testing::InVmLane() ? "the VM lane must load inet_diag and "
                                                      "tcp_diag"
                                                    : "");
}

#define TLSD_REQUIRE_SOCK_DIAG()                                          \
  do {                                                                    \
    if (!testing::SockDiagAvailable()) {                                  \
      GTEST_SKIP() << "skipped: kernel has no TCP sock_diag (tcp_diag); " \
                      "see SockDiagTest.KernelAnswersTcpLookups";         \
    }                                                                     \
  } while (0)

TEST(SockDiagTest, PlainTcpSocketHasNoUlp) {
  TLSD_REQUIRE_SOCK_DIAG();
  TLSD_ASSERT_OK_AND_ASSIGN(testing::TcpPair pair, testing::MakeTcpPair());
  TLSD_ASSERT_OK_AND_ASSIGN(TcpUlpDiag diag, QueryTcpUlpDiag(pair.server.get()));
  EXPECT_FALSE(diag.has_ulp_info);
  EXPECT_EQ(diag.ulp_name, "");
}

TEST(SockDiagTest, UnconnectedSocketIsFailedPrecondition) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(s.valid());
  EXPECT_THAT(QueryTcpUlpDiag(s.get()), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(SockDiagTest, WorksOverIpv6) {
  TLSD_REQUIRE_SOCK_DIAG();
  UniqueFd listener(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listener.valid());
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  socklen_t len = sizeof(addr);
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    GTEST_SKIP() << "skipped: no IPv6 loopback (" << strerror(errno) << ")";
  }
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  UniqueFd client(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), len), 0);
  UniqueFd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(server.valid());
  EXPECT_THAT(QueryTcpUlpDiag(client.get()), IsOk());
}

// --- record I/O framing on plain sockets --------------------------------------

TEST(RecordIoTest, PlainSocketReadsAsApplicationDataAndEof) {
  TLSD_ASSERT_OK_AND_ASSIGN(testing::TcpPair pair, testing::MakeTcpPair());
  const std::vector<uint8_t> payload = {1, 0};
  // Without kTLS the cmsg is ignored by TCP and the bytes go out as is.
  EXPECT_THAT(SendTlsRecord(pair.client.get(), kRecordAlert, payload), IsOk());
  std::vector<uint8_t> buf(64);
  TLSD_ASSERT_OK_AND_ASSIGN(RecordRead r, RecvTlsRecord(pair.server.get(), absl::MakeSpan(buf)));
  EXPECT_EQ(r.record_type, kRecordApplicationData);
  EXPECT_EQ(r.len, 2u);
  EXPECT_EQ(buf[0], 1);
  ASSERT_EQ(::shutdown(pair.client.get(), SHUT_WR), 0);
  TLSD_ASSERT_OK_AND_ASSIGN(r, RecvTlsRecord(pair.server.get(), absl::MakeSpan(buf)));
  EXPECT_EQ(r.len, 0u);  // end of stream
}

TEST(RecordIoTest, ErrorsKeepErrno) {
  std::vector<uint8_t> buf(16);
  absl::StatusOr<RecordRead> r = RecvTlsRecord(-1, absl::MakeSpan(buf));
  EXPECT_THAT(r, ::testing::Not(IsOk()));
  EXPECT_EQ(StatusToErrno(r.status()), EBADF);
  TLSD_ASSERT_OK_AND_ASSIGN(testing::TcpPair pair, testing::MakeTcpPair());
  EXPECT_THAT(RecvTlsRecord(pair.server.get(), absl::MakeSpan(buf), MSG_DONTWAIT),
              StatusIs(absl::StatusCode::kUnavailable));
}

// --- OsslError ---------------------------------------------------------------

TEST(OsslErrorTest, DrainsTheQueue) {
  ERR_clear_error();
  BIO* bio = BIO_new_mem_buf("not a certificate", -1);
  ASSERT_EQ(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr), nullptr);
  BIO_free(bio);
  ASSERT_NE(ERR_peek_error(), 0u);
  absl::Status s = OsslError(absl::StatusCode::kInvalidArgument, "parse cert");
  EXPECT_THAT(s,
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::StartsWith("parse cert: ")));
  EXPECT_THAT(std::string(s.message()), HasSubstr("PEM"));
  EXPECT_EQ(ERR_peek_error(), 0u);
  EXPECT_THAT(OsslError(absl::StatusCode::kInternal, "x"),
              StatusIs(absl::StatusCode::kInternal, "x: no OpenSSL error recorded"));
}

// --- CompleteKtls on a real loopback handshake ---------------------------------

class CompleteKtlsTest : public ::testing::TestWithParam<testing::TlsParams> {
 protected:
  static void SetUpTestSuite() {
    testing::TestCertsOptions opts;
    opts.with_rsa_server = false;
    auto certs = testing::TestCerts::Generate(opts);
    ASSERT_THAT(certs, IsOk());
    certs_ = new testing::TestCerts(std::move(*certs));
  }
  static void TearDownTestSuite() {
    delete certs_;
    certs_ = nullptr;
  }
  static testing::TestCerts* certs_;
};
testing::TestCerts* CompleteKtlsTest::certs_ = nullptr;

// Whatever the kernel, CompleteKtls must say where each direction went and
// why; on a kernel without the ULP both stay in user space, with exactly that
// reason, and OpenSSL can still carry the data (the relay fallback).
TEST_P(CompleteKtlsTest, ReportsWhereEachDirectionWent) {
  const testing::TlsParams params = GetParam();
  TLSD_ASSERT_OK_AND_ASSIGN(SslCtxPtr client_ctx, testing::MakeCtx(*certs_, false, params));
  TLSD_ASSERT_OK_AND_ASSIGN(SslCtxPtr server_ctx, testing::MakeCtx(*certs_, true, params));
  TLSD_ASSERT_OK_AND_ASSIGN(testing::Connection conn,
                            testing::Connect(client_ctx.get(), server_ctx.get(), KtlsOptions()));
  ASSERT_THAT(conn.client_outcome, IsOk());
  ASSERT_THAT(conn.server_outcome, IsOk());
  for (const KtlsOutcome* o : {&*conn.client_outcome, &*conn.server_outcome}) {
    if (KernelHasTlsUlp()) {
      EXPECT_EQ(o->tx, KtlsMode::kSoftware);
      EXPECT_EQ(o->rx, KtlsMode::kSoftware);
      EXPECT_EQ(o->reason, "");
      EXPECT_EQ(o->rx_installed_by_tlsd, params.version == TlsVersion::kTls13);
      // Either the kernel confirmed the modes or we are told why not.
      EXPECT_NE(o->verified, !o->unverified_why.empty()) << o->unverified_why;
    } else {
      EXPECT_EQ(o->tx, KtlsMode::kNone);
      EXPECT_EQ(o->rx, KtlsMode::kNone);
      EXPECT_EQ(o->reason, "kernel has no TLS ULP");
      EXPECT_FALSE(o->verified);
      EXPECT_EQ(o->unverified_why, "");  // nothing in the kernel to verify
      EXPECT_FALSE(o->rx_installed_by_tlsd);
    }
  }
  if (KernelHasTlsUlp()) {
    return;  // ktls_test covers the kernel data path
  }
  // User space still works both ways (what a relay would do).
  char buf[16];
  ASSERT_EQ(SSL_write(conn.client.get(), "ping", 4), 4);
  ASSERT_EQ(SSL_read(conn.server.get(), buf, sizeof(buf)), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  ASSERT_EQ(SSL_write(conn.server.get(), "pong", 4), 4);
  ASSERT_EQ(SSL_read(conn.client.get(), buf, sizeof(buf)), 4);
  EXPECT_EQ(std::string(buf, 4), "pong");
}

TEST_P(CompleteKtlsTest, WithoutEnableKtlsSaysSo) {
  const testing::TlsParams params = GetParam();
  TLSD_ASSERT_OK_AND_ASSIGN(SslCtxPtr client_ctx,
                            testing::MakeCtx(*certs_, false, params, /*ktls=*/false));
  TLSD_ASSERT_OK_AND_ASSIGN(SslCtxPtr server_ctx,
                            testing::MakeCtx(*certs_, true, params, /*ktls=*/false));
  TLSD_ASSERT_OK_AND_ASSIGN(testing::Connection conn,
                            testing::Connect(client_ctx.get(), server_ctx.get(), KtlsOptions()));
  ASSERT_THAT(conn.server_outcome, IsOk());
  EXPECT_EQ(conn.server_outcome->tx, KtlsMode::kNone);
  EXPECT_EQ(conn.server_outcome->rx, KtlsMode::kNone);
  // Without the TLS ULP that is the reason, whatever the option says.
  EXPECT_THAT(
      conn.server_outcome->reason,
      HasSubstr(KernelHasTlsUlp() ? "SSL_OP_ENABLE_KTLS is not set" : "kernel has no TLS ULP"));
}

INSTANTIATE_TEST_SUITE_P(AllVersionsAndAeads, CompleteKtlsTest,
                         ::testing::ValuesIn(testing::AllTlsParams()), testing::TlsParamsName);

// Where the kernel has the TLS ULP, OpenSSL installs kTLS itself and the TLS
// 1.3 secrets are captured for RX; where it has not, connections are relayed,
// nothing is captured, and read_ahead saves half the reads. Never read_ahead
// with kTLS: bytes read ahead would be stranded under a kTLS RX.
TEST(ConfigureForKernelTlsTest, KtlsWhereTheKernelHasItReadAheadWhereNot) {
  for (const SSL_METHOD* method : {TLS_server_method(), TLS_client_method()}) {
    SslCtxPtr ctx(SSL_CTX_new(method));
    ASSERT_NE(ctx, nullptr);
    ASSERT_THAT(ConfigureForKernelTls(ctx.get()), IsOk());
    const bool ktls = (SSL_CTX_get_options(ctx.get()) & SSL_OP_ENABLE_KTLS) != 0;
    const bool read_ahead = SSL_CTX_get_read_ahead(ctx.get()) != 0;
    const bool capture = SSL_CTX_get_keylog_callback(ctx.get()) != nullptr;
    EXPECT_EQ(ktls, KernelHasTlsUlp());
    EXPECT_EQ(capture, ktls);
    EXPECT_NE(ktls, read_ahead);
  }
}

TEST(CompleteKtlsMisuseTest, RejectsUnfinishedHandshakeAndWrongFd) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  SslPtr ssl(SSL_new(ctx.get()));
  TLSD_ASSERT_OK_AND_ASSIGN(testing::TcpPair pair, testing::MakeTcpPair());
  ASSERT_EQ(SSL_set_fd(ssl.get(), pair.server.get()), 1);
  SSL_set_accept_state(ssl.get());
  EXPECT_THAT(CompleteKtls(ssl.get(), pair.server.get(), true, KtlsOptions()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("handshake not finished")));
  EXPECT_THAT(CompleteKtls(ssl.get(), pair.client.get(), true, KtlsOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fd")));
  EXPECT_THAT(CompleteKtls(ssl.get(), pair.server.get(), false, KtlsOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is_server")));
  EXPECT_THAT(CompleteKtls(nullptr, pair.server.get(), true, KtlsOptions()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace tlsd
