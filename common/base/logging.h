#ifndef TLSD_COMMON_BASE_LOGGING_H_
#define TLSD_COMMON_BASE_LOGGING_H_

// TLSD_LOG(level) << ...; writes one line to stderr with an sd-daemon(3)
// "<N>" priority prefix, which journald turns into the entry's priority when
// tlsd runs under systemd (StandardError=journal). Only daemons log: code in
// common/ and libtlsfd/ returns errors instead.
//
// TLSD_CHECK(cond) aborts with the condition text: for broken internal
// invariants only, never for peer input (STYLE.md 2.4).

#include <sstream>
#include <string>

#include "absl/strings/string_view.h"

namespace tlsd {

enum class LogLevel { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };

// SetLogPrefix sets the text after the priority (e.g. "tlsd[handshake] ").
void SetLogPrefix(absl::string_view prefix);
// SetMinLogLevel drops messages less severe than `level`.
void SetMinLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
// WriteLogLine writes one complete line atomically (one write(2)).
void WriteLogLine(LogLevel level, absl::string_view line);

class LogMessage {
 public:
  explicit LogMessage(LogLevel level) : level_(level) {}
  ~LogMessage() { WriteLogLine(level_, stream_.str()); }
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

[[noreturn]] void CheckFailed(const char* file, int line, const char* cond);

}  // namespace tlsd

#define TLSD_LOG(level)                                  \
  if (!::tlsd::LogEnabled(::tlsd::LogLevel::k##level)) { \
  } else                                                 \
    ::tlsd::LogMessage(::tlsd::LogLevel::k##level).stream()

#define TLSD_CHECK(cond)                                         \
  do {                                                           \
    if (!(cond)) ::tlsd::CheckFailed(__FILE__, __LINE__, #cond); \
  } while (0)

#endif  // TLSD_COMMON_BASE_LOGGING_H_
