#ifndef TLSD_TLSD_TLS_OCSP_STAPLE_H_
#define TLSD_TLSD_TLS_OCSP_STAPLE_H_

// OCSP stapling from a response file: the operator (or a cron job) fetches
// the CA's OCSP response for a certificate into a file; tlsd reads it at
// start and on reload, and sends it to clients that ask (status_request).
// A response that does not cover the certificate, is not "successful", or
// is outside its thisUpdate..nextUpdate window is not stapled - the
// handshake goes on without it - and the reason is logged. Validity is
// checked again when stapling, so a response that expires while tlsd runs
// stops being sent.

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tlsd {

struct OcspStaple {
  std::vector<uint8_t> der;  // the whole OCSPResponse
  absl::Time next_update;    // absl::InfiniteFuture() if the response has none
};

// LoadOcspStaple reads `path` and checks it for `leaf` (issued by `issuer`)
// at `now`. Errors say why it cannot be stapled.
absl::StatusOr<OcspStaple> LoadOcspStaple(const std::string& path, X509* leaf, X509* issuer,
                                          absl::Time now);

}  // namespace tlsd

#endif  // TLSD_TLSD_TLS_OCSP_STAPLE_H_
