#include "tlsd/tls/ossl_error.h"

#include <openssl/err.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace tlsd {
namespace {

// Enough to show the chain that led to a failure (OpenSSL pushes one entry
// per layer); the rest are counted, not printed, to keep log lines bounded.
constexpr int kMaxReportedErrors = 6;

}  // namespace

absl::Status OsslError(absl::StatusCode code, absl::string_view what) {
  std::string detail;
  int num_errors = 0;
  const char* data = nullptr;
  int flags = 0;
  for (;;) {
    unsigned long e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags);
    if (e == 0) {
      break;
    }
    ++num_errors;
    if (num_errors > kMaxReportedErrors) {
      continue;
    }
    const char* lib = ERR_lib_error_string(e);
    const char* reason = ERR_reason_error_string(e);
    absl::StrAppend(&detail, num_errors > 1 ? "; " : "", lib != nullptr ? lib : "unknown library",
                    ": ");
    if (reason != nullptr) {
      absl::StrAppend(&detail, reason);
    } else {
      absl::StrAppend(&detail, "reason ", ERR_GET_REASON(e));
    }
    if (data != nullptr && (flags & ERR_TXT_STRING) != 0 && data[0] != '\0') {
      absl::StrAppend(&detail, " (", data, ")");
    }
  }
  if (num_errors > kMaxReportedErrors) {
    absl::StrAppend(&detail, "; and ", num_errors - kMaxReportedErrors, " more");
  }
  if (num_errors == 0) {
    detail = "no OpenSSL error recorded";
  }
  return absl::Status(code, absl::StrCat(what, ": ", detail));
}

void ClearOsslErrors() { ERR_clear_error(); }

}  // namespace tlsd
