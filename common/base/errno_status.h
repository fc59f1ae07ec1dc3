#ifndef TLSD_COMMON_BASE_ERRNO_STATUS_H_
#define TLSD_COMMON_BASE_ERRNO_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tlsd {

// ErrnoToStatus maps an errno value to the closest absl::StatusCode, with a
// message "what: strerror". Used for every failed syscall.
absl::Status ErrnoToStatus(int errno_value, absl::string_view what);

// StatusToErrno is the inverse used at the C API boundary (libtlsfd returns
// -errno). The original errno is kept in the status payload when there is one.
int StatusToErrno(const absl::Status& status);

// HasErrno reports whether `status` was made by ErrnoToStatus (carries the
// original errno), as opposed to mapping a generic code.
bool HasErrno(const absl::Status& status);

}  // namespace tlsd

#endif  // TLSD_COMMON_BASE_ERRNO_STATUS_H_
