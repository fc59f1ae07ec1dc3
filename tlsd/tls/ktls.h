#ifndef TLSD_TLSD_TLS_KTLS_H_
#define TLSD_TLSD_TLS_KTLS_H_

// Kernel TLS installation after an OpenSSL handshake.
//
// Division of labour (see docs/ARCHITECTURE "kTLS installation"):
//  - The SSL_CTX gets SSL_OP_ENABLE_KTLS (ConfigureForKernelTls), so
//    OpenSSL 3.0 itself installs kTLS TX for TLS 1.2 and 1.3 and RX for
//    TLS 1.2. It does so at the exact moment the keys change, so its record
//    sequence numbers stay right, including the TLS 1.3 NewSessionTickets a
//    server sends after the handshake.
//  - TLS 1.3 RX, which OpenSSL 3.0 does not install, tlsd installs itself:
//    the peer's application traffic secret is captured by the keylog callback
//    (InstallSecretCapture), the key and IV are derived with HKDF-Expand-Label
//    and the record sequence is 0, which is right only while OpenSSL has not
//    read any application-key record (read_ahead off, no SSL_read yet), or
//    the count of those it did read, exactly (KtlsOptions::tls13_rx_seq: a
//    client's collected session tickets, tls13_tickets.h).
//  - CompleteKtls looks at what ended up where, per direction, and says why.
//    A direction left in user space is not an error: the caller's policy
//    decides between refusing the connection and relaying.

#include <linux/tls.h>
#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/base/secret_bytes.h"
#include "tlsd/tls/ktls_types.h"

namespace tlsd {

// ---------------------------------------------------------------------------
// Ciphers and crypto_info

// KtlsCipherFromSsl returns the record AEAD negotiated on `ssl` (by the
// cipher's AEAD, so every TLS 1.2 suite using AES-GCM or ChaCha20-Poly1305
// maps). kFailedPrecondition before a cipher is negotiated; kNotFound for a
// cipher kTLS is not used with.
absl::StatusOr<KtlsCipher> KtlsCipherFromSsl(const SSL* ssl);

// TlsVersionFromSsl returns the negotiated protocol version: kNotFound for
// anything but TLS 1.2 and 1.3.
absl::StatusOr<TlsVersion> TlsVersionFromSsl(const SSL* ssl);

// CryptoInfo is the struct passed to setsockopt(SOL_TLS, TLS_TX/TLS_RX): one
// of the kernel's tls12_crypto_info_* layouts. It holds a traffic key, so it
// is cleared on destruction, and moving one clears the source. Only
// BuildCryptoInfo makes one.
class CryptoInfo {
 public:
  CryptoInfo(CryptoInfo&& other) noexcept;
  CryptoInfo& operator=(CryptoInfo&& other) noexcept;
  CryptoInfo(const CryptoInfo&) = delete;
  CryptoInfo& operator=(const CryptoInfo&) = delete;
  ~CryptoInfo() = default;  // storage_ is Wiped

  TlsVersion version() const { return version_; }
  KtlsCipher cipher() const { return cipher_; }
  // data() and size() are the setsockopt optval and optlen.
  const void* data() const { return &storage_.value; }
  size_t size() const { return size_; }

  // Views of the fields as the kernel will read them, for tests and for
  // comparing with getsockopt(SOL_TLS) (the architecture's blob binding).
  absl::Span<const uint8_t> key() const;
  absl::Span<const uint8_t> salt() const;  // empty for ChaCha20-Poly1305
  absl::Span<const uint8_t> iv() const;
  absl::Span<const uint8_t> rec_seq() const;

 private:
  friend absl::StatusOr<CryptoInfo> BuildCryptoInfo(TlsVersion version, KtlsCipher cipher,
                                                    absl::Span<const uint8_t> key,
                                                    absl::Span<const uint8_t> iv, uint64_t rec_seq);
  CryptoInfo(TlsVersion version, KtlsCipher cipher);

