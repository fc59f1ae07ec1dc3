#include "tlsd/tls/ktls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/objects.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/errno_status.h"
#include "common/base/status_macros.h"
#include "common/base/unique_fd.h"
#include "tlsd/tls/sock_diag.h"
#include "tlsd/tls/tls13_kdf.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif

namespace tlsd {
namespace {

// The kernel's internal ENOTSUPP, which some kTLS paths leak to user space.
constexpr int kKernelEnotsupp = 524;

// TCP_ULP_NAME_MAX in the kernel.
constexpr size_t kUlpNameMax = 16;

constexpr char kTlsUlp[] = "tls";
constexpr absl::string_view kNoTlsUlp = "kernel has no TLS ULP";

// Keeps the errno payload of `errno_status` under a clearer code and message.
absl::Status Reword(const absl::Status& errno_status, absl::StatusCode code,
                    absl::string_view message) {
  absl::Status out(code, message);
  errno_status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

// ---------------------------------------------------------------------------
// Secret capture

constexpr absl::string_view kClientTrafficSecret0 = "CLIENT_TRAFFIC_SECRET_0";
constexpr absl::string_view kServerTrafficSecret0 = "SERVER_TRAFFIC_SECRET_0";

void FreeSecrets(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
                 void* /*argp*/) {
  delete static_cast<Tls13TrafficSecrets*>(ptr);  // SecretBytes clears
}

// SSL_dup would otherwise copy the pointer and free it twice; a duplicate
// starts without secrets (it has not done a handshake of its own yet).
int DupSecrets(CRYPTO_EX_DATA* /*to*/, const CRYPTO_EX_DATA* /*from*/, void** from_d, int /*idx*/,
               long /*argl*/, void* /*argp*/) {
  *from_d = nullptr;
  return 1;
}

// SecretsIndex registers the ex_data slot once per process; -1 on failure.
int SecretsIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, &DupSecrets, &FreeSecrets);
  return index;
}

int HexNibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes hex straight into SecretBytes, so the secret never sits in a
// std::string that would be freed without clearing. Empty on bad input.
SecretBytes DecodeHexSecret(absl::string_view hex) {
  if (hex.empty() || hex.size() % 2 != 0) {
    return SecretBytes();
  }
  SecretBytes out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = HexNibble(hex[2 * i]);
    int lo = HexNibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return SecretBytes();
    }
    out.data()[i] = static_cast<uint8_t>((hi << 4) | lo);
  }
  return out;
}

// The keylog callback: "LABEL <client_random hex> <secret hex>".
void CaptureKeylogLine(const SSL* ssl, const char* line) {
  absl::string_view rest(line);
  size_t sp = rest.find(' ');
  if (sp == absl::string_view::npos) {
    return;
  }
  absl::string_view label = rest.substr(0, sp);
  const bool is_client = label == kClientTrafficSecret0;
  if (!is_client && label != kServerTrafficSecret0) {
    return;  // handshake secrets, exporter, TLS 1.2 CLIENT_RANDOM: not needed
  }
  rest.remove_prefix(sp + 1);
  sp = rest.find(' ');
  if (sp == absl::string_view::npos) {
    return;
  }
  rest.remove_prefix(sp + 1);  // the client random identifies the session;
                               // the SSL already does.
  while (!rest.empty() && (rest.back() == '\n' || rest.back() == '\r')) {
    rest.remove_suffix(1);
  }
  SecretBytes secret = DecodeHexSecret(rest);
  if (secret.empty()) {
    return;  // CompleteKtls reports the missing secret
  }

  const int index = SecretsIndex();
  if (index < 0) {
    return;
  }
  auto* secrets = static_cast<Tls13TrafficSecrets*>(SSL_get_ex_data(ssl, index));
  if (secrets == nullptr) {
    secrets = new Tls13TrafficSecrets();
    // OpenSSL passes its own, non-const SSL here as const; storing per-SSL
    // state in it is what ex_data is for, so the cast does not modify a
    // const object.
    if (SSL_set_ex_data(const_cast<SSL*>(ssl), index, secrets) != 1) {
      delete secrets;
      return;
    }
  }
  (is_client ? secrets->client : secrets->server) = std::move(secret);
}

