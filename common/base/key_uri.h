#ifndef TLSD_COMMON_BASE_KEY_URI_H_
#define TLSD_COMMON_BASE_KEY_URI_H_

// IsKeyUri tells a key given as an OpenSSL store URI ("file:/etc/tlsd/k.pem",
// "pkcs11:token=...;object=..." with a PKCS#11 provider configured in
// openssl.cnf) from a path: a scheme (RFC 3986: a letter, then letters,
// digits, "+", "-", ".") and ":" before anything else. The config accepts
// both; only the key holder opens either.

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"

namespace tlsd {

inline bool IsKeyUri(absl::string_view key) {
  const size_t colon = key.find(':');
  if (colon == 0 || colon == absl::string_view::npos || !absl::ascii_isalpha(key[0])) return false;
  for (char c : key.substr(0, colon)) {
    if (!absl::ascii_isalnum(c) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

}  // namespace tlsd

#endif  // TLSD_COMMON_BASE_KEY_URI_H_
