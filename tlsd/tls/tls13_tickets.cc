#include "tlsd/tls/tls13_tickets.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "common/base/errno_status.h"
#include "common/base/status_macros.h"
#include "common/ktls/record_io.h"
#include "tlsd/tls/ktls.h"
#include "tlsd/tls/ossl_error.h"
#include "tlsd/tls/ossl_ptr.h"
#include "tlsd/tls/tls13_kdf.h"

namespace tlsd {
namespace {

constexpr size_t kHeaderLen = 5;
constexpr size_t kTagLen = 16;
// A server sends one or two tickets; more records than this are not tickets.
constexpr int kMaxTicketRecords = 8;

// The plaintext of a record, wiped when dropped (a ticket is a credential).
using Plaintext = SecretBytes;

// Opens a TLS 1.3 record at sequence `seq`: nonce = iv XOR seq, AAD = the
// header. Returns the TLSInnerPlaintext (content || type || zeros).
absl::StatusOr<Plaintext> Open(KtlsCipher cipher, const TrafficKeys& keys, uint64_t seq,
                               absl::Span<const uint8_t> record) {
  const EVP_CIPHER* aead = cipher == KtlsCipher::kAes128Gcm   ? EVP_aes_128_gcm()
                           : cipher == KtlsCipher::kAes256Gcm ? EVP_aes_256_gcm()
                                                              : EVP_chacha20_poly1305();
  uint8_t nonce[kTlsAeadIvLen];
  std::memcpy(nonce, keys.iv.data(), sizeof(nonce));
  for (int i = 0; i < 8; ++i) nonce[kTlsAeadIvLen - 1 - i] ^= static_cast<uint8_t>(seq >> (8 * i));
  const size_t ct_len = record.size() - kHeaderLen - kTagLen;
  Plaintext plain(ct_len);
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  int final_len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), aead, nullptr, keys.key.data(), nonce) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, record.data(), kHeaderLen) != 1 ||
      EVP_DecryptUpdate(ctx.get(), plain.data(), &len, record.data() + kHeaderLen,
                        static_cast<int>(ct_len)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kTagLen,
                          const_cast<uint8_t*>(record.data() + kHeaderLen + ct_len)) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), plain.data() + len, &final_len) != 1) {
    return OsslError(absl::StatusCode::kDataLoss,
                     absl::StrCat("server record ", seq, " does not open with its traffic key"));
  }
  return plain;
}

// True if `inner` (a TLSInnerPlaintext) is a handshake record holding one or
// more whole NewSessionTicket messages and nothing else.
bool OnlyTickets(const Plaintext& inner) {
  size_t end = inner.size();
  while (end > 0 && inner.data()[end - 1] == 0) --end;
  if (end == 0 || inner.data()[end - 1] != kRecordHandshake) return false;
  const uint8_t* p = inner.data();
  const size_t content_len = end - 1;
  size_t pos = 0;
  while (pos < content_len) {
    if (content_len - pos < 4 || p[pos] != kHandshakeNewSessionTicket) return false;
    const size_t len = (size_t{p[pos + 1]} << 16) | (size_t{p[pos + 2]} << 8) | p[pos + 3];
    if (content_len - pos - 4 < len) return false;  // continues in another record
    pos += 4 + len;
  }
  return content_len > 0;
}

// Feeds one whole record to OpenSSL through a memory BIO in place of the
// socket, so that its read ends with that record.
absl::Status FeedRecord(SSL* ssl, absl::Span<const uint8_t> record) {
  BIO* mem = BIO_new_mem_buf(record.data(), static_cast<int>(record.size()));
  if (mem == nullptr) return OsslError(absl::StatusCode::kResourceExhausted, "BIO_new_mem_buf");
  BIO_set_mem_eof_return(mem, -1);  // "no more for now", not end of stream
  BIO* socket_bio = SSL_get_rbio(ssl);
  // SSL_set_fd put one BIO in both slots, one reference each: keep the read
  // slot's reference for the way back.
  BIO_up_ref(socket_bio);
  SSL_set0_rbio(ssl, mem);
  uint8_t byte;
  ClearOsslErrors();
  const int r = SSL_read(ssl, &byte, 1);
  const int err = SSL_get_error(ssl, r);
  SSL_set0_rbio(ssl, socket_bio);  // frees `mem`
  if (r > 0) {
    // Cannot happen for a record that opened as tickets only.
    return absl::InternalError("OpenSSL returned application data from a ticket record");
  }
  if (err != SSL_ERROR_WANT_READ) {
    return OsslError(absl::StatusCode::kDataLoss, "OpenSSL refused the server's ticket");
  }
  return absl::OkStatus();
}

