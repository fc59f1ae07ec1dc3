// tlsd — privilege-separated TLS termination with kernel TLS handoff.
// See docs/man/tlsd.8 for the command line and exit codes.

#include <getopt.h>
#include <stdio.h>

#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "common/base/exit_codes.h"
#include "common/base/logging.h"
#include "tlsd/config/config.h"
#include "tlsd/handshaker/runtime.h"
#include "tlsd/supervisor/daemon.h"

#ifndef TLSD_VERSION
#define TLSD_VERSION "0.0.0"
#endif

namespace {

constexpr char kDefaultConfig[] = "/etc/tlsd/tlsd.toml";

void Usage(FILE* out) {
  fprintf(out,
          "usage: tlsd [--config FILE] [--threads N] [--log-level LEVEL]\n"
          "       tlsd --check-config FILE\n"
          "\n"
          "Accepts TLS connections, completes the handshake, installs kernel TLS and\n"
          "hands the socket to a backend over a Unix socket.\n"
          "\n"
          "  -c, --config FILE        configuration (default %s)\n"
          "      --check-config FILE  validate FILE, load its certificates and keys, exit\n"
          "  -t, --threads N          handshake threads (default: config, else one per core)\n"
          "      --log-level LEVEL    error, warning, notice, info (default) or debug\n"
          "  -h, --help               this help\n"
          "  -V, --version            print the version\n"
          "\n"
          "Exit codes: 0 ok, 1 runtime failure, 64 usage, 71 socket setup failed,\n"
          "78 configuration invalid.\n",
          kDefaultConfig);
}

bool ParseLogLevel(const std::string& s, tlsd::LogLevel* out) {
  using tlsd::LogLevel;
  if (s == "error")
    *out = LogLevel::kError;
  else if (s == "warning")
    *out = LogLevel::kWarning;
  else if (s == "notice")
    *out = LogLevel::kNotice;
  else if (s == "info")
    *out = LogLevel::kInfo;
  else if (s == "debug")
    *out = LogLevel::kDebug;
  else
    return false;
  return true;
}

int CheckConfig(const std::string& path) {
  absl::StatusOr<tlsd::Config> config = tlsd::LoadConfigFile(path);
  if (!config.ok()) {
    fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    return tlsd::kExitConfig;
  }
  tlsd::Runtime rt;
  rt.config = std::move(*config);
  // --check-config reads the keys itself (the serving daemon leaves that to
  // its key holder process).
  tlsd::LocalPrivateKeys keys;
  if (absl::Status s = tlsd::BuildServices(rt, keys); !s.ok()) {
    fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return tlsd::kExitConfig;
  }
  printf("%s: ok (%zu service(s), %zu backend(s))\n", path.c_str(), rt.config.services.size(),
         rt.config.backends.size());
  return tlsd::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  enum { kCheckConfig = 1000, kLogLevel };
  static const option kOptions[] = {
      {"config", required_argument, nullptr, 'c'},
      {"check-config", required_argument, nullptr, kCheckConfig},
      {"threads", required_argument, nullptr, 't'},
      {"log-level", required_argument, nullptr, kLogLevel},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, 'V'},
      {nullptr, 0, nullptr, 0},
  };
  std::string config_path = kDefaultConfig;
  std::string check_path;
  unsigned threads = 0;
  tlsd::LogLevel level = tlsd::LogLevel::kInfo;
  bool level_given = false;  // --log-level wins over [global] log_level
  int opt;
  while ((opt = getopt_long(argc, argv, "c:t:hV", kOptions, nullptr)) != -1) {
    switch (opt) {
      case 'c':
        config_path = optarg;
        break;
      case kCheckConfig:
        check_path = optarg;
        break;
      case 't':
        if (!absl::SimpleAtoi(optarg, &threads) || threads == 0 || threads > 1024) {
          fprintf(stderr, "tlsd: --threads wants 1..1024, got '%s'\n", optarg);
          return tlsd::kExitUsage;
        }
        break;
      case kLogLevel:
        if (!ParseLogLevel(optarg, &level)) {
          fprintf(stderr, "tlsd: unknown --log-level '%s'\n", optarg);
          return tlsd::kExitUsage;
        }
        level_given = true;
        break;
      case 'h':
        Usage(stdout);
        return tlsd::kExitOk;
      case 'V':
        printf("tlsd %s\n", TLSD_VERSION);
        return tlsd::kExitOk;
      default:
        Usage(stderr);
        return tlsd::kExitUsage;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "tlsd: unexpected argument '%s'\n", argv[optind]);
    return tlsd::kExitUsage;
  }
  if (!check_path.empty()) return CheckConfig(check_path);

  tlsd::SetLogPrefix("tlsd: ");
  tlsd::SetMinLogLevel(level);
  absl::StatusOr<tlsd::Config> config = tlsd::LoadConfigFile(config_path);
  if (!config.ok()) {
    TLSD_LOG(Error) << config.status().message();
    return tlsd::kExitConfig;
  }
  if (!level_given) {
    // The config's values were checked by ParseConfig, so this cannot fail.
    (void)ParseLogLevel(config->global.log_level, &level);
    tlsd::SetMinLogLevel(level);
  }
  return tlsd::RunDaemon(std::move(*config), threads);
}
