#include "tlsd/tls/ocsp_staple.h"

#include <openssl/ocsp.h>

#include <fstream>
#include <iterator>
#include <memory>

#include "absl/strings/str_cat.h"
#include "tlsd/tls/ossl_error.h"

namespace tlsd {
namespace {

// Responses drift by a few minutes from the CA's clock: OpenSSL's usual
// tolerance.
constexpr long kClockSkewSeconds = 300;

absl::Time FromAsn1(const ASN1_GENERALIZEDTIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfiniteFuture();
  return absl::FromUnixSeconds(timegm(&tm));
}

}  // namespace

absl::StatusOr<OcspStaple> LoadOcspStaple(const std::string& path, X509* leaf, X509* issuer,
                                          absl::Time now) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("ocsp_response ", path, ": cannot open"));
  OcspStaple staple;
  staple.der.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  const unsigned char* p = staple.der.data();
  std::unique_ptr<OCSP_RESPONSE, decltype(&OCSP_RESPONSE_free)> resp(
      d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(staple.der.size())), &OCSP_RESPONSE_free);
  if (!resp || p != staple.der.data() + staple.der.size()) {
    ClearOsslErrors();
    return absl::InvalidArgumentError(
        absl::StrCat("ocsp_response ", path, ": not a DER OCSP response"));
  }
  if (OCSP_response_status(resp.get()) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
    return absl::InvalidArgumentError(
        absl::StrCat("ocsp_response ", path, ": status ",
                     OCSP_response_status_str(OCSP_response_status(resp.get()))));
  }
  std::unique_ptr<OCSP_BASICRESP, decltype(&OCSP_BASICRESP_free)> basic(
      OCSP_response_get1_basic(resp.get()), &OCSP_BASICRESP_free);
  if (issuer == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ocsp_response ", path, ": the certificate file has no issuer certificate after the leaf"));
  }
  std::unique_ptr<OCSP_CERTID, decltype(&OCSP_CERTID_free)> id(
      OCSP_cert_to_id(nullptr, leaf, issuer), &OCSP_CERTID_free);
  int status = -1, reason = -1;
  ASN1_GENERALIZEDTIME *revoked_at = nullptr, *this_update = nullptr, *next_update = nullptr;
  if (!basic || !id ||
      OCSP_resp_find_status(basic.get(), id.get(), &status, &reason, &revoked_at, &this_update,
                            &next_update) != 1) {
    ClearOsslErrors();
    return absl::InvalidArgumentError(
        absl::StrCat("ocsp_response ", path, ": does not cover this certificate"));
  }
  if (status != V_OCSP_CERTSTATUS_GOOD) {
    return absl::InvalidArgumentError(absl::StrCat("ocsp_response ", path, ": certificate status ",
                                                   OCSP_cert_status_str(status)));
  }
  staple.next_update = FromAsn1(next_update);
  const absl::Time this_time = FromAsn1(this_update);
  if (this_time != absl::InfiniteFuture() && this_time > now + absl::Seconds(kClockSkewSeconds)) {
    return absl::InvalidArgumentError(absl::StrCat("ocsp_response ", path, ": not valid yet"));
  }
  if (staple.next_update < now - absl::Seconds(kClockSkewSeconds)) {
    return absl::InvalidArgumentError(absl::StrCat("ocsp_response ", path, ": expired (nextUpdate ",
                                                   absl::FormatTime(staple.next_update), ")"));
  }
  return staple;
}

}  // namespace tlsd
