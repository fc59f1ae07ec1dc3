// `tlsd --check-config FILE` as an operator uses it: every broken config
// gives one precise line, FILE:LINE: problem (docs/config.md, "Error
// messages"), and exit status 78 (EX_CONFIG); a good config says ok and
// exits 0. The checks that need the certificate, key, CA and ticket-key
// files (done when services are built, not when the TOML is read) are
// included: the docs promise them the same FILE:LINE form.

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int kExitConfig = 78;

// The good config, line by line (numbers matter for the messages):
//   1 [global]
//   2 control_socket = "DIR/control.sock"
//   3
//   4 [[service]]
//   5 name = "web"
//   6 listen = ["127.0.0.1:8443"]
//   7 backend = "app"
//   8 # SERVICE_EXTRA
//   9
//  10 [[service.certificate]]
//  11 cert = "DIR/server-ecdsa.pem"
//  12 key = "DIR/server-ecdsa.key"
//  13
//  14 [[backend]]
//  15 name = "app"
//  16 mode = "pull"
//  17 allow_uids = [0]
//  18 # TAIL
std::string GoodConfig() {
  return "[global]\n"
         "control_socket = \"DIR/control.sock\"\n"
         "\n"
         "[[service]]\n"
         "name = \"web\"\n"
         "listen = [\"127.0.0.1:8443\"]\n"
         "backend = \"app\"\n"
         "# SERVICE_EXTRA\n"
         "\n"
         "[[service.certificate]]\n"
         "cert = \"DIR/server-ecdsa.pem\"\n"
         "key = \"DIR/server-ecdsa.key\"\n"
         "\n"
         "[[backend]]\n"
         "name = \"app\"\n"
         "mode = \"pull\"\n"
         "allow_uids = [0]\n"
         "# TAIL\n";
}

struct BrokenCase {
  const char* name;
  // Edits applied to GoodConfig(): {from, to} string replacements.
  std::vector<std::pair<std::string, std::string>> edits;
  // Either the exact message (FILE replaced by the path) ...
  std::string exact;
  // ... or a FILE:LINE: prefix (one of these lines) and texts it contains.
  std::vector<int> lines;
  std::vector<std::string> contains;
};

