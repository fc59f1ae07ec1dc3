// TLS 1.3 key schedule pieces: RFC 8448 vectors, an independent HKDF
// cross-check for the suites RFC 8448 does not cover, and a host-runnable
// proof that the secret captured from OpenSSL's keylog, derived and split the
// way CryptoInfo gives it to the kernel, decrypts OpenSSL's real records at
// the sequence numbers tlsd assumes (0 for the first record after the
// handshake, reset to 0 after a KeyUpdate).

#include "tlsd/tls/tls13_kdf.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/ktls/record_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/ktls/ktls_test_util.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_certs.h"
#include "tlsd/tls/ktls.h"
#include "tlsd/tls/ossl_error.h"
#include "tlsd/tls/ossl_ptr.h"

namespace tlsd {
namespace {

using ::tlsd::testing::IsOk;
using ::tlsd::testing::StatusIs;

std::vector<uint8_t> Hex(absl::string_view hex) {
  std::string bytes = absl::HexStringToBytes(hex);
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

std::string ToHex(const SecretBytes& s) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(s.data()), s.size()));
}

// --- RFC 8448 section 3 (simple 1-RTT, TLS_AES_128_GCM_SHA256) -------------

struct Rfc8448Vector {
  const char* what;
  const char* secret;
  const char* key;
  const char* iv;
};

constexpr Rfc8448Vector kRfc8448[] = {
    {"server handshake", "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38",
     "3fce516009c21727d0f2e4e86ee403bc", "5d313eb2671276ee13000b30"},
    {"client handshake", "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21",
     "dbfaa693d1762c5b666af5d950258d01", "5bd3c71b836e0b76bb73265f"},
    {"server application", "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643",
     "9f02283b6c9c07efc26bb9f2ac92e356", "cf782b88dd83549aadf1e984"},
    {"client application", "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5",
     "17422dda596ed5d9acd890e3c63f5051", "5b78923dee08579033e523d9"},
};

TEST(Tls13KdfTest, Rfc8448TrafficKeys) {
  for (const Rfc8448Vector& v : kRfc8448) {
    SCOPED_TRACE(v.what);
    std::vector<uint8_t> secret = Hex(v.secret);
    TLSD_ASSERT_OK_AND_ASSIGN(TrafficKeys keys, DeriveTrafficKeys(KtlsCipher::kAes128Gcm, secret));
    EXPECT_EQ(ToHex(keys.key), v.key);
    EXPECT_EQ(ToHex(keys.iv), v.iv);
  }
}

TEST(Tls13KdfTest, Rfc8448ViaHkdfExpandLabel) {
  // The same vector through the general entry point.
  std::vector<uint8_t> secret = Hex(kRfc8448[0].secret);
  TLSD_ASSERT_OK_AND_ASSIGN(SecretBytes key, HkdfExpandLabel("SHA256", secret, "key", {}, 16));
  EXPECT_EQ(ToHex(key), kRfc8448[0].key);
}

// --- Independent cross-check ----------------------------------------------
// RFC 8448 covers only SHA-256. For SHA-384 and for "traffic upd", build the
// HkdfLabel by hand (RFC 8446 7.1) and run plain HKDF-Expand: a different
// OpenSSL code path from TLS13-KDF and from our parameter plumbing.

std::vector<uint8_t> PlainHkdfExpandLabel(const char* digest, const std::vector<uint8_t>& secret,
                                          const std::string& label, size_t out_len) {
  std::vector<uint8_t> info;
  info.push_back(static_cast<uint8_t>(out_len >> 8));
  info.push_back(static_cast<uint8_t>(out_len & 0xff));
  const std::string full_label = "tls13 " + label;
  info.push_back(static_cast<uint8_t>(full_label.size()));
  info.insert(info.end(), full_label.begin(), full_label.end());
  info.push_back(0);  // empty context

  EvpKdfPtr kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  EvpKdfCtxPtr ctx(EVP_KDF_CTX_new(kdf.get()));
  int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
  std::string md(digest);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, md.data(), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(secret.data()),
                                        secret.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
      OSSL_PARAM_construct_end()};
  std::vector<uint8_t> out(out_len);
  EXPECT_EQ(EVP_KDF_derive(ctx.get(), out.data(), out.size(), params), 1);
  return out;
}

class Tls13KdfCipherTest : public ::testing::TestWithParam<KtlsCipher> {};

