#include "tlsd/handshaker/ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <cstring>

#include "common/base/logging.h"

namespace tlsd {
namespace {

int KeysIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int SetKeys(const TicketSecrets& s, const unsigned char iv[16], EVP_CIPHER_CTX* cipher,
            EVP_MAC_CTX* mac, int enc) {
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<uint8_t*>(s.hmac.data()),
                                        s.hmac.size()),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_end()};
  if (EVP_CipherInit_ex(cipher, EVP_aes_256_cbc(), nullptr, s.aes.data(), iv, enc) != 1 ||
      EVP_MAC_CTX_set_params(mac, params) != 1) {
    return -1;
  }
  return 1;
}

// Callback is OpenSSL's ticket key callback: 1 = keys set (for opening: the
// current key), 2 = opened with an older key (issue a fresh ticket), 0 =
// unknown key name (full handshake), -1 = failure (no ticket / full
// handshake; the handshake itself goes on).
int Callback(SSL* ssl, unsigned char key_name[16], unsigned char iv[16], EVP_CIPHER_CTX* cipher,
             EVP_MAC_CTX* mac, int enc) {
  // Tickets are handled by the session context (the one SSL_new used), even
  // after the SNI callback switched the certificate context.
  auto* keys = static_cast<TicketKeys*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), KeysIndex()));
  if (keys == nullptr) return -1;
  if (enc) {
    absl::StatusOr<TicketSecrets> s = keys->ForNewTicket();
    if (!s.ok()) {
      TLSD_LOG(Warning) << "no session ticket issued: " << s.status().message();
      return -1;
    }
    memcpy(key_name, s->name.data(), s->name.size());
    memcpy(iv, s->iv.data(), s->iv.size());
    return SetKeys(*s, iv, cipher, mac, 1);
  }
  TicketSecrets s;
  absl::StatusOr<TicketKeyState> state = keys->ForTicket(
      absl::MakeConstSpan(key_name, kTicketNameLen), absl::MakeConstSpan(iv, kTicketIvLen), &s);
  if (!state.ok()) {
    TLSD_LOG(Warning) << "session ticket not opened: " << state.status().message();
    return -1;
  }
  switch (*state) {
    case TicketKeyState::kUnknown:
      return 0;
    case TicketKeyState::kCurrent:
      return SetKeys(s, iv, cipher, mac, 0);
    case TicketKeyState::kRenew:
      return SetKeys(s, iv, cipher, mac, 0) == 1 ? 2 : -1;
  }
  return -1;
}

}  // namespace

void AttachTicketKeys(SSL_CTX* ctx, TicketKeys* keys) {
  SSL_CTX_set_ex_data(ctx, KeysIndex(), keys);
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &Callback);
}

}  // namespace tlsd