// ---------------------------------------------------------------------------
// Outcome helpers

KtlsMode ModeFromConf(KtlsConf conf) {
  switch (conf) {
    case KtlsConf::kSw:
      return KtlsMode::kSoftware;
    case KtlsConf::kHw:
    case KtlsConf::kHwRecord:
      return KtlsMode::kDevice;
    default:
      return KtlsMode::kNone;
  }
}

// Why OpenSSL left `dir` in user space, from what the socket shows.
std::string WhyOpensslLeftUserSpace(const SSL* ssl, int fd, Direction dir) {
  // Cached: a kernel without the ULP costs no system call per connection.
  if (!KernelHasTlsUlp()) {
    return std::string(kNoTlsUlp);
  }
  if ((SSL_get_options(ssl) & SSL_OP_ENABLE_KTLS) == 0) {
    return "SSL_OP_ENABLE_KTLS is not set";
  }
  absl::StatusOr<std::string> ulp = GetTcpUlp(fd);
  if (!ulp.ok()) {
    return std::string(ulp.status().message());
  }
  if (ulp->empty()) {
    return "OpenSSL did not attach the TLS ULP (its kTLS does not support "
           "this connection's cipher or options)";
  }
  if (*ulp != kTlsUlp) {
    return absl::StrCat("socket has another ULP (", *ulp, ")");
  }
  return absl::StrCat("kernel refused TLS_", dir == Direction::kTx ? "TX" : "RX",
                      " from OpenSSL (crypto module missing or cipher "
                      "unsupported)");
}

absl::Status SetSolTlsU32(int fd, int optname, absl::string_view name) {
  uint32_t one = 1;
  if (::setsockopt(fd, SOL_TLS, optname, &one, sizeof(one)) == 0) {
    return absl::OkStatus();
  }
  int e = errno;
  absl::Status status = ErrnoToStatus(e, absl::StrCat("setsockopt ", name));
  if (e == ENOPROTOOPT || e == EOPNOTSUPP || e == kKernelEnotsupp) {
    return Reword(status, absl::StatusCode::kUnimplemented,
                  absl::StrCat(name, ": not supported by this kernel"));
  }
  return status;
}

// PeerSecret returns the captured application traffic secret of the peer
// (the client's on a server), or null.
const SecretBytes* PeerSecret(const SSL* ssl, bool is_server) {
  const Tls13TrafficSecrets* secrets = CapturedTrafficSecrets(ssl);
  if (secrets == nullptr) {
    return nullptr;
  }
  const SecretBytes* peer = is_server ? &secrets->client : &secrets->server;
  return peer->empty() ? nullptr : peer;
}

// Installs TLS 1.3 RX from the peer's traffic secret, the peer's next record
// being number `seq` under it.
absl::Status InstallTls13Rx(int fd, KtlsCipher cipher, const SecretBytes& peer_secret,
                            uint64_t seq) {
  TLSD_ASSIGN_OR_RETURN(TrafficKeys keys, DeriveTrafficKeys(cipher, peer_secret.span()));
  TLSD_ASSIGN_OR_RETURN(CryptoInfo info, BuildCryptoInfo(TlsVersion::kTls13, cipher,
                                                         keys.key.span(), keys.iv.span(), seq));
  return InstallKtlsDirection(fd, Direction::kRx, info);
}

}  // namespace

// ---------------------------------------------------------------------------
// Ciphers and crypto_info

absl::StatusOr<KtlsCipher> KtlsCipherFromSsl(const SSL* ssl) {
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl);
  if (c == nullptr) {
    return absl::FailedPreconditionError("no cipher negotiated yet");
  }
  switch (SSL_CIPHER_get_cipher_nid(c)) {
    case NID_aes_128_gcm:
      return KtlsCipher::kAes128Gcm;
    case NID_aes_256_gcm:
      return KtlsCipher::kAes256Gcm;
    case NID_chacha20_poly1305:
      return KtlsCipher::kChaCha20Poly1305;
    default:
      return absl::NotFoundError(absl::StrCat("cipher ", SSL_CIPHER_get_name(c), ": no kTLS AEAD"));
  }
}

