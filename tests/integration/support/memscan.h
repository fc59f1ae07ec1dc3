#ifndef TLSD_TESTS_INTEGRATION_SUPPORT_MEMSCAN_H_
#define TLSD_TESTS_INTEGRATION_SUPPORT_MEMSCAN_H_

// Looking for secrets in another process's memory: every readable mapping
// listed in /proc/PID/maps, read through /proc/PID/mem (root, or a ptrace-
// able process of our own). Used to show which process holds a private key
// and which never received it.

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tlsd {
namespace integration {

struct MemScanResult {
  size_t bytes_scanned = 0;
  size_t mappings_scanned = 0;
  std::vector<bool> found;  // per needle
};

// ScanProcessMemory reads all of `pid`'s readable mappings and reports which
// of `needles` (each at least 16 bytes) occur anywhere. Mappings that cannot
// be read ([vvar], device memory) are skipped; an unreadable /proc/PID/maps
// or /proc/PID/mem is an error.
absl::StatusOr<MemScanResult> ScanProcessMemory(pid_t pid, const std::vector<std::string>& needles);

// PrivateKeyNeedles loads a PEM private key and returns the forms in which
// its secret may sit in memory: the private scalar/exponent big-endian (as
// on the wire and in the file's DER) and little-endian (OpenSSL's BIGNUM
// limbs on x86_64).
absl::StatusOr<std::vector<std::string>> PrivateKeyNeedles(const std::string& pem_path);

}  // namespace integration
}  // namespace tlsd

#endif  // TLSD_TESTS_INTEGRATION_SUPPORT_MEMSCAN_H_
