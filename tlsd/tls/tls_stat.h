#ifndef TLSD_TLSD_TLS_TLS_STAT_H_
#define TLSD_TLSD_TLS_TLS_STAT_H_

#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tlsd {

// TlsStat maps a /proc/net/tls_stat counter name (e.g. "TlsTxSw",
// "TlsCurrRxDevice", "TlsDecryptError") to its value.
using TlsStat = absl::flat_hash_map<std::string, int64_t>;

// kTlsStatPath is the kernel's per-network-namespace kTLS counter file. It is
// readable by any user and exists only while the tls module is loaded (or
// built in).
inline constexpr char kTlsStatPath[] = "/proc/net/tls_stat";

// ReadTlsStat reads and parses `path` (kTlsStatPath unless a test says
// otherwise). kNotFound when the file does not exist, i.e. the kernel has no
// kTLS loaded in this namespace; kInvalidArgument when a line is malformed.
absl::StatusOr<TlsStat> ReadTlsStat(absl::string_view path = kTlsStatPath);

// ParseTlsStat parses the file's text: one "Name<whitespace>value" per line.
// Empty lines are ignored; anything else malformed, or a name seen twice, is
// kInvalidArgument (a silent partial parse would make counter assertions lie).
absl::StatusOr<TlsStat> ParseTlsStat(absl::string_view text);

// TlsStatValue returns the counter `name` from `stat`, or 0 when the kernel
// does not have that counter (older kernels lack the rekey counters, for
// example).
int64_t TlsStatValue(const TlsStat& stat, absl::string_view name);

}  // namespace tlsd

#endif  // TLSD_TLSD_TLS_TLS_STAT_H_
