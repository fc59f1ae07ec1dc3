#include "tlsd/tls/cert_summary.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include "absl/strings/escaping.h"
#include "tlsd/tls/ossl_ptr.h"

namespace tlsd {
namespace {

std::string NameText(const X509_NAME* name) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return "";
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string out(data, len > 0 ? static_cast<size_t>(len) : 0);
  BIO_free(bio);
  return out;
}

absl::Time AsTime(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromUnixSeconds(timegm(&tm));
}

}  // namespace

CertSummary SummarizeCertificate(X509* cert) {
  CertSummary s;
  s.subject = NameText(X509_get_subject_name(cert));
  s.issuer = NameText(X509_get_issuer_name(cert));
  s.not_before = AsTime(X509_get0_notBefore(cert));
  s.not_after = AsTime(X509_get0_notAfter(cert));
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; sans != nullptr && i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
    if (n->type == GEN_DNS) {
      const ASN1_STRING* v = n->d.dNSName;
      s.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)),
                               static_cast<size_t>(ASN1_STRING_length(v)));
    } else if (n->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* v = n->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = "";
      const int len = ASN1_STRING_length(v);
      const int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
      if (family != 0 && inet_ntop(family, ASN1_STRING_get0_data(v), text, sizeof(text))) {
        s.ip_addresses.push_back(text);
      }
    }
  }
  GENERAL_NAMES_free(sans);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &md_len) == 1) {
    s.sha256 = absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md), md_len));
  }
  return s;
}

}  // namespace tlsd
