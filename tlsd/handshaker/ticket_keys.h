#ifndef TLSD_TLSD_HANDSHAKER_TICKET_KEYS_H_
#define TLSD_TLSD_HANDSHAKER_TICKET_KEYS_H_

#include <openssl/ssl.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/base/secret_bytes.h"

namespace tlsd {

// TicketKeyRing encrypts and decrypts session tickets (RFC 5077 layout:
// AES-256-CBC + HMAC-SHA256, as OpenSSL's own tickets). Either random keys
// that tlsd rotates (current + previous, so tickets stay valid for one extra
// period), or keys from a file shared by a fleet so that any instance resumes
// any session. The file holds one or more 80-byte keys, each
// name(16) | hmac(32) | aes(32) — nginx's ssl_session_ticket_key layout, so
// existing key-rotation tooling works; the first key encrypts, all decrypt.
class TicketKeyRing {
 public:
  struct Key {
    std::array<uint8_t, 16> name;
    SecretBytes hmac;  // 32 bytes
    SecretBytes aes;   // 32 bytes
  };

  // Random makes a ring with one fresh key, rotated every `rotate`.
  static std::shared_ptr<TicketKeyRing> Random(absl::Duration rotate);
  // FromFile loads keys; errors name the file and the problem.
  static absl::StatusOr<std::shared_ptr<TicketKeyRing>> FromFile(absl::string_view path);

  // Attach makes `ctx` use this ring for its tickets. The ring must outlive
  // ctx (the Service that owns both guarantees that).
  void Attach(SSL_CTX* ctx);

 private:
  explicit TicketKeyRing(absl::Duration rotate) : rotate_(rotate) {}
  static int Callback(SSL* ssl, unsigned char key_name[16], unsigned char iv[16],
                      EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int enc);
  int Encrypt(unsigned char key_name[16], unsigned char iv[16], EVP_CIPHER_CTX* cipher,
              EVP_MAC_CTX* mac);
  int Decrypt(const unsigned char key_name[16], const unsigned char iv[16], EVP_CIPHER_CTX* cipher,
              EVP_MAC_CTX* mac);
  void RotateIfDue();  // requires mu_

  std::mutex mu_;
  std::vector<Key> keys_;  // [0] encrypts
  absl::Duration rotate_;  // zero for file keys: never rotated by tlsd
  absl::Time created_ = absl::Now();
};

}  // namespace tlsd

#endif  // TLSD_TLSD_HANDSHAKER_TICKET_KEYS_H_
