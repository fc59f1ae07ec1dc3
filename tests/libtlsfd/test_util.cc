#include "tests/libtlsfd/test_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include "common/ipc/seqpacket.h"
#include "gtest/gtest.h"

namespace tlsfd::testutil {

using tlsd::UniqueFd;

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/libtlsfd_test.XXXXXX";
  char* made = mkdtemp(tmpl.data());
  if (made == nullptr) {
    ADD_FAILURE() << "mkdtemp: " << strerror(errno);
  } else {
    path_ = made;
  }
}

TempDir::~TempDir() {
  if (path_.empty()) {
    return;
  }
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

int CountOpenFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) {
    return -1;
  }
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') {
      ++n;
    }
  }
  closedir(d);
  return n;
}

std::pair<UniqueFd, UniqueFd> SocketPair(int type) {
  int sv[2] = {-1, -1};
  EXPECT_EQ(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0) << strerror(errno);
  return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

std::pair<UniqueFd, UniqueFd> TcpPair() {
  UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(listener.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(listen(listener.get(), 1), 0);
  EXPECT_EQ(getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  UniqueFd client(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << strerror(errno);
  UniqueFd server(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(server.valid()) << strerror(errno);
  return {std::move(server), std::move(client)};
}

tlsd::ConnectionInfo SampleInfo(uint64_t id, tlsd::DataPath path) {
  tlsd::ConnectionInfo info;
  info.connection_id = id;
  info.service = "https-main";
  info.backend = "web";
  info.sni = "www.example.test";
  info.alpn = "http/1.1";
  info.tls_version = 0x0304;
  info.cipher_suite = 0x1302;
  info.cipher_name = "TLS_AES_256_GCM_SHA384";
  info.tx_path = path;
  info.rx_path = path;
  info.path_reason = path == tlsd::DataPath::kRelay ? "kernel has no tls ULP" : "";
  info.peer.family = 6;
  inet_pton(AF_INET6, "2001:db8::17", info.peer.addr.data());
  info.peer.port = 50123;
  info.local.family = 4;
  inet_pton(AF_INET, "192.0.2.10", info.local.addr.data());
  info.local.port = 443;
  info.has_client_cert = true;
  info.client_cert_subject = "CN=alice,O=Example";
  for (size_t i = 0; i < info.client_cert_sha256.size(); ++i) {
    info.client_cert_sha256[i] = static_cast<uint8_t>(0xa0 + i);
  }
  info.resumed = true;
  info.handshake_us = 1234;
  info.sealed_state = "opaque-sealed-state";
  return info;
}

void SendConnection(int link, const tlsd::ConnectionInfo& info, int fd) {
  absl::Status sent = tlsd::SendFrame(link, tlsd::MsgType::kConnection, 0, info.Encode(), fd);
  ASSERT_TRUE(sent.ok()) << sent;
}

void SendRaw(int sock, absl::Span<const uint8_t> datagram, int fd) {
  iovec iov{const_cast<uint8_t*>(datagram.data()), datagram.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  ASSERT_EQ(sendmsg(sock, &msg, MSG_NOSIGNAL), static_cast<ssize_t>(datagram.size()))
      << strerror(errno);
}

UniqueFd AcceptPeer(int listener) {
  pollfd p{listener, POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 5000), 1) << "no peer connected";
  UniqueFd peer(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_TRUE(peer.valid()) << strerror(errno);
  return peer;
}

bool IsClosedByPeer(int fd) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 1000) != 1) {
    return false;
  }
  char c;
  ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
  // AF_UNIX reports ECONNRESET instead of EOF when the closed end still had
  // unread data (e.g. a frame queued on a link that was refused).
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

std::string ReadAll(int fd, size_t max) {
  std::string out;
  char buf[4096];
  while (out.size() < max) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace tlsfd::testutil