const std::vector<BrokenCase>& Cases() {
  static const std::vector<BrokenCase> cases = {
      {"SyntaxError",
       {{"[[service]]\n", "[[service]\n"}},
       "FILE:4: syntax error in table header: expected ']', saw '\\n'",
       {},
       {}},
      {"UnknownKey",
       {{"listen =", "listne ="}},
       "FILE:6: unknown key 'listne' in [[service]] (did you mean 'listen'?)",
       {},
       {}},
      {"BadEnumValue",
       {{"# SERVICE_EXTRA", "ktls = \"maybe\""}},
       "FILE:8: ktls 'maybe' is not one of: require, prefer",
       {},
       {}},
      {"WrongType",
       {{"# SERVICE_EXTRA", "handshake_timeout_ms = \"10s\""}},
       "FILE:8: handshake_timeout_ms must be an integer, got string '10s'",
       {},
       {}},
      {"BadListenAddress",
       {{"127.0.0.1:8443", "localhost:8443"}},
       "FILE:6: listen address 'localhost:8443': host 'localhost' is not an IPv4 address, a "
       "bracketed IPv6 address or '*'",
       {},
       {}},
      {"UndefinedBackend",
       {{"backend = \"app\"", "backend = \"ap\""}},
       "FILE:7: backend 'ap' is not defined by any [[backend]] (did you mean 'app'?)",
       {},
       {}},
      {"DuplicateService",
       {{"# TAIL",
         "[[service]]\nname = \"web\"\nlisten = [\"127.0.0.1:8444\"]\nbackend = \"app\"\n"
         "[[service.certificate]]\ncert = \"DIR/server-ecdsa.pem\"\nkey = "
         "\"DIR/server-ecdsa.key\""}},
       "FILE:19: duplicate service name 'web' (first defined at line 5)",
       {},
       {}},
      {"OverlappingListen",
       {{"# TAIL",
         "[[service]]\nname = \"other\"\nlisten = [\"*:8443\"]\nbackend = \"app\"\n"
         "[[service.certificate]]\ncert = \"DIR/server-ecdsa.pem\"\nkey = "
         "\"DIR/server-ecdsa.key\""}},
       "FILE:20: listen address '*:8443' overlaps '127.0.0.1:8443' of service 'web' (line 6)",
       {},
       {}},
      {"MinVersionAboveMax",
       {{"# SERVICE_EXTRA", "min_version = \"1.3\"\nmax_version = \"1.2\""}},
       "FILE:9: min_version '1.3' is greater than max_version '1.2'",
       {},
       {}},
      {"PullBackendWithoutAllowList",
       {{"allow_uids = [0]\n", ""}},
       "FILE:14: pull backend 'app' has no allow_uids or allow_gids: that would let any local "
       "user subscribe and receive its connections",
       {},
       {}},
      // Checks done when the service is built from the files.
      {"MissingCertificateFile",
       {{"DIR/server-ecdsa.pem", "DIR/missing.pem"}},
       "",
       {10},  // the line of its [[service.certificate]] (docs/config.md)
       {"DIR/missing.pem", "No such file or directory"}},
      {"KeyDoesNotMatchCertificate",
       {{"DIR/server-ecdsa.key", "DIR/client.key"}},
       "",
       {10},
       {"DIR/client.key", "does not match"}},
      {"BadTls12CipherList",
       {{"# SERVICE_EXTRA", "tls12_ciphers = \"NO-SUCH-CIPHER\""}},
       "",
       {8, 4},  // the key's line, or at least its [[service]]
       {"tls12_ciphers 'NO-SUCH-CIPHER'", "no cipher match"}},
      {"TicketKeyFileOfWrongSize",
       {{"# SERVICE_EXTRA", "ticket_key_file = \"DIR/short.keys\""}},
       "",
       {8, 4},
       {"DIR/short.keys", "80-byte", "79 bytes"}},
      {"MissingClientCaFile",
       {{"# SERVICE_EXTRA", "client_auth = \"require\"\nclient_ca = \"DIR/no-ca.pem\""}},
       "",
       {9, 4},
       {"DIR/no-ca.pem", "No such file or directory"}},
  };
  return cases;
}

// gtest prints the case's name instead of a hex dump.
void PrintTo(const BrokenCase& c, std::ostream* os) { *os << c.name; }

