// The per-role seccomp profiles (policy/seccomp/*.policy): they parse, and
// applied in a child process they refuse what they say they refuse while
// the role's own work still succeeds.

#include <errno.h>
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_certs.h"
#include "tlsd/keyholder/holder.h"
#include "tlsd/sandbox/seccomp_policy.h"

namespace tlsd::sandbox {
namespace {

using ::testing::HasSubstr;
using ::tlsd::testing::IsOk;
using ::tlsd::testing::StatusIs;

#ifdef TLSD_SANITIZER_BUILD
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// One probe run in the sandboxed child: a name and what it must return.
struct Probe {
  std::string name;
  std::function<int()> run;  // errno after the call, or 0 if it succeeded
  int want;
};

int ErrnoOf(long rc) { return rc < 0 ? errno : 0; }

// RunSandboxed forks, applies `role` in the child, runs the probes there and
// returns one line per probe whose result differs ("" if all match).
std::string RunSandboxed(Role role, const std::vector<Probe>& probes) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    std::string out;
    absl::StatusOr<std::string> applied = ApplyRole(role);
    if (!applied.ok()) {
      out = "apply: " + std::string(applied.status().message()) + "\n";
    } else {
      for (const Probe& p : probes) {
        const int got = p.run();
        if (got != p.want) {
          out += p.name + ": got " + strerror(got) + " (" + std::to_string(got) + "), want " +
                 strerror(p.want) + "\n";
        }
      }
    }
    (void)!write(pipefd[1], out.data(), out.size());
    _exit(0);
  }
  close(pipefd[1]);
  std::string result;
  char buf[512];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) result.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int ws = 0;
  waitpid(pid, &ws, 0);
  if (!WIFEXITED(ws)) result += "the child died (signal " + std::to_string(WTERMSIG(ws)) + ")\n";
  return result;
}

TEST(SeccompPolicyTest, ShippedProfilesParse) {
  TLSD_ASSERT_OK_AND_ASSIGN(SeccompPolicy holder, ParsePolicy(PolicyText(Role::kKeyHolder)));
  EXPECT_FALSE(holder.default_allow);
  EXPECT_EQ(holder.default_errno, EPERM);
  TLSD_ASSERT_OK_AND_ASSIGN(SeccompPolicy engine, ParsePolicy(PolicyText(Role::kEngine)));
  EXPECT_TRUE(engine.default_allow);
  EXPECT_GT(engine.rules.size(), 20u);
}

TEST(SeccompPolicyTest, MistakesAreReportedWithTheirLine) {
  EXPECT_THAT(ParsePolicy("default allow\nerrno EPERM opne\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("line 2: unknown system call 'opne'")));
  EXPECT_THAT(ParsePolicy("allow read\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no 'default'")));
  EXPECT_THAT(ParsePolicy("default allow\nallow read\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does what the default")));
  EXPECT_THAT(ParsePolicy("default errno EPERM\nallow-readonly read\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 2: allow-readonly")));
  EXPECT_THAT(ParsePolicy("default errno EWHAT\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 1")));
}

