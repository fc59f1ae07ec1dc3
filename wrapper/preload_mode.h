#ifndef TLSD_WRAPPER_PRELOAD_MODE_H_
#define TLSD_WRAPPER_PRELOAD_MODE_H_

// tls-wrap's preload mode: run a long-lived daemon with
// libtls-wrap-preload.so (wrapper/preload/shim.cc) so that its listening
// socket on one port takes its connections from a tlsd pull backend.
// tls-wrap only prepares the environment and exec()s the daemon: nothing of
// tls-wrap stays in between.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tlswrap {

struct PreloadOptions {
  std::string control_socket;        // tlsd's control socket
  std::string backend;               // the [[backend]] (mode = "pull") to subscribe to
  int port = 0;                      // the daemon's listening port to take over
  std::string shim;                  // path of the shim; empty: FindShim()
  std::vector<std::string> command;  // argv; command[0] is looked up in PATH
};

// FindShim returns the shim's path: next to the running tls-wrap (a build
// tree, or the VM lane's /opt/tlsd/bin), else the installed copy.
absl::StatusOr<std::string> FindShim();

// PreloadEnv returns `base` (NAME=VALUE entries) with the shim prepended to
// LD_PRELOAD and TLS_WRAP_BACKEND, TLS_WRAP_PORT, TLS_WRAP_CONTROL set.
std::vector<std::string> PreloadEnv(const std::vector<std::string>& base,
                                    const PreloadOptions& options, const std::string& shim);

// RunPreloadMode exec()s the command with PreloadEnv(); it returns only on
// failure.
absl::Status RunPreloadMode(const PreloadOptions& options);

}  // namespace tlswrap

#endif  // TLSD_WRAPPER_PRELOAD_MODE_H_