// CheckConfigTest writes the certificate files once per test.
class CheckConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(SharedCerts().WriteTo(dir_.path()).ok());
    ASSERT_TRUE(WriteFile(dir_.File("short.keys"), RandomBytes(79), 0600).ok());
  }

  std::string Dir(const std::string& s) const {
    return absl::StrReplaceAll(s, {{"DIR", dir_.path()}});
  }

  std::string Write(const std::string& name, const BrokenCase* c) {
    std::string toml = GoodConfig();
    if (c != nullptr) {
      for (const auto& [from, to] : c->edits) {
        size_t pos = toml.find(from);
        EXPECT_NE(pos, std::string::npos) << "edit '" << from << "' does not apply";
        if (pos != std::string::npos) toml.replace(pos, from.size(), to);
      }
    }
    const std::string path = dir_.File(absl::StrCat(name, ".toml"));
    EXPECT_TRUE(WriteFile(path, Dir(toml)).ok());
    return path;
  }

  PeerResult Check(const std::string& path) {
    return RunPeer({BinaryPath("tlsd"), "--check-config", path}, {.timeout = absl::Seconds(20)});
  }

  // What --check-config did for one case, with the config's path replaced by
  // FILE and the temp dir by DIR.
  struct Outcome {
    int exit_code = -1;
    std::string out;
    std::string err;
  };

  // RunCase runs tlsd --check-config on case `c` once per process: the other
  // test of the same case reuses the outcome (each run costs about a second
  // under the VM lane's TCG). Every ctest process still runs it itself.
  Outcome RunCase(const BrokenCase& c) {
    static auto* seen = new std::map<std::string, Outcome>();
    if (auto it = seen->find(c.name); it != seen->end()) return it->second;
    const std::string path = Write(c.name, &c);
    PeerResult r = Check(path);
    Outcome o{r.exit_code, r.out,
              absl::StrReplaceAll(r.err, {{path, "FILE"}, {dir_.path(), "DIR"}})};
    if (!r.timed_out) (*seen)[c.name] = o;
    return o;
  }

  // ExpectMessage checks the one-line message for `c`.
  void ExpectMessage(const BrokenCase& c, const Outcome& r) {
    EXPECT_EQ(r.exit_code, kExitConfig) << c.name << ": " << r.err;
    EXPECT_EQ(r.out, "") << c.name;
    ASSERT_FALSE(r.err.empty()) << c.name;
    EXPECT_EQ(r.err.back(), '\n');
    const std::string msg = r.err.substr(0, r.err.size() - 1);
    EXPECT_EQ(msg.find('\n'), std::string::npos) << c.name << ": more than one line:\n" << r.err;
    if (!c.exact.empty()) {
      EXPECT_EQ(msg, c.exact) << c.name << " (FILE is the config's path, DIR its folder)";
      return;
    }
    std::vector<::testing::Matcher<const std::string&>> prefixes;
    for (int line : c.lines) prefixes.push_back(StartsWith(absl::StrCat("FILE:", line, ": ")));
    EXPECT_THAT(msg, ::testing::AnyOfArray(prefixes))
        << c.name << ": want FILE:LINE: problem with LINE one of {" << absl::StrJoin(c.lines, ", ")
        << "} (FILE is the config's path, DIR its folder)";
    for (const std::string& text : c.contains) {
      EXPECT_THAT(msg, HasSubstr(text)) << c.name;
    }
  }

  TempDir dir_;
};

class BrokenConfigTest : public CheckConfigTest,
                         public ::testing::WithParamInterface<BrokenCase> {};

TEST_P(BrokenConfigTest, IsRejectedWithFileLineAndPreciseProblemAndExit78) {
  const BrokenCase& c = GetParam();
  ExpectMessage(c, RunCase(c));
}

INSTANTIATE_TEST_SUITE_P(Cases, BrokenConfigTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<BrokenCase>& info) {
                           return std::string(info.param.name);
                         });

TEST_F(CheckConfigTest, EveryBrokenConfigGetsItsOwnMessage) {
  std::set<std::string> messages;
  for (const BrokenCase& c : Cases()) {
    Outcome r = RunCase(c);
    EXPECT_EQ(r.exit_code, kExitConfig) << c.name << ": " << r.err;
    // Compare the problem, not the FILE:LINE prefix.
    const size_t colon = r.err.find(": ");
    messages.insert(colon == std::string::npos ? r.err : r.err.substr(colon));
  }
  EXPECT_EQ(messages.size(), Cases().size());
  EXPECT_GE(messages.size(), 10u);
}

TEST_F(CheckConfigTest, GoodConfigPrintsOkAndExitsZero) {
  const std::string path = Write("good", nullptr);
  PeerResult r = Check(path);
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out, absl::StrCat(path, ": ok (1 service(s), 1 backend(s))\n"));
}

TEST_F(CheckConfigTest, UnreadableFileIsReportedWithTheReason) {
  const std::string path = dir_.File("does-not-exist.toml");
  PeerResult r = Check(path);
  EXPECT_EQ(r.exit_code, kExitConfig) << r.Describe();
  EXPECT_EQ(r.err, absl::StrCat(path, ": cannot read: No such file or directory\n"));
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
