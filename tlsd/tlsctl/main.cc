// tlsctl — operate a running tlsd over its control socket (docs/man/tlsctl.8).

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/base/exit_codes.h"
#include "common/ipc/seqpacket.h"
#include "common/wire/messages.h"
#include "tlsd/tlsctl/render.h"

#ifndef TLSD_VERSION
#define TLSD_VERSION "0.0.0"
#endif

namespace {

constexpr char kDefaultSocket[] = "/run/tlsd/control.sock";
// sysexits.h: the service is not there; the caller lacks permission.
constexpr int kExitUnavailable = 69;
constexpr int kExitNoPerm = 77;
// A reload or config check loads every certificate and key; give it time.
constexpr int kReplyTimeoutMs = 60000;

void Usage(FILE* out) {
  fprintf(out,
          "usage: tlsctl [--socket PATH] [--json] COMMAND\n"
          "\n"
          "Commands:\n"
          "  status        services, listeners, handshakes in flight, totals, failures by\n"
          "                reason, kTLS data paths, limits, backends and their queues\n"
          "  reload        reload tlsd's configuration (as SIGHUP); says why if refused\n"
          "  check-config  check the configuration file as a reload would, apply nothing\n"
          "  certs         the certificates being served; warns of any expiring within 14 days\n"
          "\n"
          "  -s, --socket PATH  tlsd's control socket (default %s)\n"
          "  -j, --json         print tlsd's answer as JSON\n"
          "  -h, --help         this help\n"
          "  -V, --version      print the version\n"
          "\n"
          "Exit codes: 0 ok, 1 the command failed, 64 usage, 69 tlsd not reachable,\n"
          "77 not allowed (root or [global] admin_group only).\n",
          kDefaultSocket);
}

bool ParseCommand(const std::string& s, tlsd::AdminCommand* out) {
  using tlsd::AdminCommand;
  for (AdminCommand c : {AdminCommand::kStatus, AdminCommand::kReload, AdminCommand::kCheckConfig,
                         AdminCommand::kCerts}) {
    if (s == tlsd::AdminCommandName(c)) {
      *out = c;
      return true;
    }
  }
  return false;
}

// Ask sends the request and collects the reply's chunks; returns the exit
// code on failure (with the reason printed), or 0 with *answer set.
int Ask(const std::string& socket, tlsd::AdminCommand command, std::string* answer) {
  absl::StatusOr<tlsd::UniqueFd> sock = tlsd::ConnectSeqpacket(socket, /*nonblock=*/false);
  if (!sock.ok()) {
    fprintf(stderr, "tlsctl: cannot reach tlsd: %s\n",
            std::string(sock.status().message()).c_str());
    return kExitUnavailable;
  }
  const tlsd::AdminRequest request{command};
  if (absl::Status s =
          tlsd::SendFrame(sock->get(), tlsd::MsgType::kAdminRequest, 1, request.Encode());
      !s.ok()) {
    fprintf(stderr, "tlsctl: %s\n", std::string(s.message()).c_str());
    return kExitUnavailable;
  }
  for (;;) {
    pollfd pfd{sock->get(), POLLIN, 0};
    if (poll(&pfd, 1, kReplyTimeoutMs) != 1) {
      fprintf(stderr, "tlsctl: no answer from tlsd within %d s\n", kReplyTimeoutMs / 1000);
      return tlsd::kExitFailure;
    }
    absl::StatusOr<tlsd::Frame> frame = tlsd::RecvFrame(sock->get());
    if (!frame.ok()) {
      fprintf(stderr, "tlsctl: reading tlsd's answer: %s\n",
              std::string(frame.status().message()).c_str());
      return tlsd::kExitFailure;
    }
    if (frame->header.type == tlsd::MsgType::kError) {
      absl::StatusOr<tlsd::ErrorMsg> err = tlsd::ErrorMsg::Decode(frame->payload);
      const std::string why = err.ok() ? err->message : "malformed ERROR";
      fprintf(stderr, "tlsctl: tlsd refused: %s\n", why.c_str());
      return err.ok() && err->code == EACCES ? kExitNoPerm : tlsd::kExitFailure;
    }
    absl::StatusOr<tlsd::AdminReplyChunk> chunk =
        frame->header.type == tlsd::MsgType::kAdminReply
            ? tlsd::AdminReplyChunk::Decode(frame->payload)
            : absl::InvalidArgumentError("unexpected message type");
    if (!chunk.ok()) {
      fprintf(stderr, "tlsctl: bad answer from tlsd: %s\n",
              std::string(chunk.status().message()).c_str());
      return tlsd::kExitFailure;
    }
    answer->append(chunk->data);
    if (answer->size() > tlsd::kMaxAdminReply) {
      fprintf(stderr, "tlsctl: tlsd's answer is larger than %zu bytes\n", tlsd::kMaxAdminReply);
      return tlsd::kExitFailure;
    }
    if (chunk->last) return 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  static const option kOptions[] = {
      {"socket", required_argument, nullptr, 's'},
      {"json", no_argument, nullptr, 'j'},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, 'V'},
      {nullptr, 0, nullptr, 0},
  };
  std::string socket = kDefaultSocket;
  bool json = false;
  int opt;
  while ((opt = getopt_long(argc, argv, "s:jhV", kOptions, nullptr)) != -1) {
    switch (opt) {
      case 's':
        socket = optarg;
        break;
      case 'j':
        json = true;
        break;
      case 'h':
        Usage(stdout);
        return tlsd::kExitOk;
      case 'V':
        printf("tlsctl %s\n", TLSD_VERSION);
        return tlsd::kExitOk;
      default:
        Usage(stderr);
        return tlsd::kExitUsage;
    }
  }
  tlsd::AdminCommand command;
  if (optind + 1 != argc || !ParseCommand(argv[optind], &command)) {
    if (optind < argc) fprintf(stderr, "tlsctl: unknown command line near '%s'\n", argv[optind]);
    Usage(stderr);
    return tlsd::kExitUsage;
  }
  std::string text;
  if (int rc = Ask(socket, command, &text); rc != 0) return rc;
  const nlohmann::ordered_json answer = nlohmann::ordered_json::parse(text, nullptr, false);
  if (answer.is_discarded() || !answer.is_object()) {
    fprintf(stderr, "tlsctl: tlsd's answer is not a JSON object\n");
    return tlsd::kExitFailure;
  }
  const bool ok = answer.value("ok", false);
  if (json) {
    printf("%s\n",
           answer.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  } else {
    fputs(tlsd::tlsctl::RenderText(answer).c_str(), ok ? stdout : stderr);
  }
  return ok ? tlsd::kExitOk : tlsd::kExitFailure;
}