absl::StatusOr<TlsVersion> TlsVersionFromSsl(const SSL* ssl) {
  switch (SSL_version(ssl)) {
    case TLS1_2_VERSION:
      return TlsVersion::kTls12;
    case TLS1_3_VERSION:
      return TlsVersion::kTls13;
    default:
      return absl::NotFoundError(absl::StrCat("protocol ", SSL_get_version(ssl), ": no kTLS"));
  }
}

CryptoInfo::CryptoInfo(TlsVersion version, KtlsCipher cipher) : version_(version), cipher_(cipher) {
  std::memset(&storage_.value, 0, sizeof(storage_.value));
}

CryptoInfo::CryptoInfo(CryptoInfo&& other) noexcept
    : size_(other.size_), version_(other.version_), cipher_(other.cipher_) {
  std::memcpy(&storage_.value, &other.storage_.value, sizeof(storage_.value));
  SecureZero(&other.storage_.value, sizeof(other.storage_.value));
  other.size_ = 0;
}

CryptoInfo& CryptoInfo::operator=(CryptoInfo&& other) noexcept {
  if (this != &other) {
    std::memcpy(&storage_.value, &other.storage_.value, sizeof(storage_.value));
    SecureZero(&other.storage_.value, sizeof(other.storage_.value));
    size_ = std::exchange(other.size_, 0);
    version_ = other.version_;
    cipher_ = other.cipher_;
  }
  return *this;
}

absl::Span<const uint8_t> CryptoInfo::key() const {
  const Storage& s = storage_.value;
  switch (cipher_) {
    case KtlsCipher::kAes128Gcm:
      return absl::MakeConstSpan(s.aes_gcm_128.key);
    case KtlsCipher::kAes256Gcm:
      return absl::MakeConstSpan(s.aes_gcm_256.key);
    case KtlsCipher::kChaCha20Poly1305:
      return absl::MakeConstSpan(s.chacha20_poly1305.key);
  }
  return {};
}

absl::Span<const uint8_t> CryptoInfo::salt() const {
  const Storage& s = storage_.value;
  switch (cipher_) {
    case KtlsCipher::kAes128Gcm:
      return absl::MakeConstSpan(s.aes_gcm_128.salt);
    case KtlsCipher::kAes256Gcm:
      return absl::MakeConstSpan(s.aes_gcm_256.salt);
    case KtlsCipher::kChaCha20Poly1305:
      return {};  // TLS_CIPHER_CHACHA20_POLY1305_SALT_SIZE is 0
  }
  return {};
}

absl::Span<const uint8_t> CryptoInfo::iv() const {
  const Storage& s = storage_.value;
  switch (cipher_) {
    case KtlsCipher::kAes128Gcm:
      return absl::MakeConstSpan(s.aes_gcm_128.iv);
    case KtlsCipher::kAes256Gcm:
      return absl::MakeConstSpan(s.aes_gcm_256.iv);
    case KtlsCipher::kChaCha20Poly1305:
      return absl::MakeConstSpan(s.chacha20_poly1305.iv);
  }
  return {};
}

absl::Span<const uint8_t> CryptoInfo::rec_seq() const {
  const Storage& s = storage_.value;
  switch (cipher_) {
    case KtlsCipher::kAes128Gcm:
      return absl::MakeConstSpan(s.aes_gcm_128.rec_seq);
    case KtlsCipher::kAes256Gcm:
      return absl::MakeConstSpan(s.aes_gcm_256.rec_seq);
    case KtlsCipher::kChaCha20Poly1305:
      return absl::MakeConstSpan(s.chacha20_poly1305.rec_seq);
  }
  return {};
}

