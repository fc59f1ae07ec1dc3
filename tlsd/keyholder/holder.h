#ifndef TLSD_TLSD_KEYHOLDER_HOLDER_H_
#define TLSD_TLSD_KEYHOLDER_HOLDER_H_

// The key holder process: the only tlsd process that reads private key files
// and session-ticket key files, and has their bytes in its memory. It loads
// the keys the engine names during setup, becomes tlsd's user, marks itself
// non-dumpable (so that the engine, running as the same user, cannot ptrace
// it or read its memory), and then answers fixed-size SIGN requests, one
// operation per request: a signature, or the keys of one session ticket
// (protocol.h). It touches no network socket and parses nothing else.

#include <stdint.h>

#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "tlsd/keyholder/protocol.h"
#include "tlsd/tls/ossl_ptr.h"

namespace tlsd::keyholder {

// RunKeyHolder serves `setup_fd` until SEAL, then the signing channels until
// all are closed (the engine exited). Runs in the child tlsd forks; the
// return value is its exit code.
int RunKeyHolder(int setup_fd, const std::vector<int>& sign_fds);

// SignWith performs one validated operation with `key`; exposed for tests.
//   ECDSA key: kEcdsaDigest only, input 20..64 bytes.
//   RSA key: kRsaPkcs1 with input at most size-11 bytes, or kRsaPss with
//   input exactly the modulus size that is a well-formed PSS encoding
//   (salt as long as the hash, SHA-256/384/512) - a block that is not
//   cannot be signed, so the holder is no raw RSA decryption oracle.
absl::StatusOr<std::vector<uint8_t>> SignWith(EVP_PKEY* key, SignOp op,
                                              absl::Span<const uint8_t> input);

// IsPssEncoding checks a raw RSA input block of `modulus_bits` for the
// structure of EMSA-PSS (RFC 8017 9.1.1) with MGF1 and the given hash.
bool IsPssEncoding(absl::Span<const uint8_t> block, int modulus_bits);

}  // namespace tlsd::keyholder

#endif  // TLSD_TLSD_KEYHOLDER_HOLDER_H_
