// tls-wrap — put tlsd's TLS in front of a program that speaks plain TCP,
// without changing it. Two modes (Usage, docs/tls-wrap.md):
//   exec     per connection, run a command on a socketpair (inetd style)
//   preload  run a daemon with an LD_PRELOAD shim that hands its listening
//            port's accept() the connections tlsd terminated

#include <getopt.h>
#include <signal.h>

#include <cstdio>
#include <string>

#include "absl/strings/numbers.h"
#include "common/base/exit_codes.h"
#include "common/base/privileges.h"
#include "libtlsfd/include/tlsfd.h"
#include "wrapper/exec_mode.h"
#include "wrapper/preload_mode.h"

namespace {

void Usage(FILE* out) {
  fputs(
      "usage: tls-wrap exec    --backend NAME [--control PATH] [--user USER]\n"
      "                        [--max-children N] -- COMMAND [ARG...]\n"
      "       tls-wrap preload --backend NAME --port PORT [--control PATH] [--user USER]\n"
      "                        [--shim PATH] -- DAEMON [ARG...]\n"
      "\n"
      "Both modes take the connections of tlsd's pull backend NAME (a [[backend]] with\n"
      "mode = \"pull\" whose allow_uids/allow_gids admit the user tls-wrap runs as).\n"
      "tlsd holds the keys and does the handshakes; the wrapped program never holds a\n"
      "key, and cannot read a kTLS socket's traffic keys back.\n"
      "\n"
      "exec mode (inetd style): for each connection run COMMAND with the connection's\n"
      "plaintext on its stdin and stdout. tls-wrap holds the TLS socket and copies\n"
      "through a socketpair, so the client's close_notify is end-of-file on COMMAND's\n"
      "stdin and COMMAND's end of output is close_notify to the client. Its environment\n"
      "has the connection's metadata:\n"
      "  TLS_SERVICE TLS_CONNECTION_ID TLS_SNI TLS_ALPN TLS_VERSION TLS_CIPHER\n"
      "  TLS_RESUMED TLS_KTLS_TX TLS_KTLS_RX TLS_PEER_CERT_SHA256 TLS_PEER_CERT_SUBJECT\n"
      "  REMOTE_ADDR REMOTE_PORT LOCAL_ADDR LOCAL_PORT\n"
      "(a variable without a value, e.g. TLS_ALPN when none was negotiated, is unset).\n"
      "\n"
      "preload mode: exec DAEMON (a long-running server) with libtls-wrap-preload.so in\n"
      "LD_PRELOAD. The TCP socket DAEMON binds to PORT is never opened on the network:\n"
      "its listen() subscribes to tlsd, and its accept() returns the secured sockets\n"
      "tlsd hands over (kTLS, or a relay socket where the kernel has no kTLS), with\n"
      "the client's address. Blocking accept() and poll/select/epoll loops work as\n"
      "before. Reads go through libtlsfd, so close_notify is end-of-file (not EIO)\n"
      "and TLS 1.3 KeyUpdates are answered by tlsd; writes and sendfile() go to the\n"
      "kernel directly. DAEMON gets a seccomp filter that refuses\n"
      "getsockopt(SOL_TLS). It must be dynamically linked against glibc.\n"
      "\n"
      "  --backend NAME      the pull backend whose connections to take\n"
      "  --control PATH      tlsd's control socket (default /run/tlsd/control.sock)\n"
      "  --user USER         started as root: become USER (no groups, no\n"
      "                      capabilities, no_new_privs) before anything else\n"
      "  --max-children N    exec: commands running at once (default 64); further\n"
      "                      connections wait in tlsd's backend queue\n"
      "  --port PORT         preload: the TCP port DAEMON listens on (1..65535)\n"
      "  --shim PATH         preload: the shim (default: next to tls-wrap, else the\n"
      "                      installed one)\n"
      "  -h, --help          this text\n"
      "  -V, --version       tls-wrap's version\n"
      "\n"
      "systemd units for both modes: tls-wrap-exec@.service and tls-wrap@.service\n"
      "(docs/tls-wrap.md).\n"
      "\n"
      "Exit status: 64 usage error, 69 tlsd unreachable or the subscription ended,\n"
      "71 the daemon could not be started; in preload mode, otherwise DAEMON's own.\n",
      out);
}

bool IsHelp(const std::string& a) { return a == "--help" || a == "-h"; }
bool IsVersion(const std::string& a) { return a == "--version" || a == "-V"; }

}  // namespace

