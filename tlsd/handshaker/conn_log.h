#ifndef TLSD_TLSD_HANDSHAKER_CONN_LOG_H_
#define TLSD_TLSD_HANDSHAKER_CONN_LOG_H_

#include <string>

#include "absl/time/time.h"
#include "common/wire/messages.h"
#include "tlsd/handshaker/metrics.h"

namespace tlsd {

// The one log line per connection outcome (ARCHITECTURE: service, peer, SNI,
// version, cipher, mode, duration). Under systemd it goes to the journal with
// structured fields (TLSD_CONN_ID=, TLSD_SERVICE=, ...) so operators can
// filter with journalctl; otherwise to stderr as key=value pairs.
struct ConnOutcome {
  const ConnectionInfo* info = nullptr;  // what is known so far
  Outcome outcome = Outcome::kClosed;
  std::string detail;  // why, for failures
  absl::Duration duration;
  bool failure = false;
};

// ReportConnOutcome counts the outcome in `metrics` (the service's or the
// client profile's) and writes the log line: the log and the counters
// cannot disagree.
void ReportConnOutcome(EndpointMetrics& metrics, const ConnOutcome& o);

// TlsVersionName: 0x0303 -> "TLSv1.2", 0x0304 -> "TLSv1.3".
const char* TlsVersionName(uint16_t version);

}  // namespace tlsd

#endif  // TLSD_TLSD_HANDSHAKER_CONN_LOG_H_
