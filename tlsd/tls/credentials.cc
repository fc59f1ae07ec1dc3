#include "tlsd/tls/credentials.h"

#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/store.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/base/key_uri.h"
#include "common/base/unique_fd.h"
#include "tlsd/tls/ossl_error.h"

namespace tlsd {

absl::Status CheckReadable(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) return ErrnoToStatus(errno, path);
  return absl::OkStatus();
}

namespace {

absl::StatusOr<EvpPkeyPtr> KeyFromStore(const std::string& uri) {
  OSSL_STORE_CTX* store = OSSL_STORE_open_ex(uri.c_str(), nullptr, nullptr, nullptr, nullptr,
                                             nullptr, nullptr, nullptr);
  if (store == nullptr) {
    return OsslError(absl::StatusCode::kNotFound, absl::StrCat("private key ", uri));
  }
  EvpPkeyPtr key;
  while (!key && OSSL_STORE_eof(store) == 0) {
    OSSL_STORE_INFO* info = OSSL_STORE_load(store);
    if (info == nullptr) continue;
    if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY) {
      key.reset(OSSL_STORE_INFO_get1_PKEY(info));
    }
    OSSL_STORE_INFO_free(info);
  }
  OSSL_STORE_close(store);
  if (!key) {
    return OsslError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("private key ", uri, ": the store has no private key there"));
  }
  ClearOsslErrors();
  return key;
}

absl::StatusOr<EvpPkeyPtr> KeyFromFile(const std::string& path) {
  if (absl::Status s = CheckReadable(path); !s.ok()) return s;
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    return OsslError(absl::StatusCode::kNotFound, absl::StrCat("private key ", path));
  }
  EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return OsslError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("private key ", path, ": no PEM private key"));
  }
  return key;
}

}  // namespace

absl::StatusOr<std::shared_ptr<TicketKeys>> LocalPrivateKeys::Tickets(const std::string& key_file,
                                                                      absl::Duration rotate) {
  if (key_file.empty()) return std::shared_ptr<TicketKeys>(TicketKeyRing::Random(rotate));
  absl::StatusOr<std::unique_ptr<TicketKeyRing>> ring = TicketKeyRing::FromFile(key_file);
  if (!ring.ok()) return ring.status();
  return std::shared_ptr<TicketKeys>(*std::move(ring));
}

absl::StatusOr<EvpPkeyPtr> LocalPrivateKeys::Key(const std::string& cert_path, X509* leaf,
                                                 const std::string& key_path) {
  absl::StatusOr<EvpPkeyPtr> loaded =
      IsKeyUri(key_path) ? KeyFromStore(key_path) : KeyFromFile(key_path);
  if (!loaded.ok()) return loaded.status();
  EvpPkeyPtr key = std::move(*loaded);
  if (X509_check_private_key(leaf, key.get()) != 1) {
    ClearOsslErrors();
    return absl::InvalidArgumentError(
        absl::StrCat("private key ", key_path, " does not match certificate ", cert_path));
  }
  return key;
}

absl::StatusOr<X509Ptr> LoadCertificate(const std::string& cert_path) {
  BioPtr bio(BIO_new_file(cert_path.c_str(), "r"));
  X509Ptr leaf(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!leaf) {
    return OsslError(absl::StatusCode::kInvalidArgument, absl::StrCat("certificate ", cert_path));
  }
  return leaf;
}

absl::Status UseCertificate(SSL_CTX* ctx, const std::string& cert_path, const std::string& key_path,
                            PrivateKeys& keys) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_path.c_str()) != 1) {
    return OsslError(absl::StatusCode::kInvalidArgument, absl::StrCat("certificate ", cert_path));
  }
  absl::StatusOr<EvpPkeyPtr> key = keys.Key(cert_path, SSL_CTX_get0_certificate(ctx), key_path);
  if (!key.ok()) return key.status();
  if (SSL_CTX_use_PrivateKey(ctx, key->get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return OsslError(absl::StatusCode::kInvalidArgument, absl::StrCat("private key ", key_path));
  }
  return absl::OkStatus();
}

absl::Status UseCrls(SSL_CTX* ctx, const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return ErrnoToStatus(errno, absl::StrCat("client_crl ", path));
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  if (S_ISDIR(st.st_mode)) {
    X509_LOOKUP* dir = X509_STORE_add_lookup(store, X509_LOOKUP_hash_dir());
    if (dir == nullptr || X509_LOOKUP_add_dir(dir, path.c_str(), X509_FILETYPE_PEM) != 1) {
      return OsslError(absl::StatusCode::kInvalidArgument, absl::StrCat("client_crl ", path));
    }
  } else {
    if (absl::Status s = CheckReadable(path); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("client_crl ", s.message()));
    }
    X509_LOOKUP* file = X509_STORE_add_lookup(store, X509_LOOKUP_file());
    if (file == nullptr || X509_load_crl_file(file, path.c_str(), X509_FILETYPE_PEM) <= 0) {
      return OsslError(absl::StatusCode::kInvalidArgument,
                       absl::StrCat("client_crl ", path, ": no PEM CRL"));
    }
  }
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  return absl::OkStatus();
}

}  // namespace tlsd