int main(int argc, char** argv) {
  // The command's end of a socketpair may close under a write: EPIPE, not death.
  signal(SIGPIPE, SIG_IGN);
  enum { kBackend = 1000, kControl, kMaxChildren, kPort, kShim, kUser };
  static const option kOptions[] = {
      {"backend", required_argument, nullptr, kBackend},
      {"control", required_argument, nullptr, kControl},
      {"max-children", required_argument, nullptr, kMaxChildren},
      {"port", required_argument, nullptr, kPort},
      {"shim", required_argument, nullptr, kShim},
      {"user", required_argument, nullptr, kUser},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, 'V'},
      {nullptr, 0, nullptr, 0},
  };
  if (argc >= 2 && IsHelp(argv[1])) {
    Usage(stdout);
    return tlsd::kExitOk;
  }
  if (argc >= 2 && IsVersion(argv[1])) {
    printf("tls-wrap %s\n", TLSD_VERSION);
    return tlsd::kExitOk;
  }
  const std::string mode = argc >= 2 ? argv[1] : "";
  if (mode != "exec" && mode != "preload") {
    fprintf(stderr, "tls-wrap: %s\n",
            mode.empty() ? "a mode is required: exec or preload (see --help)"
                         : ("unknown mode '" + mode + "' (exec or preload)").c_str());
    return tlsd::kExitUsage;
  }
  const bool exec = mode == "exec";
  tlswrap::ExecOptions ex;
  tlswrap::PreloadOptions pre;
  std::string control = "/run/tlsd/control.sock", backend, user;
  optind = 2;
  int opt;
  while ((opt = getopt_long(argc, argv, "+hV", kOptions, nullptr)) != -1) {
    switch (opt) {
      case kBackend:
        backend = optarg;
        break;
      case kControl:
        control = optarg;
        break;
      case kUser:
        user = optarg;
        break;
      case kMaxChildren:
        if (!exec) {
          fprintf(stderr, "tls-wrap: --max-children is for exec mode\n");
          return tlsd::kExitUsage;
        }
        if (!absl::SimpleAtoi(optarg, &ex.max_children) || ex.max_children < 1 ||
            ex.max_children > 65536) {
          fprintf(stderr, "tls-wrap: --max-children wants 1..65536, got '%s'\n", optarg);
          return tlsd::kExitUsage;
        }
        break;
      case kPort:
      case kShim:
        if (exec) {
          fprintf(stderr, "tls-wrap: --%s is for preload mode\n", opt == kPort ? "port" : "shim");
          return tlsd::kExitUsage;
        }
        if (opt == kShim) {
          pre.shim = optarg;
        } else if (!absl::SimpleAtoi(optarg, &pre.port) || pre.port < 1 || pre.port > 65535) {
          fprintf(stderr, "tls-wrap: --port wants 1..65535, got '%s'\n", optarg);
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
  std::vector<std::string> command(argv + optind, argv + argc);
  if (backend.empty() || command.empty() || (!exec && pre.port == 0)) {
    fprintf(stderr, "tls-wrap: %s needs --backend NAME%s and a command after --\n", mode.c_str(),
            exec ? "" : ", --port PORT");
    return tlsd::kExitUsage;
  }
  if (!user.empty()) {
    absl::StatusOr<std::string> dropped = tlsd::DropPrivileges(user, "--user");
    if (!dropped.ok()) {
      fprintf(stderr, "tls-wrap: %s\n", std::string(dropped.status().message()).c_str());
      return dropped.status().code() == absl::StatusCode::kInvalidArgument ? tlsd::kExitUsage
                                                                           : tlsd::kExitOsErr;
    }
    fprintf(stderr, "tls-wrap: %s\n", dropped->c_str());
  }
  if (exec) {
    // tls-wrap holds the kTLS sockets in exec mode: it and its commands get
    // the worker profile (policy/worker-seccomp.md), as preload daemons do.
    if (int rc = tlsfd_restrict_key_access(); rc < 0) {
      fprintf(stderr, "tls-wrap: cannot install the key-access filter: %s\n", tlsfd_strerror(rc));
      return tlsd::kExitOsErr;
    }
    ex.control_socket = control;
    ex.backend = backend;
    ex.command = std::move(command);
    absl::Status s = tlswrap::RunExecMode(ex);
    fprintf(stderr, "tls-wrap: %s\n", std::string(s.message()).c_str());
    return tlsd::kExitUnavailable;
  }
  pre.control_socket = control;
  pre.backend = backend;
  pre.command = std::move(command);
  absl::Status s = tlswrap::RunPreloadMode(pre);
  fprintf(stderr, "tls-wrap: %s\n", std::string(s.message()).c_str());
  return tlsd::kExitOsErr;
}
