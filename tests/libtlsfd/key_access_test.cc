// tlsfd_restrict_key_access on the host: the filter answers
// getsockopt(SOL_TLS) itself, with EPERM, where the kernel would have said
// ENOPROTOOPT (no TLS ULP on the socket); other getsockopt calls still
// work. The kTLS proof (the key readable before, EPERM after) is
// KtlsTest.RestrictKeyAccessHidesTheTrafficKeys in the VM lane. Each case
// runs in a forked child: the filter cannot be removed.

#include <errno.h>
#include <linux/tls.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "libtlsfd/include/tlsfd.h"
#include "tests/libtlsfd/test_util.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace {

using tlsfd::testutil::InChild;

TEST(KeyAccessTest, GetsockoptSolTlsIsRefusedAfterTheCallAndOthersStillWork) {
  auto [a, b] = tlsfd::testutil::TcpPair();
  const int fd = a.get();
  std::string msg;
  const int code = InChild(
      [fd](std::string* out) {
        tls12_crypto_info_aes_gcm_128 info{};
        socklen_t len = sizeof(info);
        if (getsockopt(fd, SOL_TLS, TLS_TX, &info, &len) == 0 || errno == EPERM) {
          *out = "before: getsockopt(SOL_TLS) did not fail as the kernel does, errno " +
                 std::to_string(errno);
          return 1;
        }
        const int before = errno;
        if (int rc = tlsfd_restrict_key_access(); rc != 0) {
          *out = std::string("tlsfd_restrict_key_access: ") + tlsfd_strerror(rc);
          return 2;
        }
        len = sizeof(info);
        const int r = getsockopt(fd, SOL_TLS, TLS_TX, &info, &len);
        const int after = errno;
        int type = 0;
        socklen_t tlen = sizeof(type);
        const bool so_type =
            getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 && type == SOCK_STREAM;
        *out = "before errno " + std::to_string(before) + ", after rc " + std::to_string(r) +
               " errno " + std::to_string(after) + ", SO_TYPE " + (so_type ? "ok" : "refused");
        return r == -1 && after == EPERM && so_type ? 0 : 3;
      },
      &msg);
  EXPECT_EQ(code, 0) << msg;
  RecordProperty("result", msg);
}

TEST(KeyAccessTest, ChildrenInheritTheFilter) {
  std::string msg;
  const int code = InChild(
      [](std::string* out) {
        if (tlsfd_restrict_key_access() != 0) return 2;
        auto [a, b] = tlsfd::testutil::TcpPair();
        const int fd = a.get();
        const pid_t pid = fork();
        if (pid == 0) {
          int v = 0;
          socklen_t len = sizeof(v);
          _exit(getsockopt(fd, SOL_TLS, TLS_RX, &v, &len) == -1 && errno == EPERM ? 0 : 1);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        *out = "grandchild exit " + std::to_string(WEXITSTATUS(status));
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 3;
      },
      &msg);
  EXPECT_EQ(code, 0) << msg;
}

}  // namespace