TEST(SeccompPolicyTest, KeyHolderCanSignAndReadAndNothingElse) {
  if (kSanitized) GTEST_SKIP() << "skipped: profiles are not applied in a sanitizer build";
  absl::StatusOr<testing::TestCerts> certs = testing::TestCerts::Generate();
  ASSERT_TRUE(certs.ok());
  TLSD_ASSERT_OK_AND_ASSIGN(EvpPkeyPtr key, testing::ParseKeyPem(certs->server_ecdsa().key_pem));
  EVP_PKEY* k = key.get();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
  const std::string digest(32, 'd');
  std::vector<Probe> probes = {
      {"sign",
       [k, &digest] {
         return keyholder::SignWith(
                    k, keyholder::SignOp::kEcdsaDigest,
                    absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(digest.data()), 32))
                        .ok()
                    ? 0
                    : EIO;
       },
       0},
      {"send on its channel", [&] { return ErrnoOf(send(sv[0], "x", 1, 0)); }, 0},
      {"recv on its channel",
       [&] {
         char c;
         return ErrnoOf(recv(sv[1], &c, 1, 0));
       },
       0},
      {"open a file to read (a reload's new key)",
       [] {
         int f = open("/etc/hostname", O_RDONLY);
         if (f >= 0) close(f);
         return f < 0 ? errno : 0;
       },
       0},
      {"open a file to write", [] { return ErrnoOf(open("/etc/hostname", O_WRONLY)); }, EPERM},
      {"create a file",
       [] { return ErrnoOf(open("/tmp/keyholder-must-not-create", O_RDONLY | O_CREAT, 0600)); },
       EPERM},
      {"open to append", [] { return ErrnoOf(open("/etc/hostname", O_RDONLY | O_APPEND)); }, EPERM},
      {"socket(AF_INET)", [] { return ErrnoOf(socket(AF_INET, SOCK_STREAM, 0)); }, EPERM},
      {"socket(AF_UNIX)", [] { return ErrnoOf(socket(AF_UNIX, SOCK_STREAM, 0)); }, EPERM},
      {"connect", [&] { return ErrnoOf(connect(sv[0], nullptr, 0)); }, EPERM},
      {"execve",
       [] {
         char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
         return ErrnoOf(execve("/bin/true", argv, nullptr));
       },
       EPERM},
      {"ptrace", [] { return ErrnoOf(ptrace(PTRACE_TRACEME, 0, nullptr, nullptr)); }, EPERM},
      {"fork", [] { return ErrnoOf(syscall(SYS_fork)); }, EPERM},
      {"clone a thread", [] { return ErrnoOf(syscall(SYS_clone, 0, nullptr)); }, EPERM},
      {"setuid(0)", [] { return ErrnoOf(syscall(SYS_setuid, 0)); }, EPERM},
  };
  EXPECT_EQ(RunSandboxed(Role::kKeyHolder, probes), "");
}

TEST(SeccompPolicyTest, EngineKeepsItsNetworkAndLosesExecTraceAndIdentity) {
  if (kSanitized) GTEST_SKIP() << "skipped: profiles are not applied in a sanitizer build";
  const pid_t parent = getpid();
  std::vector<Probe> probes = {
      {"socket(AF_INET)",
       [] {
         int s = socket(AF_INET, SOCK_STREAM, 0);
         if (s >= 0) close(s);
         return s < 0 ? errno : 0;
       },
       0},
      {"read a file",
       [] {
         int f = open("/etc/hosts", O_RDONLY);
         if (f >= 0) close(f);
         return f < 0 ? errno : 0;
       },
       0},
      {"execve",
       [] {
         char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
         return ErrnoOf(execve("/bin/true", argv, nullptr));
       },
       EPERM},
      {"ptrace(ATTACH) the parent",
       [parent] { return ErrnoOf(ptrace(PTRACE_ATTACH, parent, nullptr, nullptr)); }, EPERM},
      {"process_vm_readv",
       [parent] {
         char b[8];
         iovec local{b, sizeof b}, remote{b, sizeof b};
         return ErrnoOf(process_vm_readv(parent, &local, 1, &remote, 1, 0));
       },
       EPERM},
      {"setuid(0)", [] { return ErrnoOf(syscall(SYS_setuid, 0)); }, EPERM},
      {"unshare", [] { return ErrnoOf(syscall(SYS_unshare, 0)); }, EPERM},
      {"mount", [] { return ErrnoOf(syscall(SYS_mount, "none", "/mnt", "tmpfs", 0, nullptr)); },
       EPERM},
      {"bpf", [] { return ErrnoOf(syscall(SYS_bpf, 0, nullptr, 0)); }, EPERM},
  };
  EXPECT_EQ(RunSandboxed(Role::kEngine, probes), "");
}

}  // namespace
}  // namespace tlsd::sandbox
