#include "tlsd/handshaker/ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/base/logging.h"

namespace tlsd {
namespace {

constexpr size_t kKeyFileEntryLen = 80;

int RingIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

TicketKeyRing::Key NewRandomKey() {
  TicketKeyRing::Key key{{}, SecretBytes(32), SecretBytes(32)};
  // RAND_bytes fails only if the DRBG cannot be seeded, which makes every
  // handshake impossible anyway.
  TLSD_CHECK(RAND_bytes(key.name.data(), key.name.size()) == 1);
  TLSD_CHECK(RAND_priv_bytes(key.hmac.data(), key.hmac.size()) == 1);
  TLSD_CHECK(RAND_priv_bytes(key.aes.data(), key.aes.size()) == 1);
  return key;
}

int SetMacKey(EVP_MAC_CTX* mac, const SecretBytes& hmac) {
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<uint8_t*>(hmac.data()),
                                        hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  return EVP_MAC_CTX_set_params(mac, params);
}

}  // namespace

std::shared_ptr<TicketKeyRing> TicketKeyRing::Random(absl::Duration rotate) {
  std::shared_ptr<TicketKeyRing> ring(new TicketKeyRing(rotate));
  ring->keys_.push_back(NewRandomKey());
  return ring;
}

absl::StatusOr<std::shared_ptr<TicketKeyRing>> TicketKeyRing::FromFile(absl::string_view path) {
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) return ErrnoToStatus(errno, absl::StrCat("ticket_key_file ", path));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  SecretBytes raw(absl::MakeConstSpan(bytes));
  SecureZero(bytes.data(), bytes.size());
  if (raw.empty() || raw.size() % kKeyFileEntryLen != 0) {
    return absl::InvalidArgumentError(absl::StrCat("ticket_key_file ", path,
                                                   ": must hold one or more 80-byte keys, has ",
                                                   raw.size(), " bytes"));
  }
  std::shared_ptr<TicketKeyRing> ring(new TicketKeyRing(absl::ZeroDuration()));
  for (size_t off = 0; off < raw.size(); off += kKeyFileEntryLen) {
    Key key{{},
            SecretBytes(raw.span().subspan(off + 16, 32)),
            SecretBytes(raw.span().subspan(off + 48, 32))};
    memcpy(key.name.data(), raw.data() + off, 16);
    ring->keys_.push_back(std::move(key));
  }
  return ring;
}

void TicketKeyRing::Attach(SSL_CTX* ctx) {
  SSL_CTX_set_ex_data(ctx, RingIndex(), this);
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &TicketKeyRing::Callback);
}

int TicketKeyRing::Callback(SSL* ssl, unsigned char key_name[16], unsigned char iv[16],
                            EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int enc) {
  // Tickets are handled by the session context (the one SSL_new used), even
  // after the SNI callback switched the certificate context.
  auto* ring = static_cast<TicketKeyRing*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), RingIndex()));
  if (ring == nullptr) return -1;
  return enc ? ring->Encrypt(key_name, iv, cipher, mac) : ring->Decrypt(key_name, iv, cipher, mac);
}

void TicketKeyRing::RotateIfDue() {
  if (rotate_ == absl::ZeroDuration() || absl::Now() - created_ < rotate_) return;
  keys_.insert(keys_.begin(), NewRandomKey());
  if (keys_.size() > 2) keys_.pop_back();
  created_ = absl::Now();
}

int TicketKeyRing::Encrypt(unsigned char key_name[16], unsigned char iv[16], EVP_CIPHER_CTX* cipher,
                           EVP_MAC_CTX* mac) {
  std::lock_guard<std::mutex> lock(mu_);
  RotateIfDue();
  const Key& key = keys_.front();
  if (RAND_bytes(iv, 16) != 1) return -1;
  memcpy(key_name, key.name.data(), 16);
  if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv) != 1 ||
      SetMacKey(mac, key.hmac) != 1) {
    return -1;
  }
  return 1;
}

int TicketKeyRing::Decrypt(const unsigned char key_name[16], const unsigned char iv[16],
                           EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac) {
  std::lock_guard<std::mutex> lock(mu_);
  RotateIfDue();
  for (size_t i = 0; i < keys_.size(); ++i) {
    const Key& key = keys_[i];
    if (memcmp(key_name, key.name.data(), 16) != 0) continue;
    if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv) != 1 ||
        SetMacKey(mac, key.hmac) != 1) {
      return -1;
    }
    // 2 = valid, but re-issue under the current key (RFC 5077 renewal).
    return i == 0 ? 1 : 2;
  }
  return 0;  // unknown key: full handshake
}

}  // namespace tlsd
