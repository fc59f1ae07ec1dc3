// tls-wrap — put tlsd's TLS in front of a program that speaks plain TCP.
// Exec mode only, for now (see Usage and README.md).

#include <getopt.h>
#include <signal.h>

#include <cstdio>
#include <string>

#include "absl/strings/numbers.h"
#include "common/base/exit_codes.h"
#include "wrapper/exec_mode.h"

namespace {

void Usage(FILE* out) {
  fputs(
      "usage: tls-wrap exec --backend NAME [--control PATH] [--max-children N] -- COMMAND "
      "[ARG...]\n"
      "\n"
      "exec mode (inetd style): subscribe to tlsd's pull backend NAME and, for each\n"
      "TLS connection tlsd hands over, run COMMAND with the connection's plaintext\n"
      "on its stdin and stdout. tls-wrap holds the TLS socket and copies through a\n"
      "socketpair, so the client's close_notify is end-of-file on COMMAND's stdin and\n"
      "COMMAND's end of output is close_notify to the client. COMMAND never holds the\n"
      "TLS socket or any key. Its environment has the connection's metadata:\n"
      "  TLS_SERVICE TLS_CONNECTION_ID TLS_SNI TLS_ALPN TLS_VERSION TLS_CIPHER\n"
      "  TLS_RESUMED TLS_KTLS_TX TLS_KTLS_RX TLS_PEER_CERT_SHA256 TLS_PEER_CERT_SUBJECT\n"
      "  REMOTE_ADDR REMOTE_PORT LOCAL_ADDR LOCAL_PORT\n"
      "(a variable without a value, e.g. TLS_ALPN when none was negotiated, is unset).\n"
      "\n"
      "  --backend NAME      the [[backend]] (mode = \"pull\") whose connections to take;\n"
      "                      its allow_uids/allow_gids must admit tls-wrap's user\n"
      "  --control PATH      tlsd's control socket (default /run/tlsd/control.sock)\n"
      "  --max-children N    commands running at once (default 64); further\n"
      "                      connections wait in tlsd's backend queue\n"
      "  -h, --help          this text\n"
      "  -V, --version       tls-wrap's version\n"
      "\n"
      "preload mode (an LD_PRELOAD shim for long-running daemons) is not there yet.\n"
      "\n"
      "Exit status: 64 usage error, 69 tlsd unreachable or the subscription ended.\n",
      out);
}

}  // namespace

int main(int argc, char** argv) {
  // The command's end of a socketpair may close under a write: EPIPE, not death.
  signal(SIGPIPE, SIG_IGN);
  enum { kBackend = 1000, kControl, kMaxChildren };
  static const option kOptions[] = {
      {"backend", required_argument, nullptr, kBackend},
      {"control", required_argument, nullptr, kControl},
      {"max-children", required_argument, nullptr, kMaxChildren},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, 'V'},
      {nullptr, 0, nullptr, 0},
  };
  if (argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
    Usage(stdout);
    return tlsd::kExitOk;
  }
  if (argc >= 2 && (std::string(argv[1]) == "--version" || std::string(argv[1]) == "-V")) {
    printf("tls-wrap %s\n", TLSD_VERSION);
    return tlsd::kExitOk;
  }
  if (argc < 2 || std::string(argv[1]) != "exec") {
    fprintf(
        stderr, "tls-wrap: %s\n",
        argc < 2
            ? "a mode is required: exec (see --help)"
            : (std::string("unknown mode '") + argv[1] + "' (exec is the one there is)").c_str());
    return tlsd::kExitUsage;
  }
  tlswrap::ExecOptions options;
  options.control_socket = "/run/tlsd/control.sock";
  optind = 2;
  int opt;
  while ((opt = getopt_long(argc, argv, "+hV", kOptions, nullptr)) != -1) {
    switch (opt) {
      case kBackend:
        options.backend = optarg;
        break;
      case kControl:
        options.control_socket = optarg;
        break;
      case kMaxChildren:
        if (!absl::SimpleAtoi(optarg, &options.max_children) || options.max_children < 1 ||
            options.max_children > 65536) {
          fprintf(stderr, "tls-wrap: --max-children wants 1..65536, got '%s'\n", optarg);
          return tlsd::kExitUsage;
        }
        break;
      case 'h':
        Usage(stdout);
        return tlsd::kExitOk;
      case 'V':
        printf("tls-wrap %s\n", TLSD_VERSION);
        return tlsd::kExitOk;
      default:
        Usage(stderr);
        return tlsd::kExitUsage;
    }
  }
  for (int i = optind; i < argc; ++i) options.command.emplace_back(argv[i]);
  if (options.backend.empty() || options.command.empty()) {
    fprintf(stderr, "tls-wrap: exec needs --backend NAME and a command after --\n");
    return tlsd::kExitUsage;
  }
  absl::Status s = tlswrap::RunExecMode(options);
  fprintf(stderr, "tls-wrap: %s\n", std::string(s.message()).c_str());
  return tlsd::kExitUnavailable;
}
