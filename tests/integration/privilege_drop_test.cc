// global.user: tlsd started as root binds, loads its key, then becomes that
// user for good (no groups, no capabilities, no_new_privs) and still serves;
// a user that does not exist is a configuration error. Needs root (CI and
// the VM lane run as root); elsewhere it skips saying so.

#include <unistd.h>

#include <fstream>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::HasSubstr;

// The "Key:\tvalue" lines of /proc/PID/status.
std::map<std::string, std::string> ProcStatus(pid_t pid) {
  std::map<std::string, std::string> out;
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits(':', 1));
    out[kv.first] = std::string(absl::StripAsciiWhitespace(kv.second));
  }
  return out;
}

std::string WithUser(const std::string& config, absl::string_view user) {
  return absl::StrReplaceAll(config,
                             {{"[global]\n", absl::StrCat("[global]\nuser = \"", user, "\"\n")}});
}

TEST(PrivilegeDropTest, RootBecomesTheConfiguredUserAndStillServes) {
  if (geteuid() != 0) GTEST_SKIP() << "skipped: needs root to start tlsd as root";
  absl::StatusOr<std::unique_ptr<TestDaemon>> d = TestDaemon::Start(
      {.config = [](const DaemonEnv& env) { return WithUser(SimpleConfig(env), "nobody"); }});
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE((*d)->WaitForLog("dropped root: now user 'nobody'")) << (*d)->Log();

  const std::map<std::string, std::string> status = ProcStatus((*d)->pid());
  const std::string nobody = "65534\t65534\t65534\t65534";  // real, effective, saved, fs
  EXPECT_EQ(status.at("Uid"), nobody);
  EXPECT_EQ(status.at("Gid"), nobody) << "nobody's primary group is nogroup (65534)";
  EXPECT_EQ(status.at("Groups"), "");
  EXPECT_EQ(status.at("CapEff"), "0000000000000000");
  EXPECT_EQ(status.at("CapPrm"), "0000000000000000");
  EXPECT_EQ(status.at("NoNewPrivs"), "1");

  // It serves: a handshake with the key loaded as root, handed to a backend.
  absl::StatusOr<std::unique_ptr<InProcessBackend>> b =
      InProcessBackend::Subscribe((*d)->control(), "app", EchoHandler());
  ASSERT_TRUE(b.ok()) << b.status();
  absl::StatusOr<std::unique_ptr<TlsClient>> c = TlsClient::Connect((*d)->port(), {});
  ASSERT_TRUE(c.ok()) << c.status() << "\n" << (*d)->Log();
  ASSERT_TRUE((*c)->Write("after the drop").ok());
  absl::StatusOr<std::string> echo = (*c)->ReadExactly(14);
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(*echo, "after the drop");
}

TEST(PrivilegeDropTest, UnknownUserIsAConfigurationError) {
  if (geteuid() != 0) GTEST_SKIP() << "skipped: needs root to start tlsd as root";
  absl::StatusOr<std::unique_ptr<TestDaemon>> d =
      TestDaemon::Start({.config = [](const DaemonEnv& env) {
        return WithUser(SimpleConfig(env), "no-such-user-tlsd");
      }});
  const std::string why = "global.user 'no-such-user-tlsd': no such user";
  if (!d.ok()) {
    EXPECT_THAT(d.status().message(), HasSubstr("exited with status 78"));
    EXPECT_THAT(d.status().message(), HasSubstr(why));
    return;
  }
  // It had bound its sockets (which Start waits for) before it looked the
  // user up: wait for it to exit.
  EXPECT_TRUE((*d)->WaitForLog(why)) << (*d)->Log();
  EXPECT_TRUE(WaitFor([&] { return !(*d)->Alive(); }, absl::Seconds(10)));
  EXPECT_EQ((*d)->Stop(), 78) << (*d)->Log();
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
