#include "tlsd/tls/tls_stat.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/errno_status.h"
#include "common/base/unique_fd.h"

namespace tlsd {
namespace {

// The real file is about 20 lines; anything far larger is not tls_stat.
constexpr size_t kMaxTlsStatBytes = 64 * 1024;

}  // namespace

absl::StatusOr<TlsStat> ReadTlsStat(absl::string_view path) {
  const std::string path_str(path);
  UniqueFd fd(::open(path_str.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    int e = errno;
    if (e == ENOENT) {
      return absl::NotFoundError(absl::StrCat(path, ": not present (kernel has no kTLS loaded)"));
    }
    return ErrnoToStatus(e, absl::StrCat("open ", path));
  }
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoToStatus(errno, absl::StrCat("read ", path));
    }
    if (n == 0) {
      break;
    }
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxTlsStatBytes) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": too large"));
    }
  }
  return ParseTlsStat(text);
}

absl::StatusOr<TlsStat> ParseTlsStat(absl::string_view text) {
  TlsStat stat;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) {
      continue;
    }
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    int64_t value = 0;
    if (fields.size() != 2 || !absl::SimpleAtoi(fields[1], &value)) {
      return absl::InvalidArgumentError(absl::StrCat("tls_stat line ", line_no, ": malformed"));
    }
    if (!stat.emplace(std::string(fields[0]), value).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls_stat line ", line_no, ": duplicate counter ", fields[0]));
    }
  }
  return stat;
}

int64_t TlsStatValue(const TlsStat& stat, absl::string_view name) {
  auto it = stat.find(name);
  return it == stat.end() ? 0 : it->second;
}

}  // namespace tlsd