absl::StatusOr<CryptoInfo> BuildCryptoInfo(TlsVersion version, KtlsCipher cipher,
                                           absl::Span<const uint8_t> key,
                                           absl::Span<const uint8_t> iv, uint64_t rec_seq) {
  if (version != TlsVersion::kTls12 && version != TlsVersion::kTls13) {
    return absl::InvalidArgumentError("crypto_info: unsupported TLS version");
  }
  if (key.size() != KtlsCipherKeyLen(cipher)) {
    return absl::InvalidArgumentError(absl::StrCat("crypto_info: ", KtlsCipherName(cipher),
                                                   " key is ", key.size(), " bytes, want ",
                                                   KtlsCipherKeyLen(cipher)));
  }
  if (iv.size() != kTlsAeadIvLen) {
    return absl::InvalidArgumentError(
        absl::StrCat("crypto_info: iv is ", iv.size(), " bytes, want ", kTlsAeadIvLen));
  }
  uint8_t seq_be[8];
  for (int i = 7; i >= 0; --i) {
    seq_be[i] = static_cast<uint8_t>(rec_seq & 0xff);
    rec_seq >>= 8;
  }

  CryptoInfo info(version, cipher);
  auto& s = info.storage_.value;
  // Both fields are __u16 in host order (the kernel compares them with its
  // own constants, not wire bytes).
  s.base.version = static_cast<uint16_t>(version);

  // One template for the two GCM layouts, which differ only in key size.
  auto fill_gcm = [&](auto& gcm, uint16_t cipher_type) {
    static_assert(sizeof(gcm.salt) + sizeof(gcm.iv) == kTlsAeadIvLen);
    gcm.info.cipher_type = cipher_type;
    std::memcpy(gcm.key, key.data(), sizeof(gcm.key));
    std::memcpy(gcm.salt, iv.data(), sizeof(gcm.salt));
    std::memcpy(gcm.iv, iv.data() + sizeof(gcm.salt), sizeof(gcm.iv));
    std::memcpy(gcm.rec_seq, seq_be, sizeof(gcm.rec_seq));
    return sizeof(gcm);
  };
  switch (cipher) {
    case KtlsCipher::kAes128Gcm:
      info.size_ = fill_gcm(s.aes_gcm_128, TLS_CIPHER_AES_GCM_128);
      break;
    case KtlsCipher::kAes256Gcm:
      info.size_ = fill_gcm(s.aes_gcm_256, TLS_CIPHER_AES_GCM_256);
      break;
    case KtlsCipher::kChaCha20Poly1305: {
      auto& cc = s.chacha20_poly1305;
      static_assert(sizeof(cc.iv) == kTlsAeadIvLen);
      cc.info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
      std::memcpy(cc.key, key.data(), sizeof(cc.key));
      std::memcpy(cc.iv, iv.data(), sizeof(cc.iv));
      std::memcpy(cc.rec_seq, seq_be, sizeof(cc.rec_seq));
      info.size_ = sizeof(cc);
      break;
    }
  }
  return info;
}

// ---------------------------------------------------------------------------
// Socket operations

absl::StatusOr<std::string> GetTcpUlp(int fd) {
  char name[kUlpNameMax + 1] = {};
  socklen_t len = kUlpNameMax;
  if (::getsockopt(fd, SOL_TCP, TCP_ULP, name, &len) != 0) {
    return ErrnoToStatus(errno, "getsockopt TCP_ULP");
  }
  // The kernel reports length 0 when no ULP is attached.
  return std::string(name, strnlen(name, len));
}

absl::Status AttachTlsUlp(int fd) {
  if (::setsockopt(fd, SOL_TCP, TCP_ULP, kTlsUlp, sizeof(kTlsUlp)) == 0) {
    return absl::OkStatus();
  }
  const int e = errno;
  absl::Status status = ErrnoToStatus(e, "setsockopt TCP_ULP tls");
  switch (e) {
    case ENOENT:
      return Reword(status, absl::StatusCode::kUnimplemented, kNoTlsUlp);
    case EEXIST: {
      // Some ULP is attached already: fine if it is ours.
      absl::StatusOr<std::string> ulp = GetTcpUlp(fd);
      if (ulp.ok() && *ulp == kTlsUlp) {
        return absl::OkStatus();
      }
      return Reword(status, absl::StatusCode::kFailedPrecondition,
                    absl::StrCat("setsockopt TCP_ULP tls: socket has another "
                                 "ULP (",
                                 ulp.ok() ? *ulp : "unknown", ")"));
    }
    case ENOTCONN:
    case kKernelEnotsupp:  // what kernels before 5.x said for "not connected"
      return Reword(status, absl::StatusCode::kFailedPrecondition,
                    "setsockopt TCP_ULP tls: socket is not an established "
                    "TCP connection");
    default:
      return status;
  }
}

