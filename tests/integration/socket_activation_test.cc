// tlsd under real systemd socket activation: `systemd-socket-activate -l
// 127.0.0.1:PORT --fdname=web` owns the listening socket, starts tlsd on the
// first connection and passes the socket (LISTEN_FDS, LISTEN_FDNAMES); tlsd
// serves that connection on it, as the service whose systemd_socket is
// "web", with no listen address of its own.

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/support/harness.h"

namespace tlsd {
namespace integration {
namespace {

using ::testing::HasSubstr;

constexpr char kSocketActivate[] = "/usr/bin/systemd-socket-activate";

TEST(SocketActivationTest, TlsdServesTheInheritedSocketOfItsSystemdSocketService) {
  TempDir dir;
  ASSERT_TRUE(SharedCerts().WriteTo(dir.path()).ok());
  const int port = PickFreePort();
  const std::string control = dir.File("control.sock");
  const std::string config = dir.File("tlsd.toml");
  ASSERT_TRUE(WriteFile(config, absl::StrCat("[global]\ncontrol_socket = \"", control,
                                             "\"\nstate_dir = \"", dir.path(),
                                             "\"\n\n[[service]]\nname = \"web\"\n"
                                             "systemd_socket = \"web\"\nbackend = \"app\"\n"
                                             "[[service.certificate]]\ncert = \"",
                                             dir.File("server-ecdsa.pem"), "\"\nkey = \"",
                                             dir.File("server-ecdsa.key"), "\"\n\n",
                                             PullBackendToml("app", "queue_timeout_ms = 15000")))
                  .ok());
  absl::StatusOr<std::unique_ptr<BackgroundProcess>> activator =
      BackgroundProcess::Start({kSocketActivate, "-l", absl::StrCat("127.0.0.1:", port),
                                "--fdname=web", BinaryPath("tlsd"), "--config", config},
                               dir.File("activator.log"));
  ASSERT_TRUE(activator.ok()) << activator.status();
  ASSERT_TRUE((*activator)->WaitForOutput("Listening on")) << (*activator)->Output();

  // The first connection starts tlsd, which creates its control socket; the
  // backend subscribes then, and tlsd holds the connection until it does.
  std::unique_ptr<TlsClient> client;
  std::thread connect([&] {
    absl::StatusOr<std::unique_ptr<TlsClient>> c =
        TlsClient::Connect(port, {.io_timeout = absl::Seconds(30)});
    ASSERT_TRUE(c.ok()) << c.status();
    client = *std::move(c);
  });
  ASSERT_TRUE(WaitFor([&] { return access(control.c_str(), F_OK) == 0; }, absl::Seconds(20)))
      << "tlsd did not start on the first connection:\n"
      << (*activator)->Output();
  absl::StatusOr<std::unique_ptr<InProcessBackend>> backend =
      InProcessBackend::Subscribe(control, "app", EchoHandler());
  ASSERT_TRUE(backend.ok()) << backend.status() << "\n" << (*activator)->Output();
  connect.join();
  ASSERT_NE(client, nullptr) << (*activator)->Output();
  ASSERT_TRUE(client->Write("activated").ok());
  absl::StatusOr<std::string> echo = client->ReadExactly(9);
  ASSERT_TRUE(echo.ok()) << echo.status() << "\n" << (*activator)->Output();
  EXPECT_EQ(*echo, "activated");
  client->Close();

  std::vector<ConnRecord> recs = (*backend)->WaitForConnections(1);
  ASSERT_EQ(recs.size(), 1u) << (*activator)->Output();
  EXPECT_EQ(recs[0].service, "web");
  EXPECT_EQ(recs[0].local, absl::StrCat("127.0.0.1:", port))
      << "served on the socket systemd-socket-activate bound";
  // tlsd says where it listens: the inherited socket, nothing of its own.
  EXPECT_THAT((*activator)->Output(), HasSubstr("listening on systemd:web, control socket"));
}

}  // namespace
}  // namespace integration
}  // namespace tlsd
