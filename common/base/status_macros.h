#ifndef TLSD_COMMON_BASE_STATUS_MACROS_H_
#define TLSD_COMMON_BASE_STATUS_MACROS_H_

// API-compatible with the ABSL_ versions that Debian 12's abseil lacks, so a
// later abseil can replace these with a sed.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TLSD_STATUS_CONCAT_INNER_(x, y) x##y
#define TLSD_STATUS_CONCAT_(x, y) TLSD_STATUS_CONCAT_INNER_(x, y)

// TLSD_RETURN_IF_ERROR(expr) returns expr's status from the enclosing
// function when it is not OK.
#define TLSD_RETURN_IF_ERROR(expr)               \
  do {                                           \
    ::absl::Status tlsd_status_ = (expr);        \
    if (!tlsd_status_.ok()) return tlsd_status_; \
  } while (0)

// TLSD_ASSIGN_OR_RETURN(lhs, expr) evaluates a StatusOr<T> expression; on
// error returns its status, otherwise moves the value into lhs (which may be a
// declaration, e.g. `auto x`).
#define TLSD_ASSIGN_OR_RETURN(lhs, expr) \
  TLSD_ASSIGN_OR_RETURN_IMPL_(TLSD_STATUS_CONCAT_(tlsd_statusor_, __LINE__), lhs, expr)
#define TLSD_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr)   \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // TLSD_COMMON_BASE_STATUS_MACROS_H_