  // The largest member first, so value-initialisation zeroes all of it.
  union Storage {
    tls12_crypto_info_aes_gcm_256 aes_gcm_256;
    tls12_crypto_info_aes_gcm_128 aes_gcm_128;
    tls12_crypto_info_chacha20_poly1305 chacha20_poly1305;
    tls_crypto_info base;
  };
  Wiped<Storage> storage_;
  size_t size_ = 0;
  TlsVersion version_;
  KtlsCipher cipher_;
};

// BuildCryptoInfo fills the kernel struct for `version` and `cipher`.
//  - `key` must be KtlsCipherKeyLen(cipher) bytes.
//  - `iv` is the 12-byte nonce base: for TLS 1.3 the write_iv derived from
//    the traffic secret; for TLS 1.2 AES-GCM the 4-byte implicit salt
//    followed by the 8-byte initial explicit nonce; for ChaCha20-Poly1305
//    (both versions) the 12-byte IV. For AES-GCM the kernel wants it split,
//    salt = iv[0..4) and iv = iv[4..12) (the kernel builds the nonce as
//    salt || iv, XORed with the sequence number in TLS 1.3); OpenSSL's
//    ktls_configure_crypto and tlshd split it the same way. ChaCha20 has no
//    salt field: all 12 bytes go to iv.
//  - `rec_seq` is the sequence number of the next record, stored big-endian.
// kInvalidArgument on a wrong length.
absl::StatusOr<CryptoInfo> BuildCryptoInfo(TlsVersion version, KtlsCipher cipher,
                                           absl::Span<const uint8_t> key,
                                           absl::Span<const uint8_t> iv, uint64_t rec_seq);

// ---------------------------------------------------------------------------
// Socket operations

// GetTcpUlp returns the name of the upper-layer protocol attached to the TCP
// socket `fd` ("tls"), or "" if none.
absl::StatusOr<std::string> GetTcpUlp(int fd);

// AttachTlsUlp attaches the "tls" ULP to the connected TCP socket `fd`; it is
// a no-op if "tls" is already attached. Errors:
//   kUnimplemented      ENOENT: "kernel has no TLS ULP" (not built, or a
//                       module that an unprivileged process cannot autoload)
//   kFailedPrecondition the socket is not connected, or has another ULP
//   others              as ErrnoToStatus
absl::Status AttachTlsUlp(int fd);

// InstallKtlsDirection attaches the "tls" ULP if needed, then hands `info` to
// the kernel with setsockopt(SOL_TLS, TLS_TX or TLS_RX). After success the
// kernel encrypts (TX) or decrypts (RX) every further record on that
// direction. On failure the direction is left as it was (the kernel clears a
// rejected crypto_info), so user space can carry on. Errors:
//   kUnimplemented      no TLS ULP; or the kernel lacks the AEAD (ENOENT,
//                       crypto module missing) or refuses the combination
//                       (EOPNOTSUPP/ENOTSUPP)
//   kInvalidArgument    EINVAL: the kernel rejected version/cipher/length
//   kFailedPrecondition EBUSY/EEXIST: the direction is already set and this
//                       is not a rekey the kernel allows (TLS 1.3 only, kernel
//                       6.14+, same cipher); or as AttachTlsUlp
// On 6.14+ a second TLS 1.3 call with the next key succeeds: that is the
// rekey after a KeyUpdate (TX: send the KeyUpdate record first).
//   others              as ErrnoToStatus
// Every error keeps the errno in its payload (StatusToErrno).
absl::Status InstallKtlsDirection(int fd, Direction dir, const CryptoInfo& info);

// ProbeKernelTlsUlp checks, without caching, whether this kernel attaches the
// "tls" ULP: first on an unconnected socket (ENOENT proves its absence
// cheaply), then for real on a connected loopback TCP pair (kept only for
// the probe). The file /proc/sys/net/ipv4/tcp_available_ulp is not used: it
// lists only modules already loaded. Note that the kernel autoloads the tls
// module only for a CAP_NET_ADMIN caller; an unprivileged daemon needs it
// loaded beforehand (modules-load.d). Errors mean the probe could not run
// (e.g. EMFILE, or seccomp forbids socket()).
absl::StatusOr<bool> ProbeKernelTlsUlp();

// KernelHasTlsUlp is ProbeKernelTlsUlp cached for the life of the process
// (only definite answers are cached; a probe that could not run returns
// false now and is retried next time). Call it once before installing
// seccomp if the role's policy forbids socket().
bool KernelHasTlsUlp();

// ConfigureForKernelTls sets up `ctx` for the data path this kernel gives
// every connection. With the TLS ULP (KernelHasTlsUlp): SSL_OP_ENABLE_KTLS,
// so that OpenSSL installs TX (and TLS 1.2 RX) itself, and the TLS 1.3
// secret capture (InstallSecretCapture; its errors are returned). Without
// it: neither - OpenSSL would try setsockopt(TCP_ULP) twice on every
// connection and fail, and format five keylog lines per TLS 1.3 handshake,
// hex digit by hex digit, for secrets nobody can install - but read_ahead,
// which halves OpenSSL's read() calls (one per burst instead of a header and
// a body per record). read_ahead is safe only there: connections are
// relayed, and the relay reads through OpenSSL until it wants more, so no
// byte read ahead is stranded; with kTLS they would be (CompleteKtls refuses
// then). Call it where an SSL_CTX is made.
absl::Status ConfigureForKernelTls(SSL_CTX* ctx);

// ---------------------------------------------------------------------------
// TLS 1.3 traffic secret capture

// InstallSecretCapture sets a keylog callback on `ctx` that keeps, for each
// SSL made from it, the TLS 1.3 CLIENT_TRAFFIC_SECRET_0 and
// SERVER_TRAFFIC_SECRET_0 in SecretBytes owned by that SSL (an ex_data slot,
// freed and cleared by SSL_free). Other keylog lines are ignored and nothing
// is written anywhere. Calling it twice is fine. kFailedPrecondition if `ctx`
// already has a different keylog callback (replacing it would silently break
// whoever set it). An SNI callback that switches an SSL to another SSL_CTX
// must use one that also has the capture installed.
absl::Status InstallSecretCapture(SSL_CTX* ctx);

// Tls13TrafficSecrets are the first application traffic secrets of a TLS 1.3
// connection, as captured. Either may be empty if not (yet) logged.
struct Tls13TrafficSecrets {
  SecretBytes client;  // client_application_traffic_secret_0
  SecretBytes server;  // server_application_traffic_secret_0
};

// CapturedTrafficSecrets returns the secrets captured for `ssl`, or null if
// none were. The pointer is owned by `ssl` and valid until SSL_free or
// ForgetTrafficSecrets.
const Tls13TrafficSecrets* CapturedTrafficSecrets(const SSL* ssl);

// ForgetTrafficSecrets clears and frees the captured secrets of `ssl` now,
// for callers that have sealed them away and want them out of memory.
void ForgetTrafficSecrets(SSL* ssl);

// ---------------------------------------------------------------------------
// Completing kTLS after the handshake

// KtlsMode is where one direction's record layer runs.
enum class KtlsMode {
  kNone,      // user space (OpenSSL); the caller relays or refuses
  kSoftware,  // kernel TLS, software crypto
  kDevice,    // kernel TLS, NIC offload
};

// KtlsModeName returns "none", "sw", "hw", or "sw(unverified)" for kSoftware
// when the kernel was not asked (verified == false): the kernel took the keys
// but whether it chose a device is not known.
absl::string_view KtlsModeName(KtlsMode mode, bool verified);

// KtlsOptions are the per-service kTLS knobs.
struct KtlsOptions {
  // TLS_RX_EXPECT_NO_PAD (kernel 6.0+, TLS 1.3 RX only): let the kernel
  // decrypt straight into the user's buffer, assuming the peer does not pad
  // records (it retries, at a cost, when one is padded).
  bool rx_expect_no_pad = false;
  // TLS_TX_ZEROCOPY_RO (kernel 5.19+): sendfile() with device offload skips a
  // copy; the application promises not to modify file pages being sent.
  bool tx_zerocopy_ro = false;
  // Ask the kernel through sock_diag which mode each direction got. Without
  // CAP_NET_ADMIN the kernel does not say, and the outcome is unverified.
  bool verify_with_sock_diag = true;
  // TLS 1.3 RX, when tlsd installs it: the sequence number of the peer's
  // next record, i.e. how many application-key records OpenSSL has read
  // since the handshake (the tickets CollectTls13Tickets let it take). Any
  // other read past the handshake makes the stream unusable for kTLS.
  uint64_t tls13_rx_seq = 0;
};

// KtlsOutcome says where each direction ended up and why.
struct KtlsOutcome {
  KtlsMode tx = KtlsMode::kNone;
  KtlsMode rx = KtlsMode::kNone;
  // tx/rx were read back from the kernel with sock_diag.
  bool verified = false;
  // Why they were not, when a direction is in the kernel but verified is
  // false (e.g. "sock_diag: no ULP info (needs CAP_NET_ADMIN)"). Kept apart
  // from `reason`: an unverified direction is still in the kernel.
  std::string unverified_why;
  // tlsd (not OpenSSL) installed RX from the captured secret. Then OpenSSL
  // does not know the kernel decrypts: the SSL object must never read from
  // this socket again (SSL_read, a bidirectional SSL_shutdown).
  bool rx_installed_by_tlsd = false;
  // Empty when both directions are in the kernel with every option asked
  // for. Otherwise "why" in the STYLE.md form: one cause shared by both
  // directions (e.g. "kernel has no TLS ULP"), or "tx: ...; rx: ...", then
  // notes about options that were not applied (e.g. "rx_expect_no_pad:
  // ...").
  std::string reason;
};

// CompleteKtls is called once SSL_do_handshake returned 1 (and before any
// SSL_read or SSL_peek), with the socket `fd` the SSL is bound to. It reads
// what OpenSSL installed (BIO_get_ktls_send/recv), installs TLS 1.3 RX from
// the captured peer secret when OpenSSL did not and TX is in the kernel
// (a kernel RX with a user-space TX would leave OpenSSL unable to relay),
// applies `opts`, and reports the result.
//
// A direction the kernel did not take is reported in the outcome, not as an
// error. Errors mean misuse (log it as a configuration bug). They are
// returned before tlsd changes anything on the socket, so whatever OpenSSL
// itself installed stands and OpenSSL knows of it: relaying through the SSL
// is still safe, as is closing. Errors:
//   kInvalidArgument    `ssl` is not bound to `fd`, or is_server disagrees
//                       with SSL_is_server
//   kFailedPrecondition the handshake is not finished; OpenSSL holds
//                       unprocessed bytes (read_ahead on, so sequence 0 would
//                       be wrong); TLS 1.3 without a captured peer secret
//                       (InstallSecretCapture was not called)
absl::StatusOr<KtlsOutcome> CompleteKtls(SSL* ssl, int fd, bool is_server, const KtlsOptions& opts);

}  // namespace tlsd

#endif  // TLSD_TLSD_TLS_KTLS_H_
