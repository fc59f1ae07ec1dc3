#ifndef TLSD_TLSD_HANDSHAKER_CONN_LOG_H_
#define TLSD_TLSD_HANDSHAKER_CONN_LOG_H_

#include <string>

#include "absl/time/time.h"
#include "common/wire/messages.h"

namespace tlsd {

// The one log line per connection outcome (ARCHITECTURE: service, peer, SNI,
// version, cipher, mode, duration). Under systemd it goes to the journal with
// structured fields (TLSD_CONN_ID=, TLSD_SERVICE=, ...) so operators can
// filter with journalctl; otherwise to stderr as key=value pairs.
struct ConnOutcome {
  const ConnectionInfo* info = nullptr;  // what is known so far
  std::string outcome;                   // "handed-off", "relay", "handshake-failed", ...
  std::string detail;                    // why, for failures
  absl::Duration duration;
  bool failure = false;
};

void LogConnOutcome(const ConnOutcome& o);

// TlsVersionName: 0x0303 -> "TLSv1.2", 0x0304 -> "TLSv1.3".
const char* TlsVersionName(uint16_t version);

}  // namespace tlsd

#endif  // TLSD_TLSD_HANDSHAKER_CONN_LOG_H_
