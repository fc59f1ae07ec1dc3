#include "tlsd/handshaker/conn_log.h"

#include <stdlib.h>
#include <systemd/sd-journal.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/logging.h"

namespace tlsd {
namespace {

bool UnderJournal() {
  // systemd sets JOURNAL_STREAM when stderr is connected to the journal.
  static const bool under = getenv("JOURNAL_STREAM") != nullptr;
  return under;
}

}  // namespace

const char* TlsVersionName(uint16_t version) {
  switch (version) {
    case 0x0303:
      return "TLSv1.2";
    case 0x0304:
      return "TLSv1.3";
    default:
      return "-";
  }
}

void ReportConnOutcome(EndpointMetrics& metrics, const ConnOutcome& o) {
  metrics.Record(o.outcome);
  const ConnectionInfo& i = *o.info;
  const std::string path =
      i.tls_version == 0 ? "-"
                         : absl::StrCat(DataPathName(i.tx_path), "/", DataPathName(i.rx_path));
  const std::string line = absl::StrFormat(
      "conn=%d service=%s peer=%s sni=%s alpn=%s version=%s cipher=%s path=%s backend=%s "
      "outcome=%s%s%s duration_ms=%.3f",
      i.connection_id, i.service, i.peer.ToString(), i.sni.empty() ? "-" : i.sni,
      i.alpn.empty() ? "-" : i.alpn, TlsVersionName(i.tls_version),
      i.cipher_name.empty() ? "-" : i.cipher_name, path, i.backend.empty() ? "-" : i.backend,
      OutcomeName(o.outcome), o.detail.empty() ? "" : " reason=", o.detail,
      absl::ToDoubleMilliseconds(o.duration));
  const LogLevel level = o.failure ? LogLevel::kWarning : LogLevel::kInfo;
  if (!LogEnabled(level)) return;
  if (UnderJournal()) {
    sd_journal_send("MESSAGE=%s", line.c_str(), "PRIORITY=%d", static_cast<int>(level),
                    "TLSD_CONN_ID=%llu", static_cast<unsigned long long>(i.connection_id),
                    "TLSD_SERVICE=%s", i.service.c_str(), "TLSD_PEER=%s", i.peer.ToString().c_str(),
                    "TLSD_SNI=%s", i.sni.c_str(), "TLSD_OUTCOME=%s", OutcomeName(o.outcome),
                    "TLSD_PATH=%s", path.c_str(), nullptr);
    return;
  }
  WriteLogLine(level, line);
}

}  // namespace tlsd
