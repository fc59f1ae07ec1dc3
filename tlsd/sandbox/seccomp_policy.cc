#include "tlsd/sandbox/seccomp_policy.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <string.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tlsd/sandbox/policy_text.h"

namespace tlsd::sandbox {
namespace {

// The errno names a policy may use.
int ErrnoByName(absl::string_view name) {
  if (name == "EPERM") return EPERM;
  if (name == "EACCES") return EACCES;
  if (name == "ENOSYS") return ENOSYS;
  return 0;
}

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};

}  // namespace

absl::StatusOr<SeccompPolicy> ParsePolicy(absl::string_view text) {
  SeccompPolicy policy;
  bool have_default = false;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    if (words.empty()) continue;
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": ", what));
    };
    if (words[0] == "default") {
      if (have_default) return error("a second 'default'");
      have_default = true;
      if (words.size() == 2 && words[1] == "allow") {
        policy.default_allow = true;
      } else if (words.size() == 3 && words[1] == "errno" && ErrnoByName(words[2]) != 0) {
        policy.default_errno = ErrnoByName(words[2]);
      } else {
        return error("want 'default allow' or 'default errno ENAME'");
      }
      continue;
    }
    size_t first = 1;
    SeccompRule rule;
    if (words[0] == "allow") {
      rule.allow = true;
    } else if (words[0] == "allow-readonly") {
      if (words.size() != 2 || words[1] != "openat") return error("allow-readonly is for openat");
      rule.allow = true;
      rule.readonly_open = true;
    } else if (words[0] == "errno" && words.size() >= 2 && ErrnoByName(words[1]) != 0) {
      rule.allow = false;
      rule.errno_value = ErrnoByName(words[1]);
      first = 2;
    } else {
      return error(absl::StrCat("unknown rule '", words[0], "'"));
    }
    if (words.size() <= first) return error("a rule without system calls");
    for (size_t i = first; i < words.size(); ++i) {
      rule.syscall = std::string(words[i]);
      if (seccomp_syscall_resolve_name(rule.syscall.c_str()) == __NR_SCMP_ERROR) {
        return error(absl::StrCat("unknown system call '", rule.syscall, "'"));
      }
      policy.rules.push_back(rule);
    }
  }
  if (!have_default) return absl::InvalidArgumentError("no 'default' line");
  for (const SeccompRule& r : policy.rules) {
    if (r.allow == policy.default_allow) {
      return absl::InvalidArgumentError(
          absl::StrCat("rule for '", r.syscall, "' does what the default does"));
    }
  }
  return policy;
}

absl::string_view PolicyText(Role role) {
  return role == Role::kKeyHolder ? generated::kKeyHolderPolicy : generated::kEnginePolicy;
}

absl::Status ApplyPolicy(const SeccompPolicy& policy) {
  std::unique_ptr<void, CtxDeleter> ctx(
      seccomp_init(policy.default_allow ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO(policy.default_errno)));
  if (!ctx) return absl::ResourceExhaustedError("seccomp_init");
  int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS));
  if (rc == 0) rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 1);
  if (rc == 0) rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1);
  for (const SeccompRule& r : policy.rules) {
    if (rc != 0) break;
    const int nr = seccomp_syscall_resolve_name(r.syscall.c_str());
    if (r.readonly_open) {
      // openat(dirfd, path, flags, mode): flags (arg 2) ask for no writing.
      constexpr scmp_datum_t kWriting = O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND;
      rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ALLOW, nr, 1,
                            SCMP_A2(SCMP_CMP_MASKED_EQ, kWriting, O_RDONLY));
    } else {
      rc = seccomp_rule_add(ctx.get(), r.allow ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO(r.errno_value), nr,
                            0);
    }
    // A call this architecture does not have (e.g. a 32-bit-only one) is
    // simply absent.
    if (rc == -EFAULT || rc == -EDOM) rc = 0;
  }
  if (rc == 0) rc = seccomp_load(ctx.get());
  if (rc != 0) return absl::InternalError(absl::StrCat("seccomp: ", strerror(-rc)));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ApplyRole(Role role) {
  const char* name = role == Role::kKeyHolder ? "key holder" : "engine";
#ifdef TLSD_SANITIZER_BUILD
  return absl::StrCat("seccomp: ", name, " profile not applied in a sanitizer build");
#else
  absl::StatusOr<SeccompPolicy> policy = ParsePolicy(PolicyText(role));
  if (!policy.ok()) {
    return absl::InternalError(absl::StrCat(name, " seccomp profile: ", policy.status().message()));
  }
  if (absl::Status s = ApplyPolicy(*policy); !s.ok()) return s;
  return absl::StrCat("seccomp: ", name, " profile applied (", policy->rules.size(),
                      " rules, default ", policy->default_allow ? "allow" : "deny", ")");
#endif
}

}  // namespace tlsd::sandbox
