#include "wrapper/preload_mode.h"

#include <errno.h>
#include <limits.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

extern char** environ;

namespace tlswrap {
namespace {

constexpr char kShimName[] = "libtls-wrap-preload.so";

std::string SetVar(const std::string& name, const std::string& value) {
  return absl::StrCat(name, "=", value);
}

}  // namespace

absl::StatusOr<std::string> FindShim() {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string dir(self, static_cast<size_t>(n));
    dir.resize(dir.rfind('/') + 1);
    std::string beside = dir + kShimName;
    if (access(beside.c_str(), R_OK) == 0) return beside;
  }
  std::string installed = absl::StrCat(TLS_WRAP_PRELOAD_DIR, "/", kShimName);
  if (access(installed.c_str(), R_OK) == 0) return installed;
  return absl::NotFoundError(absl::StrCat("the preload shim ", kShimName,
                                          " is neither next to tls-wrap nor at ", installed,
                                          " (--shim PATH)"));
}

std::vector<std::string> PreloadEnv(const std::vector<std::string>& base,
                                    const PreloadOptions& options, const std::string& shim) {
  std::vector<std::string> env;
  std::string preload = shim;
  for (const std::string& e : base) {
    if (absl::StartsWith(e, "LD_PRELOAD=")) {
      // Ours first, so that our accept()/read() are the ones the daemon gets.
      std::string rest = e.substr(strlen("LD_PRELOAD="));
      if (!rest.empty()) absl::StrAppend(&preload, ":", rest);
      continue;
    }
    if (absl::StartsWith(e, "TLS_WRAP_")) continue;
    env.push_back(e);
  }
  env.push_back(SetVar("LD_PRELOAD", preload));
  env.push_back(SetVar("TLS_WRAP_BACKEND", options.backend));
  env.push_back(SetVar("TLS_WRAP_PORT", std::to_string(options.port)));
  env.push_back(SetVar("TLS_WRAP_CONTROL", options.control_socket));
  return env;
}

absl::Status RunPreloadMode(const PreloadOptions& options) {
  std::string shim = options.shim;
  if (shim.empty()) {
    absl::StatusOr<std::string> found = FindShim();
    if (!found.ok()) return found.status();
    shim = *found;
  }
  if (shim.front() != '/') {
    return absl::InvalidArgumentError(absl::StrCat("--shim ", shim, ": must be an absolute path"));
  }
  if (access(shim.c_str(), R_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(shim, ": ", strerror(errno)));
  }
  std::vector<std::string> base;
  for (char** e = environ; *e != nullptr; ++e) base.emplace_back(*e);
  std::vector<std::string> env = PreloadEnv(base, options, shim);
  std::vector<std::string> argv = options.command;
  std::vector<char*> envp, argvp;
  for (std::string& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  for (std::string& s : argv) argvp.push_back(s.data());
  argvp.push_back(nullptr);
  execvpe(argvp[0], argvp.data(), envp.data());
  return absl::NotFoundError(absl::StrCat(argv[0], ": ", strerror(errno)));
}

}  // namespace tlswrap
