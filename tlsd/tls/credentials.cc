#include "tlsd/tls/credentials.h"

#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/base/unique_fd.h"
#include "tlsd/tls/ossl_error.h"
#include "tlsd/tls/ossl_ptr.h"

namespace tlsd {

absl::Status CheckReadable(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return ErrnoToStatus(errno, path);
  return absl::OkStatus();
}

absl::Status UseCertificate(SSL_CTX* ctx, const std::string& cert_path,
                            const std::string& key_path) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_path.c_str()) != 1) {
    return OsslError(absl::StatusCode::kInvalidArgument, absl::StrCat("certificate ", cert_path));
  }
  BioPtr bio(BIO_new_file(key_path.c_str(), "r"));
  if (!bio) {
    return OsslError(absl::StatusCode::kNotFound, absl::StrCat("private key ", key_path));
  }
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return OsslError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("private key ", key_path, ": no PEM private key"));
  }
  if (X509_check_private_key(SSL_CTX_get0_certificate(ctx), key.get()) != 1) {
    ClearOsslErrors();
    return absl::InvalidArgumentError(
        absl::StrCat("private key ", key_path, " does not match certificate ", cert_path));
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return OsslError(absl::StatusCode::kInvalidArgument, absl::StrCat("private key ", key_path));
  }
  return absl::OkStatus();
}

}  // namespace tlsd
