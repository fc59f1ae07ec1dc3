#ifndef TLSD_TESTS_LIBTLSFD_TEST_UTIL_H_
#define TLSD_TESTS_LIBTLSFD_TEST_UTIL_H_

// Helpers for libtlsfd's tests: the test plays tlsd with real sockets.

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/types/span.h"
#include "common/base/unique_fd.h"
#include "common/wire/frame.h"
#include "common/wire/messages.h"

namespace tlsfd::testutil {

// InChild runs `body(&msg)` in a forked child, for what cannot be undone in
// the test process (a seccomp filter). Returns the child's exit code (body's
// result; 128+N for a signal) and appends what body wrote to `msg`.
template <typename Fn>
int InChild(Fn body, std::string* msg) {
  int p[2];
  if (pipe(p) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    std::string out;
    const int code = body(&out);
    (void)!write(p[1], out.data(), out.size());
    _exit(code);
  }
  close(p[1]);
  char buf[512];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof(buf))) > 0) msg->append(buf, n);
  close(p[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// TempDir is a fresh directory under $TMPDIR (or /tmp), removed with its
// files when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const char* name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// CountOpenFds counts the entries of /proc/self/fd.
int CountOpenFds();

// SocketPair returns a connected AF_UNIX socketpair of `type` (CLOEXEC).
std::pair<tlsd::UniqueFd, tlsd::UniqueFd> SocketPair(int type);

// TcpPair returns a connected loopback TCP pair: {accepted, connected}.
std::pair<tlsd::UniqueFd, tlsd::UniqueFd> TcpPair();

// SampleInfo is a CONNECTION record with every field set.
tlsd::ConnectionInfo SampleInfo(uint64_t id = 7, tlsd::DataPath path = tlsd::DataPath::kRelay);

// SendConnection sends CONNECTION(info) with `fd` on a link, like tlsd.
void SendConnection(int link, const tlsd::ConnectionInfo& info, int fd);

// SendRaw sends one datagram, with `fd` attached when >= 0 (no framing).
void SendRaw(int sock, absl::Span<const uint8_t> datagram, int fd);

// AcceptPeer waits up to 5 s for a peer on a (non-blocking) listener.
tlsd::UniqueFd AcceptPeer(int listener);

// IsClosedByPeer reports whether `fd`'s peer end has been closed: a
// non-blocking read sees EOF (or ECONNRESET) within 1 s.
bool IsClosedByPeer(int fd);

// ReadAll reads from a blocking fd until EOF or `max` bytes.
std::string ReadAll(int fd, size_t max = 1 << 20);

}  // namespace tlsfd::testutil

#endif  // TLSD_TESTS_LIBTLSFD_TEST_UTIL_H_
