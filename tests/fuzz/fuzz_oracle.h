#ifndef TLSD_TESTS_FUZZ_FUZZ_ORACLE_H_
#define TLSD_TESTS_FUZZ_FUZZ_ORACLE_H_

// What every fuzzer's oracle uses: FUZZ_REQUIRE aborts (libFuzzer records
// the input as a crash) when a property the code promises does not hold.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/types/span.h"

#define FUZZ_REQUIRE(cond)                                                      \
  do {                                                                          \
    if (!(cond)) {                                                              \
      fprintf(stderr, "%s:%d: oracle failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                  \
    }                                                                           \
  } while (0)

namespace tlsd::fuzz {

// SameBytes: an encoder's output equals the input it decoded.
inline bool SameBytes(const std::vector<uint8_t>& a, absl::Span<const uint8_t> b) {
  return a.size() == b.size() && (a.empty() || memcmp(a.data(), b.data(), a.size()) == 0);
}

}  // namespace tlsd::fuzz

#endif  // TLSD_TESTS_FUZZ_FUZZ_ORACLE_H_
