#ifndef TLSD_COMMON_BASE_PRIVILEGES_H_
#define TLSD_COMMON_BASE_PRIVILEGES_H_

// Giving up root after start-up: tlsd's global.user (it binds its sockets
// and loads its keys first, then becomes `user` for good before it reads a
// byte from the network) and tls-wrap's --user (before it runs the wrapped
// program).

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tlsd {

// DropPrivileges makes the process `user`: that user's uid and primary gid
// as real, effective and saved ids, no supplementary groups, and so no
// capabilities (the kernel clears them when root's uids go), then sets
// no_new_privs so that no exec can bring any back. It checks the result: a
// later setuid(0) must fail. Returns what it did, for the log; messages
// name the option as `setting` ("global.user", "--user").
//  - `user` empty, or the process is not root: nothing to do (says so).
//  - kInvalidArgument: no such user (or it is root).
//  - other errors: a call failed; the process must not go on.
absl::StatusOr<std::string> DropPrivileges(const std::string& user, absl::string_view setting);

}  // namespace tlsd

#endif  // TLSD_COMMON_BASE_PRIVILEGES_H_
