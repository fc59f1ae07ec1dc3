#ifndef TLSD_TLSD_SANDBOX_SECCOMP_POLICY_H_
#define TLSD_TLSD_SANDBOX_SECCOMP_POLICY_H_

// tlsd's per-role seccomp profiles. Each is a text file under
// policy/seccomp/ (keyholder.policy, engine.policy), written to be read by a
// reviewer, compiled into tlsd verbatim and parsed here:
//
//   default allow | default errno ENAME
//   allow SYSCALL...
//   allow-readonly openat      (only with flags that neither write, create,
//                               truncate nor append)
//   errno ENAME SYSCALL...
//
// Every profile also fails non-native ABIs (i386 int 0x80, x32) with ENOSYS,
// sets no_new_privs and applies to all threads of the process.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tlsd::sandbox {

struct SeccompRule {
  std::string syscall;
  bool allow;  // else fail with `errno_value`
  int errno_value = 0;
  bool readonly_open = false;  // allow openat only for reading
};

struct SeccompPolicy {
  bool default_allow = false;
  int default_errno = 0;
  std::vector<SeccompRule> rules;
};

// ParsePolicy parses policy text; errors name the line ("line 12: unknown
// system call 'opne'").
absl::StatusOr<SeccompPolicy> ParsePolicy(absl::string_view text);

enum class Role { kKeyHolder, kEngine };

// PolicyText is the compiled-in policy/seccomp/<role>.policy.
absl::string_view PolicyText(Role role);

// ApplyPolicy installs `policy` on this process (all threads), for good.
absl::Status ApplyPolicy(const SeccompPolicy& policy);

// ApplyRole parses and applies the role's profile. Returns what it did, for
// the log. In a sanitizer build it applies nothing and says so (the
// sanitizers' runtime needs system calls the profiles refuse).
absl::StatusOr<std::string> ApplyRole(Role role);

}  // namespace tlsd::sandbox

#endif  // TLSD_TLSD_SANDBOX_SECCOMP_POLICY_H_
