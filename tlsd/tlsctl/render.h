#ifndef TLSD_TLSD_TLSCTL_RENDER_H_
#define TLSD_TLSD_TLSCTL_RENDER_H_

#include <nlohmann/json.hpp>
#include <string>

namespace tlsd::tlsctl {

// RenderText turns tlsd's JSON answer to an admin command into the text
// tlsctl prints without --json. Fields it does not know are ignored and
// missing ones print as "?", so tlsctl and tlsd may differ by a version.
std::string RenderText(const nlohmann::ordered_json& answer);

}  // namespace tlsd::tlsctl

#endif  // TLSD_TLSD_TLSCTL_RENDER_H_
