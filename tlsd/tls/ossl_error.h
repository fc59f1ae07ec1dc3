#ifndef TLSD_TLSD_TLS_OSSL_ERROR_H_
#define TLSD_TLSD_TLS_OSSL_ERROR_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tlsd {

// OsslError drains the calling thread's OpenSSL error queue into one Status
// with the given code and a message "what: lib: reason (data); ...". The
// queue is always left empty, so a stale error cannot be blamed on a later
// call. With an empty queue the message says so rather than inventing a
// cause.
absl::Status OsslError(absl::StatusCode code, absl::string_view what);

// ClearOsslErrors empties the calling thread's OpenSSL error queue. Call it
// before an operation whose failure is judged by the queue (SSL_get_error).
void ClearOsslErrors();

}  // namespace tlsd

#endif  // TLSD_TLSD_TLS_OSSL_ERROR_H_