absl::Status InstallKtlsDirection(int fd, Direction dir, const CryptoInfo& info) {
  TLSD_RETURN_IF_ERROR(AttachTlsUlp(fd));
  const int optname = dir == Direction::kTx ? TLS_TX : TLS_RX;
  if (::setsockopt(fd, SOL_TLS, optname, info.data(), static_cast<socklen_t>(info.size())) == 0) {
    return absl::OkStatus();
  }
  const int e = errno;
  const std::string what =
      absl::StrCat("setsockopt TLS_", dir == Direction::kTx ? "TX" : "RX", " ",
                   TlsVersionName(info.version()), " ", KtlsCipherName(info.cipher()));
  absl::Status status = ErrnoToStatus(e, what);
  switch (e) {
    case ENOENT:
      return Reword(status, absl::StatusCode::kUnimplemented,
                    absl::StrCat(what,
                                 ": kernel lacks the AEAD (crypto module "
                                 "not loaded?)"));
    case ENOPROTOOPT:
      return Reword(status, absl::StatusCode::kUnimplemented, absl::StrCat(what, ": ", kNoTlsUlp));
    case EOPNOTSUPP:
    case kKernelEnotsupp:
      return Reword(status, absl::StatusCode::kUnimplemented,
                    absl::StrCat(what, ": not supported by this kernel"));
    case EINVAL:
      return Reword(status, absl::StatusCode::kInvalidArgument,
                    absl::StrCat(what, ": kernel rejected the crypto_info"));
    case EBUSY:
    case EEXIST:
      return Reword(status, absl::StatusCode::kFailedPrecondition,
                    absl::StrCat(what,
                                 ": already set (TLS 1.2 is never "
                                 "rekeyed; TLS 1.3 needs kernel 6.14+)"));
    default:
      return status;
  }
}

absl::StatusOr<bool> ProbeKernelTlsUlp() {
  // Step 1: an unconnected socket. The kernel looks the ULP up by name
  // before checking the socket state, so ENOENT proves there is none, and
  // anything else (ENOTCONN, or ENOTSUPP on old kernels) that there is one.
  bool ulp_registered = false;
  {
    UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s.valid()) {
      return ErrnoToStatus(errno, "probe TLS ULP: socket");
    }
    if (::setsockopt(s.get(), SOL_TCP, TCP_ULP, kTlsUlp, sizeof(kTlsUlp)) == 0) {
      ulp_registered = true;  // not expected, but it certainly exists
    } else if (errno == ENOENT) {
      return false;
    } else {
      ulp_registered = true;
    }
  }

  // Step 2: attach it for real on a connected loopback pair, which is the
  // state CompleteKtls will see. If loopback is unusable (a bare network
  // namespace), the step-1 answer stands.
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener.valid()) {
    return ErrnoToStatus(errno, "probe TLS ULP: socket");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t addr_len = sizeof(addr);
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), addr_len) != 0 ||
      ::listen(listener.get(), 1) != 0 ||
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0) {
    return ulp_registered;
  }
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!client.valid()) {
    return ErrnoToStatus(errno, "probe TLS ULP: socket");
  }
  if (::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
    return ulp_registered;
  }
  UniqueFd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!server.valid()) {
    return ErrnoToStatus(errno, "probe TLS ULP: accept");
  }
  absl::Status attached = AttachTlsUlp(client.get());
  if (attached.ok()) {
    return true;
  }
  if (attached.code() == absl::StatusCode::kUnimplemented) {
    return false;
  }
  return attached;
}

bool KernelHasTlsUlp() {
  // -1 unknown, 0 no, 1 yes. Racing first callers may both probe; they get
  // the same answer, so no lock is needed.
  static std::atomic<int> cached{-1};
  int v = cached.load(std::memory_order_acquire);
  if (v >= 0) {
    return v == 1;
  }
  absl::StatusOr<bool> probed = ProbeKernelTlsUlp();
  if (!probed.ok()) {
    return false;
  }
  cached.store(*probed ? 1 : 0, std::memory_order_release);
  return *probed;
}