TEST_P(Tls13KdfCipherTest, MatchesPlainHkdf) {
  const KtlsCipher cipher = GetParam();
  const char* digest = cipher == KtlsCipher::kAes256Gcm ? "SHA384" : "SHA256";
  std::string raw = testing::RandomBytes(Tls13DigestLen(cipher));
  std::vector<uint8_t> secret(raw.begin(), raw.end());

  TLSD_ASSERT_OK_AND_ASSIGN(TrafficKeys keys, DeriveTrafficKeys(cipher, secret));
  EXPECT_EQ(keys.key.size(), KtlsCipherKeyLen(cipher));
  EXPECT_EQ(keys.iv.size(), kTlsAeadIvLen);
  EXPECT_THAT(std::vector<uint8_t>(keys.key.span().begin(), keys.key.span().end()),
              ::testing::ElementsAreArray(
                  PlainHkdfExpandLabel(digest, secret, "key", KtlsCipherKeyLen(cipher))));
  EXPECT_THAT(
      std::vector<uint8_t>(keys.iv.span().begin(), keys.iv.span().end()),
      ::testing::ElementsAreArray(PlainHkdfExpandLabel(digest, secret, "iv", kTlsAeadIvLen)));

  TLSD_ASSERT_OK_AND_ASSIGN(SecretBytes next, NextTrafficSecret(cipher, secret));
  EXPECT_EQ(next.size(), Tls13DigestLen(cipher));
  EXPECT_THAT(std::vector<uint8_t>(next.span().begin(), next.span().end()),
              ::testing::ElementsAreArray(
                  PlainHkdfExpandLabel(digest, secret, "traffic upd", Tls13DigestLen(cipher))));
}

TEST_P(Tls13KdfCipherTest, RejectsSecretOfWrongLength) {
  const KtlsCipher cipher = GetParam();
  std::vector<uint8_t> secret(Tls13DigestLen(cipher) + 1, 0x42);
  EXPECT_THAT(DeriveTrafficKeys(cipher, secret),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("want")));
  EXPECT_THAT(NextTrafficSecret(cipher, secret), StatusIs(absl::StatusCode::kInvalidArgument));
}

