#ifndef TLSD_TLSD_TLS_CERT_SUMMARY_H_
#define TLSD_TLSD_TLS_CERT_SUMMARY_H_

#include <openssl/x509.h>

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace tlsd {

// What an operator wants to know about a certificate being served (tlsctl
// certs): who it is for and when it stops working.
struct CertSummary {
  std::string subject;                 // RFC 2253
  std::string issuer;                  // RFC 2253
  std::vector<std::string> dns_names;  // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;
  absl::Time not_before;
  absl::Time not_after;
  std::string sha256;  // of the DER certificate, lowercase hex
};

CertSummary SummarizeCertificate(X509* cert);

}  // namespace tlsd

#endif  // TLSD_TLSD_TLS_CERT_SUMMARY_H_