absl::Status ConfigureForKernelTls(SSL_CTX* ctx) {
  if (KernelHasTlsUlp()) {
    SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    return InstallSecretCapture(ctx);
  }
  SSL_CTX_set_read_ahead(ctx, 1);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Secret capture

absl::Status InstallSecretCapture(SSL_CTX* ctx) {
  if (SecretsIndex() < 0) {
    return absl::InternalError("secret capture: no SSL ex_data index");
  }
  SSL_CTX_keylog_cb_func current = SSL_CTX_get_keylog_callback(ctx);
  if (current != nullptr && current != &CaptureKeylogLine) {
    return absl::FailedPreconditionError("secret capture: SSL_CTX already has a keylog callback");
  }
  SSL_CTX_set_keylog_callback(ctx, &CaptureKeylogLine);
  return absl::OkStatus();
}

const Tls13TrafficSecrets* CapturedTrafficSecrets(const SSL* ssl) {
  const int index = SecretsIndex();
  if (index < 0) {
    return nullptr;
  }
  return static_cast<const Tls13TrafficSecrets*>(SSL_get_ex_data(ssl, index));
}

void ForgetTrafficSecrets(SSL* ssl) {
  const int index = SecretsIndex();
  if (index < 0) {
    return;
  }
  auto* secrets = static_cast<Tls13TrafficSecrets*>(SSL_get_ex_data(ssl, index));
  if (secrets != nullptr) {
    SSL_set_ex_data(ssl, index, nullptr);
    delete secrets;
  }
}

// ---------------------------------------------------------------------------
// CompleteKtls

absl::string_view KtlsModeName(KtlsMode mode, bool verified) {
  switch (mode) {
    case KtlsMode::kNone:
      return "none";
    case KtlsMode::kSoftware:
      return verified ? "sw" : "sw(unverified)";
    case KtlsMode::kDevice:
      return "hw";
  }
  return "unknown";
}

absl::StatusOr<KtlsOutcome> CompleteKtls(SSL* ssl, int fd, bool is_server,
                                         const KtlsOptions& opts) {
  if (ssl == nullptr || fd < 0) {
    return absl::InvalidArgumentError("CompleteKtls: no SSL or fd");
  }
  if (SSL_get_rfd(ssl) != fd || SSL_get_wfd(ssl) != fd) {
    return absl::InvalidArgumentError("CompleteKtls: the SSL is not bound to this fd");
  }
  if (static_cast<bool>(SSL_is_server(ssl)) != is_server) {
    return absl::InvalidArgumentError("CompleteKtls: is_server disagrees with the SSL");
  }
  if (!SSL_is_init_finished(ssl)) {
    return absl::FailedPreconditionError("CompleteKtls: handshake not finished");
  }

  KtlsOutcome outcome;
  std::string tx_why;
  std::string rx_why;
  std::vector<std::string> notes;

  absl::StatusOr<TlsVersion> version = TlsVersionFromSsl(ssl);
  absl::StatusOr<KtlsCipher> cipher = KtlsCipherFromSsl(ssl);

  bool tx_in_kernel = BIO_get_ktls_send(SSL_get_wbio(ssl));
  bool rx_in_kernel = BIO_get_ktls_recv(SSL_get_rbio(ssl));

  if (!version.ok() || !cipher.ok()) {
    // Not a combination tlsd runs in the kernel; report what OpenSSL did.
    const absl::Status& why = !version.ok() ? version.status() : cipher.status();
    if (!tx_in_kernel) {
      tx_why = std::string(why.message());
    }
    if (!rx_in_kernel) {
      rx_why = std::string(why.message());
    }
  } else {
    if (!tx_in_kernel) {
      tx_why = WhyOpensslLeftUserSpace(ssl, fd, Direction::kTx);
    }
    if (rx_in_kernel) {
      // OpenSSL did it (TLS 1.2; TLS 1.3 with OpenSSL 3.2+).
    } else if (*version == TlsVersion::kTls12) {
      rx_why = WhyOpensslLeftUserSpace(ssl, fd, Direction::kRx);
    } else if (!tx_in_kernel) {
      // Installing RX alone would leave OpenSSL reading plaintext it takes
      // for records: a relay needs both directions in user space then.
      rx_why = tx_why == kNoTlsUlp ? tx_why : "not installed because tx is in user space";
    } else {
      // OpenSSL would hold any record it had read ahead past the handshake;
      // then the peer's sequence number is not the one we know and
      // installing would corrupt the stream, so refuse outright (a
      // read_ahead misconfig).
      if (SSL_has_pending(ssl)) {
        return absl::FailedPreconditionError(
            absl::StrCat("CompleteKtls: OpenSSL has buffered input past the handshake "
                         "(read_ahead on?); cannot install TLS 1.3 RX at sequence ",
                         opts.tls13_rx_seq));
      }
      const SecretBytes* peer_secret = PeerSecret(ssl, is_server);
      if (peer_secret == nullptr) {
        return absl::FailedPreconditionError(absl::StrCat(
            "CompleteKtls: no captured ", is_server ? kClientTrafficSecret0 : kServerTrafficSecret0,
            " (InstallSecretCapture was not called on this SSL_CTX)"));
      }
      absl::Status installed = InstallTls13Rx(fd, *cipher, *peer_secret, opts.tls13_rx_seq);
      if (installed.ok()) {
        rx_in_kernel = true;
        outcome.rx_installed_by_tlsd = true;
      } else {
        rx_why = std::string(installed.message());
      }
    }
  }

  // Options, each only for a direction the kernel runs.
  if (opts.rx_expect_no_pad && rx_in_kernel) {
    if (version.ok() && *version == TlsVersion::kTls13) {
      absl::Status s = SetSolTlsU32(fd, TLS_RX_EXPECT_NO_PAD, "TLS_RX_EXPECT_NO_PAD");
      if (!s.ok()) {
        notes.push_back(absl::StrCat("rx_expect_no_pad: ", s.message()));
      }
    } else {
      notes.push_back("rx_expect_no_pad: TLS 1.3 only, not applied");
    }
  }
  if (opts.tx_zerocopy_ro && tx_in_kernel) {
    absl::Status s = SetSolTlsU32(fd, TLS_TX_ZEROCOPY_RO, "TLS_TX_ZEROCOPY_RO");
    if (!s.ok()) {
      notes.push_back(absl::StrCat("tx_zerocopy_ro: ", s.message()));
    }
  }

  outcome.tx = tx_in_kernel ? KtlsMode::kSoftware : KtlsMode::kNone;
  outcome.rx = rx_in_kernel ? KtlsMode::kSoftware : KtlsMode::kNone;
  if (opts.verify_with_sock_diag && (tx_in_kernel || rx_in_kernel)) {
    absl::StatusOr<TcpUlpDiag> diag = QueryTcpUlpDiag(fd);
    if (diag.ok() && diag->has_ulp_info && diag->ulp_name == kTlsUlp) {
      outcome.verified = true;
      outcome.tx = ModeFromConf(diag->tx_conf);
      outcome.rx = ModeFromConf(diag->rx_conf);
      // A direction we believe installed that the kernel calls unconfigured
      // would mean OpenSSL's BIO flag lied; trust the kernel and say so.
      if (tx_in_kernel && outcome.tx == KtlsMode::kNone) {
        tx_why = "kernel reports tx not configured";
      }
      if (rx_in_kernel && outcome.rx == KtlsMode::kNone) {
        rx_why = "kernel reports rx not configured";
      }
    } else if (!diag.ok()) {
      outcome.unverified_why = std::string(diag.status().message());
    } else {
      // The ULP is attached (the kernel took a direction), so a reply
      // without it means the kernel would not tell us.
      outcome.unverified_why = "sock_diag: no ULP info in the reply (needs CAP_NET_ADMIN)";
    }
  } else if (tx_in_kernel || rx_in_kernel) {
    outcome.unverified_why = "sock_diag verification not asked for";
  }

  std::vector<std::string> parts;
  if (!tx_why.empty() && tx_why == rx_why) {
    parts.push_back(tx_why);
  } else {
    if (!tx_why.empty()) {
      parts.push_back(absl::StrCat("tx: ", tx_why));
    }
    if (!rx_why.empty()) {
      parts.push_back(absl::StrCat("rx: ", rx_why));
    }
  }
  parts.insert(parts.end(), notes.begin(), notes.end());
  outcome.reason = absl::StrJoin(parts, "; ");
  return outcome;
}

}  // namespace tlsd
