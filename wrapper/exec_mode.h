#ifndef TLSD_WRAPPER_EXEC_MODE_H_
#define TLSD_WRAPPER_EXEC_MODE_H_

// tls-wrap's exec mode (inetd style): subscribe to a tlsd pull backend and,
// for each connection, run a command whose stdin and stdout carry the
// connection's plaintext, with its metadata in the environment (conn_env.h).
//
// The command gets one end of a socketpair, not the TLS socket itself:
// tls-wrap reads the connection with libtlsfd, so what is not application
// data (close_notify, a KeyUpdate, an alert) is handled where it can be (the
// client's close_notify becomes end-of-file on the command's stdin, never
// EIO), and the command never holds a kTLS socket whose keys it could read
// back. The cost is one copy of the data through tls-wrap.

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace tlswrap {

struct ExecOptions {
  std::string control_socket;        // tlsd's control socket
  std::string backend;               // the [[backend]] (mode = "pull") to subscribe to
  std::vector<std::string> command;  // argv; command[0] is looked up in PATH
  int max_children = 64;             // connections served at once; more wait in tlsd's queue
};

// RunExecMode serves connections until the subscription fails (tlsd gone) or
// a fatal error; it returns only then, with the reason.
absl::Status RunExecMode(const ExecOptions& options);

}  // namespace tlswrap

#endif  // TLSD_WRAPPER_EXEC_MODE_H_
