#include "common/base/logging.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "absl/strings/str_cat.h"

namespace tlsd {
namespace {

std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_prefix_mu;
std::string* g_prefix = new std::string();  // leaked: used until exit

}  // namespace

void SetLogPrefix(absl::string_view prefix) {
  std::lock_guard<std::mutex> lock(g_prefix_mu);
  *g_prefix = std::string(prefix);
}

void SetMinLogLevel(LogLevel level) { g_min_level = static_cast<int>(level); }

bool LogEnabled(LogLevel level) { return static_cast<int>(level) <= g_min_level; }

void WriteLogLine(LogLevel level, absl::string_view line) {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(g_prefix_mu);
    out = absl::StrCat("<", static_cast<int>(level), ">", *g_prefix, line, "\n");
  }
  // One write so concurrent threads' lines do not interleave; a short write
  // to stderr is not worth retrying for a log line.
  ssize_t ignored = ::write(STDERR_FILENO, out.data(), out.size());
  (void)ignored;
}

void CheckFailed(const char* file, int line, const char* cond) {
  WriteLogLine(LogLevel::kError, absl::StrCat(file, ":", line, ": check failed: ", cond));
  std::abort();
}

}  // namespace tlsd
