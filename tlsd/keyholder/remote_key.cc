// Legacy key methods are deprecated in OpenSSL 3.0 but are still how libssl
// signs with a key it does not hold (providers are the replacement: a
// provider of our own would be ten times this file for the same effect).
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "tlsd/keyholder/remote_key.h"

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <string.h>

#include "tlsd/keyholder/client.h"
#include "tlsd/tls/ossl_error.h"

namespace tlsd::keyholder {
namespace {

// What a stand-in key refers to; owned by the EC_KEY/RSA (ex_data).
struct Ref {
  KeyHolder* holder;
  uint32_t key_id;
};

void FreeRef(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<Ref*>(ptr); }

int EcIndex() {
  static const int index = EC_KEY_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeRef);
  return index;
}

int RsaIndex() {
  static const int index = RSA_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeRef);
  return index;
}

absl::StatusOr<std::vector<uint8_t>> Ask(const Ref* ref, SignOp op, const unsigned char* in,
                                         size_t len) {
  if (ref == nullptr) return absl::InternalError("key without holder reference");
  return ref->holder->Sign(ref->key_id, op, absl::MakeConstSpan(in, len));
}

int EcSign(int /*type*/, const unsigned char* dgst, int dlen, unsigned char* sig,
           unsigned int* siglen, const BIGNUM* /*kinv*/, const BIGNUM* /*r*/, EC_KEY* ec) {
  auto* ref = static_cast<const Ref*>(EC_KEY_get_ex_data(ec, EcIndex()));
  absl::StatusOr<std::vector<uint8_t>> out =
      Ask(ref, SignOp::kEcdsaDigest, dgst, static_cast<size_t>(dlen));
  if (!out.ok() || out->size() > static_cast<size_t>(ECDSA_size(ec))) return 0;
  memcpy(sig, out->data(), out->size());
  *siglen = static_cast<unsigned int>(out->size());
  return 1;
}

ECDSA_SIG* EcSignSig(const unsigned char* dgst, int dlen, const BIGNUM* /*kinv*/,
                     const BIGNUM* /*r*/, EC_KEY* ec) {
  auto* ref = static_cast<const Ref*>(EC_KEY_get_ex_data(ec, EcIndex()));
  absl::StatusOr<std::vector<uint8_t>> out =
      Ask(ref, SignOp::kEcdsaDigest, dgst, static_cast<size_t>(dlen));
  if (!out.ok()) return nullptr;
  const unsigned char* p = out->data();
  return d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(out->size()));
}

int RsaPrivEnc(int flen, const unsigned char* from, unsigned char* to, RSA* rsa, int padding) {
  SignOp op;
  if (padding == RSA_PKCS1_PADDING) {
    op = SignOp::kRsaPkcs1;
  } else if (padding == RSA_NO_PADDING) {
    op = SignOp::kRsaPss;  // libssl padded it already: PSS is the only user
  } else {
    return -1;
  }
  auto* ref = static_cast<const Ref*>(RSA_get_ex_data(rsa, RsaIndex()));
  absl::StatusOr<std::vector<uint8_t>> out = Ask(ref, op, from, static_cast<size_t>(flen));
  if (!out.ok() || out->size() > static_cast<size_t>(RSA_size(rsa))) return -1;
  memcpy(to, out->data(), out->size());
  return static_cast<int>(out->size());
}

// RSA key exchange (decrypting the client's premaster secret) is not offered
// by tlsd's cipher lists; the holder has no such operation.
int RsaPrivDec(int, const unsigned char*, unsigned char*, RSA*, int) { return -1; }

const EC_KEY_METHOD* EcMethod() {
  static EC_KEY_METHOD* method = [] {
    EC_KEY_METHOD* m = EC_KEY_METHOD_new(EC_KEY_get_default_method());
    int (*setup)(EC_KEY*, BN_CTX*, BIGNUM**, BIGNUM**) = nullptr;
    EC_KEY_METHOD_get_sign(EC_KEY_get_default_method(), nullptr, &setup, nullptr);
    EC_KEY_METHOD_set_sign(m, EcSign, setup, EcSignSig);
    return m;
  }();
  return method;
}

const RSA_METHOD* RsaMethod() {
  static RSA_METHOD* method = [] {
    RSA_METHOD* m = RSA_meth_dup(RSA_PKCS1_OpenSSL());
    RSA_meth_set1_name(m, "tlsd key holder");
    RSA_meth_set_priv_enc(m, RsaPrivEnc);
    RSA_meth_set_priv_dec(m, RsaPrivDec);
    return m;
  }();
  return method;
}

}  // namespace

absl::StatusOr<EvpPkeyPtr> MakeRemoteKey(EVP_PKEY* public_key, KeyHolder* holder, uint32_t key_id) {
  EvpPkeyPtr out(EVP_PKEY_new());
  if (!out) return absl::ResourceExhaustedError("EVP_PKEY_new");
  switch (EVP_PKEY_get_base_id(public_key)) {
    case EVP_PKEY_EC: {
      // A copy: the certificate's own key must stay as it is.
      EC_KEY* pub = EVP_PKEY_get1_EC_KEY(public_key);
      EC_KEY* ec = pub != nullptr ? EC_KEY_dup(pub) : nullptr;
      EC_KEY_free(pub);
      if (ec == nullptr || EC_KEY_set_method(ec, EcMethod()) != 1 ||
          EC_KEY_set_ex_data(ec, EcIndex(), new Ref{holder, key_id}) != 1 ||
          EVP_PKEY_assign_EC_KEY(out.get(), ec) != 1) {
        EC_KEY_free(ec);
        return OsslError(absl::StatusCode::kInternal, "remote EC key");
      }
      return out;
    }
    case EVP_PKEY_RSA: {
      RSA* pub = EVP_PKEY_get1_RSA(public_key);
      RSA* rsa = pub != nullptr ? RSAPublicKey_dup(pub) : nullptr;
      RSA_free(pub);
      if (rsa == nullptr || RSA_set_method(rsa, RsaMethod()) != 1 ||
          RSA_set_ex_data(rsa, RsaIndex(), new Ref{holder, key_id}) != 1 ||
          EVP_PKEY_assign_RSA(out.get(), rsa) != 1) {
        RSA_free(rsa);
        return OsslError(absl::StatusCode::kInternal, "remote RSA key");
      }
      return out;
    }
  }
  return absl::InvalidArgumentError("only EC and RSA keys can be held by the key holder");
}

}  // namespace tlsd::keyholder