// Waits until `fd` is readable or `until`; false on timeout.
bool WaitReadable(int fd, absl::Time until) {
  for (;;) {
    const absl::Duration left = until - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd p{fd, POLLIN, 0};
    // Rounded up, so the wait does not end a fraction of a millisecond early.
    const int r = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left) + 1));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

}  // namespace

absl::Duration TicketWait(int fd) {
  tcp_info info{};
  socklen_t len = sizeof(info);
  absl::Duration rtt = absl::ZeroDuration();
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0)
    rtt = absl::Microseconds(info.tcpi_rtt);
  return std::clamp(4 * rtt, absl::Milliseconds(50), absl::Milliseconds(500));
}

absl::StatusOr<uint64_t> CollectTls13Tickets(SSL* ssl, int fd, absl::Time until) {
  if (SSL_version(ssl) != TLS1_3_VERSION || SSL_is_server(ssl)) return 0;
  const Tls13TrafficSecrets* secrets = CapturedTrafficSecrets(ssl);
  absl::StatusOr<KtlsCipher> cipher = KtlsCipherFromSsl(ssl);
  if (secrets == nullptr || secrets->server.empty() || !cipher.ok()) return 0;
  TLSD_ASSIGN_OR_RETURN(const TrafficKeys keys, DeriveTrafficKeys(*cipher, secrets->server.span()));

  std::vector<uint8_t> buf(kMaxTls13RecordLen);
  uint64_t taken = 0;
  while (taken < kMaxTicketRecords) {
    // Is a whole record waiting? Wait for one while there is time; after the
    // first tickets, take only what is already here.
    const ssize_t n = recv(fd, buf.data(), buf.size(), MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return taken;  // end of stream: the app's to see
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return taken;  // a socket error: the app's to see on its first read
    }
    const size_t have = n > 0 ? static_cast<size_t>(n) : 0;
    size_t need = kHeaderLen;
    if (have >= kHeaderLen) {
      if (buf[0] != kRecordApplicationData || buf[1] != 0x03 || buf[2] != 0x03) return taken;
      need = kHeaderLen + ((size_t{buf[3]} << 8) | buf[4]);
      if (need > kMaxTls13RecordLen || need < kHeaderLen + kTagLen + 1) return taken;
    }
    if (have == 0) {
      if (taken > 0 || !WaitReadable(fd, until)) return taken;
      continue;
    }
    if (have < need) {
      // Part of a record: poll would say "readable" again at once, so nap.
      if (absl::Now() >= until) return taken;
      absl::SleepFor(absl::Milliseconds(1));
      continue;
    }
    const absl::Span<const uint8_t> record(buf.data(), need);
    TLSD_ASSIGN_OR_RETURN(const Plaintext inner, Open(*cipher, keys, taken, record));
    if (!OnlyTickets(inner)) return taken;  // the app's data, or a KeyUpdate: kTLS's
    // Take exactly this record off the socket (it is all there: peeked).
    size_t got = 0;
    while (got < need) {
      ssize_t r = recv(fd, buf.data() + got, need - got, MSG_DONTWAIT);
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        return ErrnoToStatus(r < 0 ? errno : EPIPE, "taking a peeked ticket record");
      }
      got += static_cast<size_t>(r);
    }
    TLSD_RETURN_IF_ERROR(FeedRecord(ssl, record));
    ++taken;
  }
  return taken;
}

}  // namespace tlsd
