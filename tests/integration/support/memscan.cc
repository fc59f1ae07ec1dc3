#include "tests/integration/support/memscan.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tlsd {
namespace integration {

absl::StatusOr<MemScanResult> ScanProcessMemory(pid_t pid,
                                                const std::vector<std::string>& needles) {
  size_t longest = 0;
  for (const std::string& n : needles) {
    if (n.size() < 16) return absl::InvalidArgumentError("needles must be at least 16 bytes");
    longest = std::max(longest, n.size());
  }
  std::ifstream maps(absl::StrCat("/proc/", pid, "/maps"));
  if (!maps) return absl::NotFoundError(absl::StrCat("/proc/", pid, "/maps: cannot open"));
  const std::string mem_path = absl::StrCat("/proc/", pid, "/mem");
  const int mem = open(mem_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (mem < 0) return absl::PermissionDeniedError(absl::StrCat(mem_path, ": ", strerror(errno)));
  MemScanResult result;
  result.found.assign(needles.size(), false);
  constexpr size_t kChunk = 1 << 20;
  std::string buf;
  std::string line;
  while (std::getline(maps, line)) {
    // "start-end perms offset dev inode [path]"
    std::vector<std::string> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() < 2 || f[1][0] != 'r') continue;
    if (f.size() >= 6 && (f[5] == "[vvar]" || f[5] == "[vsyscall]")) continue;
    unsigned long long start = 0, end = 0;
    if (sscanf(f[0].c_str(), "%llx-%llx", &start, &end) != 2) continue;
    bool read_any = false;
    // Chunks overlap by longest-1 bytes so a needle across a boundary is seen.
    for (unsigned long long at = start; at < end;) {
      const size_t want = static_cast<size_t>(std::min<unsigned long long>(kChunk, end - at));
      buf.resize(want);
      ssize_t n = pread(mem, buf.data(), want, static_cast<off_t>(at));
      if (n <= 0) break;
      buf.resize(static_cast<size_t>(n));
      read_any = true;
      result.bytes_scanned += static_cast<size_t>(n);
      for (size_t i = 0; i < needles.size(); ++i) {
        if (!result.found[i] && buf.find(needles[i]) != std::string::npos) result.found[i] = true;
      }
      if (at + static_cast<unsigned long long>(n) >= end) break;
      at += static_cast<unsigned long long>(n) > longest ? n - (longest - 1) : n;
    }
    if (read_any) ++result.mappings_scanned;
  }
  close(mem);
  return result;
}

absl::StatusOr<std::vector<std::string>> PrivateKeyNeedles(const std::string& pem_path) {
  FILE* f = fopen(pem_path.c_str(), "re");
  if (f == nullptr) return absl::NotFoundError(absl::StrCat(pem_path, ": ", strerror(errno)));
  EVP_PKEY* pkey = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  fclose(f);
  if (pkey == nullptr) return absl::InvalidArgumentError(absl::StrCat(pem_path, ": not a key"));
  BIGNUM* priv = nullptr;
  // EC keys: the private scalar; RSA keys: the private exponent.
  if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &priv) != 1 &&
      EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_D, &priv) != 1) {
    EVP_PKEY_free(pkey);
    return absl::InvalidArgumentError(absl::StrCat(pem_path, ": no private number found"));
  }
  const int len = BN_num_bytes(priv);
  std::string be(static_cast<size_t>(len), '\0'), le(static_cast<size_t>(len), '\0');
  BN_bn2binpad(priv, reinterpret_cast<unsigned char*>(be.data()), len);
  BN_bn2lebinpad(priv, reinterpret_cast<unsigned char*>(le.data()), len);
  BN_clear_free(priv);
  EVP_PKEY_free(pkey);
  return std::vector<std::string>{be, le};
}

}  // namespace integration
}  // namespace tlsd
