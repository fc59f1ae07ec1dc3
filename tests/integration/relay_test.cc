// The relay, tlsd's data path where the kernel has no kTLS: once the worker
// has answered and gone, tlsd sends close_notify and FIN and waits for the
// client's end of stream. That wait must cost nothing: the worker's end of
// the socketpair reports a hang-up from then on, and epoll reports a hang-up
// whatever the interest, so a relay that kept watching it would spin.

#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

// CpuSeconds is a process's user + system time so far, all its threads.
double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  long ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stol(field);  // utime, stime
  }
  return static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

TEST(RelayTest, WorkerGoneWhileClientStaysOpenCostsTlsdNoCpu) {
  TLSD_IT_CHECK_KERNEL();
  if (KernelKtls()) {
    GTEST_SKIP() << "this kernel has kTLS: connections are handed off, not relayed "
                    "(the relay is tested on the host)";
  }
  absl::StatusOr<std::unique_ptr<TestDaemon>> d =
      TestDaemon::Start({.config = [](const DaemonEnv& env) { return SimpleConfig(env); }});
  ASSERT_TRUE(d.ok()) << d.status();
  absl::StatusOr<std::unique_ptr<InProcessBackend>> backend = InProcessBackend::Subscribe(
      (*d)->control(), "app", [](BackendConn& conn, ConnRecord&) { conn.WriteAll("bye\n"); });
  ASSERT_TRUE(backend.ok()) << backend.status();
  const int fds_before = (*d)->NumFds();

  absl::StatusOr<std::unique_ptr<TlsClient>> client = TlsClient::Connect((*d)->port(), {});
  ASSERT_TRUE(client.ok()) << client.status();
  ReadEnd end = (*client)->ReadToEnd();
  ASSERT_EQ(end.kind, ReadEnd::kCloseNotify) << end.Describe();
  ASSERT_EQ(end.data, "bye\n");

  // The client keeps its end open: tlsd has nothing to do but wait.
  const double before = CpuSeconds((*d)->pid());
  absl::SleepFor(absl::Seconds(1));
  const double spent = CpuSeconds((*d)->pid()) - before;
  std::cout << "[ MEASURE  ] tlsd CPU while one relayed client lingers for 1 s: " << spent << " s"
            << std::endl;
  EXPECT_LT(spent, 0.2) << "tlsd spins on a relayed connection whose worker is gone";

  // And the connection still ends when the client closes: its socket and
  // the socketpair are gone.
  (*client)->Close();
  EXPECT_TRUE(WaitFor([&] { return (*d)->NumFds() == fds_before; }, absl::Seconds(10)))
      << "tlsd fds " << fds_before << " before, " << (*d)->NumFds() << " after";
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
