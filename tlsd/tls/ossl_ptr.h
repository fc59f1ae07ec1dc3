#ifndef TLSD_TLSD_TLS_OSSL_PTR_H_
#define TLSD_TLSD_TLS_OSSL_PTR_H_

// Owning pointers for the OpenSSL objects tlsd creates. Every alias frees with
// the object's own *_free function, which also drops one reference for the
// reference-counted types (SSL_CTX, EVP_PKEY, X509), so an owner may hold a
// pointer that OpenSSL also references internally.

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "common/base/c_ptr.h"

namespace tlsd {

namespace ossl_internal {
// sk_*_pop_free are macros/inline functions, so they cannot be CDeleter
// template arguments directly; these wrappers give them an address.
inline void FreeX509Stack(STACK_OF(X509) * stack) { sk_X509_pop_free(stack, X509_free); }
inline void FreeX509NameStack(STACK_OF(X509_NAME) * stack) {
  sk_X509_NAME_pop_free(stack, X509_NAME_free);
}
}  // namespace ossl_internal

using SslCtxPtr = std::unique_ptr<SSL_CTX, CDeleter<&SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, CDeleter<&SSL_free>>;
using BioPtr = std::unique_ptr<BIO, CDeleter<&BIO_free_all>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, CDeleter<&EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, CDeleter<&EVP_PKEY_CTX_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, CDeleter<&EVP_MD_CTX_free>>;
using EvpMdPtr = std::unique_ptr<EVP_MD, CDeleter<&EVP_MD_free>>;
using EvpCipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CDeleter<&EVP_CIPHER_CTX_free>>;
using EvpCipherPtr = std::unique_ptr<EVP_CIPHER, CDeleter<&EVP_CIPHER_free>>;
using EvpKdfPtr = std::unique_ptr<EVP_KDF, CDeleter<&EVP_KDF_free>>;
using EvpKdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, CDeleter<&EVP_KDF_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, CDeleter<&X509_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, CDeleter<&X509_NAME_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, CDeleter<&X509_EXTENSION_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, CDeleter<&X509_STORE_free>>;
using X509StackPtr = std::unique_ptr<STACK_OF(X509), CDeleter<&ossl_internal::FreeX509Stack>>;
using X509NameStackPtr =
    std::unique_ptr<STACK_OF(X509_NAME), CDeleter<&ossl_internal::FreeX509NameStack>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, CDeleter<&GENERAL_NAMES_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, CDeleter<&ASN1_INTEGER_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, CDeleter<&BN_free>>;

}  // namespace tlsd

#endif  // TLSD_TLSD_TLS_OSSL_PTR_H_