INSTANTIATE_TEST_SUITE_P(AllAeads, Tls13KdfCipherTest,
                         ::testing::Values(KtlsCipher::kAes128Gcm, KtlsCipher::kAes256Gcm,
                                           KtlsCipher::kChaCha20Poly1305),
                         [](const ::testing::TestParamInfo<KtlsCipher>& info) {
                           std::string name(KtlsCipherName(info.param));
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(Tls13KdfTest, HkdfExpandLabelRejectsBadInput) {
  std::vector<uint8_t> secret(32, 1);
  EXPECT_THAT(HkdfExpandLabel("SHA256", {}, "key", {}, 16),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(HkdfExpandLabel("SHA256", secret, "key", {}, 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(HkdfExpandLabel("SHA256", secret, std::string(250, 'x'), {}, 16),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // More than 255 * HashLen: HKDF itself refuses.
  EXPECT_THAT(HkdfExpandLabel("SHA256", secret, "key", {}, 255 * 32 + 1),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(HkdfExpandLabel("NO-SUCH-DIGEST", secret, "key", {}, 16),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// --- Captured secrets decrypt OpenSSL's real records -----------------------

struct RawRecord {
  uint8_t header[5];
  std::vector<uint8_t> body;
};

absl::StatusOr<RawRecord> ReadRawRecord(int fd) {
  RawRecord rec;
  auto read_exactly = [fd](uint8_t* p, size_t len) -> absl::Status {
    while (len > 0) {
      ssize_t n = ::read(fd, p, len);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoToStatus(errno, "read record");
      if (n == 0) return absl::UnavailableError("read record: EOF");
      p += n;
      len -= static_cast<size_t>(n);
    }
    return absl::OkStatus();
  };
  absl::Status s = read_exactly(rec.header, sizeof(rec.header));
  if (!s.ok()) return s;
  rec.body.resize((size_t{rec.header[3]} << 8) | rec.header[4]);
  s = read_exactly(rec.body.data(), rec.body.size());
  if (!s.ok()) return s;
  return rec;
}

struct Opened {
  uint8_t inner_type = 0;
  std::string content;
};

// Opens a TLS 1.3 record the way the kernel does with `info`: nonce =
// (salt || iv) XOR the 64-bit sequence number, AAD = the record header.
absl::StatusOr<Opened> OpenRecord(const CryptoInfo& info, uint64_t seq, const RawRecord& rec) {
  const EVP_CIPHER* aead = info.cipher() == KtlsCipher::kAes128Gcm   ? EVP_aes_128_gcm()
                           : info.cipher() == KtlsCipher::kAes256Gcm ? EVP_aes_256_gcm()
                                                                     : EVP_chacha20_poly1305();
  uint8_t nonce[kTlsAeadIvLen];
  if (!info.salt().empty()) {  // ChaCha20-Poly1305 has no salt (and a null data())
    std::memcpy(nonce, info.salt().data(), info.salt().size());
  }
  std::memcpy(nonce + info.salt().size(), info.iv().data(), info.iv().size());
  for (int i = 0; i < 8; ++i) {
    nonce[kTlsAeadIvLen - 1 - i] ^= static_cast<uint8_t>(seq >> (8 * i));
  }
  constexpr size_t kTagLen = 16;
  if (rec.body.size() < kTagLen + 1) {
    return absl::InvalidArgumentError("record too short");
  }
  const size_t ct_len = rec.body.size() - kTagLen;
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  std::vector<uint8_t> plain(ct_len);
  int len = 0;
  int final_len = 0;
  if (EVP_DecryptInit_ex(ctx.get(), aead, nullptr, info.key().data(), nonce) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, rec.header, sizeof(rec.header)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), plain.data(), &len, rec.body.data(), static_cast<int>(ct_len)) !=
          1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kTagLen,
                          const_cast<uint8_t*>(rec.body.data() + ct_len)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), plain.data() + len, &final_len) != 1) {
    return OsslError(absl::StatusCode::kDataLoss, absl::StrCat("open record at seq ", seq));
  }
  // TLSInnerPlaintext: content || type || zero padding.
  size_t end = ct_len;
  while (end > 0 && plain[end - 1] == 0) --end;
  if (end == 0) return absl::InvalidArgumentError("no inner content type");
  Opened out;
  out.inner_type = plain[end - 1];
  out.content.assign(reinterpret_cast<const char*>(plain.data()), end - 1);
  return out;
}

absl::StatusOr<CryptoInfo> RxInfoFromSecret(KtlsCipher cipher, const SecretBytes& secret) {
  absl::StatusOr<TrafficKeys> keys = DeriveTrafficKeys(cipher, secret.span());
  if (!keys.ok()) return keys.status();
  return BuildCryptoInfo(TlsVersion::kTls13, cipher, keys->key.span(), keys->iv.span(), 0);
}

class CapturedSecretTest : public ::testing::TestWithParam<KtlsCipher> {
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
testing::TestCerts* CapturedSecretTest::certs_ = nullptr;

TEST_P(CapturedSecretTest, DecryptsRealRecordsAtExpectedSequence) {
  const KtlsCipher cipher = GetParam();
  const testing::TlsParams params{TlsVersion::kTls13, cipher};
  // No SSL_OP_ENABLE_KTLS: everything stays on the wire for us to read.
  TLSD_ASSERT_OK_AND_ASSIGN(SslCtxPtr client_ctx,
                            testing::MakeCtx(*certs_, /*is_server=*/false, params, /*ktls=*/false));
  TLSD_ASSERT_OK_AND_ASSIGN(SslCtxPtr server_ctx,
                            testing::MakeCtx(*certs_, /*is_server=*/true, params, /*ktls=*/false));
  TLSD_ASSERT_OK_AND_ASSIGN(testing::Connection conn,
                            testing::Connect(client_ctx.get(), server_ctx.get(), KtlsOptions(),
                                             /*complete_ktls=*/false));

  const Tls13TrafficSecrets* server_view = CapturedTrafficSecrets(conn.server.get());
  const Tls13TrafficSecrets* client_view = CapturedTrafficSecrets(conn.client.get());
  ASSERT_NE(server_view, nullptr);
  ASSERT_NE(client_view, nullptr);
  ASSERT_EQ(server_view->client.size(), Tls13DigestLen(cipher));
  // Both ends logged the same secrets.
  EXPECT_TRUE(std::equal(server_view->client.span().begin(), server_view->client.span().end(),
                         client_view->client.span().begin(), client_view->client.span().end()));

  // Client -> server: the first application record is sequence 0 under
  // CLIENT_TRAFFIC_SECRET_0, which is what the server's RX gets.
  ASSERT_EQ(SSL_write(conn.client.get(), "hello", 5), 5);
  TLSD_ASSERT_OK_AND_ASSIGN(CryptoInfo server_rx, RxInfoFromSecret(cipher, server_view->client));
  TLSD_ASSERT_OK_AND_ASSIGN(RawRecord rec, ReadRawRecord(conn.fds.server.get()));
  EXPECT_EQ(rec.header[0], kRecordApplicationData);  // outer type
  TLSD_ASSERT_OK_AND_ASSIGN(Opened opened, OpenRecord(server_rx, 0, rec));
  EXPECT_EQ(opened.inner_type, kRecordApplicationData);
  EXPECT_EQ(opened.content, "hello");

  // A KeyUpdate: sent under the old key (sequence 1), then data under
  // NextTrafficSecret from sequence 0 again.
  ASSERT_EQ(SSL_key_update(conn.client.get(), SSL_KEY_UPDATE_NOT_REQUESTED), 1);
  ASSERT_EQ(SSL_write(conn.client.get(), "again", 5), 5);
  TLSD_ASSERT_OK_AND_ASSIGN(rec, ReadRawRecord(conn.fds.server.get()));
  TLSD_ASSERT_OK_AND_ASSIGN(opened, OpenRecord(server_rx, 1, rec));
  EXPECT_EQ(opened.inner_type, kRecordHandshake);
  ASSERT_EQ(opened.content.size(), 5u);
  EXPECT_EQ(opened.content[0], 24);  // key_update
  TLSD_ASSERT_OK_AND_ASSIGN(SecretBytes next,
                            NextTrafficSecret(cipher, server_view->client.span()));
  TLSD_ASSERT_OK_AND_ASSIGN(CryptoInfo server_rx1, RxInfoFromSecret(cipher, next));
  TLSD_ASSERT_OK_AND_ASSIGN(rec, ReadRawRecord(conn.fds.server.get()));
  TLSD_ASSERT_OK_AND_ASSIGN(opened, OpenRecord(server_rx1, 0, rec));
  EXPECT_EQ(opened.content, "again");

  // Server -> client: the NewSessionTickets the server sent at the end of its
  // handshake are records 0 and 1 under SERVER_TRAFFIC_SECRET_0, so a client
  // RX installed at sequence 0 must (and does) start with them.
  ASSERT_EQ(SSL_write(conn.server.get(), "world", 5), 5);
  TLSD_ASSERT_OK_AND_ASSIGN(CryptoInfo client_rx, RxInfoFromSecret(cipher, client_view->server));
  uint64_t seq = 0;
  int num_tickets = 0;
  for (;; ++seq) {
    TLSD_ASSERT_OK_AND_ASSIGN(rec, ReadRawRecord(conn.fds.client.get()));
    TLSD_ASSERT_OK_AND_ASSIGN(opened, OpenRecord(client_rx, seq, rec));
    if (opened.inner_type == kRecordApplicationData) {
      EXPECT_EQ(opened.content, "world");
      break;
    }
    ASSERT_EQ(opened.inner_type, kRecordHandshake);
    EXPECT_EQ(opened.content[0], 4);  // new_session_ticket
    ++num_tickets;
  }
  EXPECT_EQ(num_tickets, 2);  // OpenSSL's default SSL_CTX_set_num_tickets
  EXPECT_EQ(seq, 2u);
}

INSTANTIATE_TEST_SUITE_P(AllAeads, CapturedSecretTest,
                         ::testing::Values(KtlsCipher::kAes128Gcm, KtlsCipher::kAes256Gcm,
                                           KtlsCipher::kChaCha20Poly1305),
                         [](const ::testing::TestParamInfo<KtlsCipher>& info) {
                           std::string name(KtlsCipherName(info.param));
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(SecretCaptureTest, RefusesToReplaceAnotherKeylogCallback) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  ASSERT_NE(ctx, nullptr);
  SSL_CTX_set_keylog_callback(ctx.get(), [](const SSL*, const char*) {});
  EXPECT_THAT(InstallSecretCapture(ctx.get()), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(SecretCaptureTest, InstallIsIdempotentAndForgetClears) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  ASSERT_NE(ctx, nullptr);
  EXPECT_THAT(InstallSecretCapture(ctx.get()), IsOk());
  EXPECT_THAT(InstallSecretCapture(ctx.get()), IsOk());
  SslPtr ssl(SSL_new(ctx.get()));
  ASSERT_NE(ssl, nullptr);
  EXPECT_EQ(CapturedTrafficSecrets(ssl.get()), nullptr);
  ForgetTrafficSecrets(ssl.get());  // nothing to forget: a no-op
  EXPECT_EQ(CapturedTrafficSecrets(ssl.get()), nullptr);
}

}  // namespace
}  // namespace tlsd
