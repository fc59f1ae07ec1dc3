#ifndef TLSD_TLSD_SUPERVISOR_METRICS_TEXT_H_
#define TLSD_TLSD_SUPERVISOR_METRICS_TEXT_H_

#include <string>

#include "tlsd/handshaker/runtime.h"

namespace tlsd {

// RenderPrometheus writes every counter in the Prometheus text exposition
// format (version 0.0.4); docs/metrics.md lists them.
std::string RenderPrometheus(const Runtime& rt);

}  // namespace tlsd

#endif  // TLSD_TLSD_SUPERVISOR_METRICS_TEXT_H_
