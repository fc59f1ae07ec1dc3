// Tests for common/ipc/seqpacket over real AF_UNIX SOCK_SEQPACKET sockets:
// fd passing, and that every rejection path in RecvFrame closes every fd that
// arrived (STYLE.md 2.6: own every fd before checking anything).
//
// Leak checks use two independent signals: the number of entries in
// /proc/self/fd is back to its baseline, and the read end of a pipe whose
// write end was the fd in flight sees EOF (so no copy survived anywhere in
// this process).

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/base/unique_fd.h"
#include "common/ipc/seqpacket.h"
#include "common/wire/frame.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tlsd {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// Helpers

// Number of open fds in this process (the directory's own fd excluded).
int CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;
}

struct SocketPair {
  UniqueFd a;
  UniqueFd b;
};

SocketPair MakeSocketPair(int extra_flags = 0) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | extra_flags, 0, sv) != 0) {
    ADD_FAILURE() << "socketpair: " << strerror(errno);
    return {};
  }
  return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

// A non-blocking pipe, so a leaked write end shows up as EAGAIN, not a hang.
Pipe MakePipe() {
  int p[2];
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
    ADD_FAILURE() << "pipe2: " << strerror(errno);
    return {};
  }
  return {UniqueFd(p[0]), UniqueFd(p[1])};
}

// Sends `data` as one datagram with `fds` in a single SCM_RIGHTS message,
// bypassing SendFrame so that tests can send what SendFrame never would.
void SendRaw(int sock, absl::Span<const uint8_t> data, const std::vector<int>& fds) {
  iovec iov{const_cast<uint8_t*>(data.data()), data.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char buf[CMSG_SPACE(16 * sizeof(int))] = {};
  if (!fds.empty()) {
    ASSERT_LE(fds.size(), 16u);
    msg.msg_control = buf;
    msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  ASSERT_EQ(n, static_cast<ssize_t>(data.size())) << strerror(errno);
}

// Reading the pipe sees EOF only when no write end is left open anywhere.
void ExpectWriteEndsClosed(const Pipe& p) {
  char c;
  ssize_t n = read(p.read.get(), &c, 1);
  EXPECT_EQ(n, 0) << (n < 0 ? strerror(errno) : "data") << ": a write end is still open";
}

void ExpectStatus(const absl::Status& s, absl::StatusCode code, absl::string_view substr) {
  EXPECT_EQ(s.code(), code) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(std::string(substr)));
}

const std::vector<uint8_t> kPayload = {'h', 'e', 'l', 'l', 'o'};

// A temporary directory removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/tlsd-wire-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp: " << strerror(errno);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Join(absl::string_view name) const { return absl::StrCat(path_, "/", name); }

 private:
  std::string path_;
};

// Leaves a socket file at `path` with nobody listening (a previous run).
void MakeStaleSocket(const std::string& path) {
  UniqueFd s(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(s.valid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof(addr.sun_path));
  memcpy(addr.sun_path, path.data(), path.size());
  ASSERT_EQ(bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
}

// ---------------------------------------------------------------------------
// Happy paths

TEST(SeqpacketTest, RoundTripWithoutFd) {
  SocketPair sp = MakeSocketPair();
  ASSERT_TRUE(SendFrame(sp.a.get(), MsgType::kHello, 0xdeadbeef, kPayload).ok());
  absl::StatusOr<Frame> f = RecvFrame(sp.b.get());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->header.type, MsgType::kHello);
  EXPECT_EQ(f->header.request_id, 0xdeadbeefu);
  EXPECT_THAT(f->payload, ElementsAreArray(kPayload));
  EXPECT_FALSE(f->fd.valid());
}

TEST(SeqpacketTest, EmptyAndMaximalPayloads) {
  SocketPair sp = MakeSocketPair();
  for (size_t len : {size_t{0}, kMaxFrameLen - kFrameHeaderLen}) {
    SCOPED_TRACE(len);
    std::vector<uint8_t> payload(len, 0x5a);
    ASSERT_TRUE(SendFrame(sp.a.get(), MsgType::kHelloOk, 1, payload).ok());
    absl::StatusOr<Frame> f = RecvFrame(sp.b.get());
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ(f->payload, payload);
  }
}

TEST(SeqpacketTest, PassedFdWorks) {
  SocketPair sp = MakeSocketPair();
  Pipe p = MakePipe();
  ASSERT_TRUE(SendFrame(sp.a.get(), MsgType::kConnection, 9, kPayload, p.write.get()).ok());
  p.write.Reset();  // the caller closes its copy once the send succeeded

  absl::StatusOr<Frame> f = RecvFrame(sp.b.get());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->header.type, MsgType::kConnection);
  EXPECT_THAT(f->payload, ElementsAreArray(kPayload));
  ASSERT_TRUE(f->fd.valid());
  EXPECT_TRUE(fcntl(f->fd.get(), F_GETFD) & FD_CLOEXEC) << "received fd must be CLOEXEC";

  ASSERT_EQ(write(f->fd.get(), "ping", 4), 4) << strerror(errno);
  char buf[8] = {};
  ASSERT_EQ(read(p.read.get(), buf, sizeof(buf)), 4);
  EXPECT_EQ(absl::string_view(buf, 4), "ping");

  // Dropping the frame closes the only remaining write end.
  *f = Frame{};
  ExpectWriteEndsClosed(p);
}

TEST(SeqpacketTest, DroppedFrameClosesItsFd) {
  SocketPair sp = MakeSocketPair();
  Pipe p = MakePipe();
  ASSERT_TRUE(SendFrame(sp.a.get(), MsgType::kConnection, 1, kPayload, p.write.get()).ok());
  p.write.Reset();
  const int baseline = CountOpenFds();
  {
    absl::StatusOr<Frame> f = RecvFrame(sp.b.get());
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ(CountOpenFds(), baseline + 1);
  }
  EXPECT_EQ(CountOpenFds(), baseline);
  ExpectWriteEndsClosed(p);
}

// ---------------------------------------------------------------------------
// Rejection paths: each must close every fd that arrived.

struct FdLeakCase {
  const char* name;
  int copies;                      // how many copies of the pipe's write end to send
  std::vector<uint8_t> (*data)();  // the datagram
  bool passcred;                   // set SO_PASSCRED on the receiver first
  const char* message;
};

std::vector<uint8_t> ValidFrame() { return EncodeFrame(MsgType::kConnection, 1, kPayload); }

std::vector<uint8_t> BadVersionFrame() {
  std::vector<uint8_t> f = ValidFrame();
  f[1] = 2;  // version 2
  return f;
}

std::vector<uint8_t> UnknownTypeFrame() {
  std::vector<uint8_t> f = ValidFrame();
  f[3] = 99;
  return f;
}

std::vector<uint8_t> OversizeDatagram() {
  // A well-formed header claiming the whole rest, one byte over the limit, so
  // the only thing wrong is that RecvFrame's buffer cuts it (MSG_TRUNC).
  const size_t payload_len = kMaxFrameLen + 1 - kFrameHeaderLen;
  std::vector<uint8_t> f = {0,
                            1,
                            0,
                            4,
                            0,
                            0,
                            0,
                            1,
                            static_cast<uint8_t>(payload_len >> 24),
                            static_cast<uint8_t>(payload_len >> 16),
                            static_cast<uint8_t>(payload_len >> 8),
                            static_cast<uint8_t>(payload_len)};
  f.resize(kMaxFrameLen + 1, 'x');
  return f;
}

std::vector<uint8_t> ShortDatagram() { return {0, 1, 0, 4, 0}; }

const FdLeakCase kFdLeakCases[] = {
    {"TwoFds", 2, ValidFrame, false, "receive frame: more than one fd"},
    {"FourFds", 4, ValidFrame, false, "receive frame: more than one fd"},
    // RecvFrame has control room for 4 fds; the kernel installs those that fit,
    // sets MSG_CTRUNC and drops the rest itself (see KernelCtruncBehaviour).
    {"EightFdsCtrunc", 8, ValidFrame, false, "receive frame: truncated frame or control data"},
    {"TruncatedDatagram", 1, OversizeDatagram, false,
     "receive frame: truncated frame or control data"},
    {"BadVersionWithFd", 1, BadVersionFrame, false, "frame: unsupported wire version 2"},
    {"UnknownTypeWithFd", 1, UnknownTypeFrame, false, "frame: unknown message type 99"},
    {"ShortHeaderWithFd", 1, ShortDatagram, false, "frame: shorter than its header"},
    // SO_PASSCRED makes the kernel add SCM_CREDENTIALS to every datagram.
    {"CredentialsCmsg", 0, ValidFrame, true, "receive frame: unexpected control message"},
    // Credentials fill the control buffer; the fd no longer fits: MSG_CTRUNC.
    {"CredentialsCmsgWithFd", 1, ValidFrame, true,
     "receive frame: truncated frame or control data"},
};

void PrintTo(const FdLeakCase& c, std::ostream* os) { *os << c.name; }

class RecvFrameRejectTest : public ::testing::TestWithParam<FdLeakCase> {};

TEST_P(RecvFrameRejectTest, ClosesEveryFd) {
  const FdLeakCase& c = GetParam();
  SocketPair sp = MakeSocketPair();
  if (c.passcred) {
    int one = 1;
    ASSERT_EQ(setsockopt(sp.b.get(), SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
  }
  Pipe p = MakePipe();
  std::vector<int> fds(c.copies, p.write.get());
  SendRaw(sp.a.get(), c.data(), fds);
  p.write.Reset();  // only the copies in flight remain

  const int baseline = CountOpenFds();
  absl::StatusOr<Frame> f = RecvFrame(sp.b.get());
  ExpectStatus(f.status(), absl::StatusCode::kInvalidArgument, c.message);
  EXPECT_EQ(CountOpenFds(), baseline);
  ExpectWriteEndsClosed(p);

  // The bad datagram was consumed whole; the connection is still in sync.
  ASSERT_TRUE(SendFrame(sp.a.get(), MsgType::kHello, 2, kPayload).ok());
  if (c.passcred) {
    int zero = 0;
    ASSERT_EQ(setsockopt(sp.b.get(), SOL_SOCKET, SO_PASSCRED, &zero, sizeof(zero)), 0);
  }
  absl::StatusOr<Frame> next = RecvFrame(sp.b.get(), MSG_DONTWAIT);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->header.request_id, 2u);
}

INSTANTIATE_TEST_SUITE_P(AllPaths, RecvFrameRejectTest, ::testing::ValuesIn(kFdLeakCases),
                         [](const ::testing::TestParamInfo<FdLeakCase>& info) {
                           return std::string(info.param.name);
                         });

// Documents the kernel behaviour the EightFdsCtrunc row relies on: with a
// control buffer of CMSG_SPACE(4 * sizeof(int)) (RecvFrame's size), 8 fds in
// one SCM_RIGHTS message arrive as 4 installed fds plus MSG_CTRUNC; the kernel
// closes the other 4 itself. So whoever receives must close the 4.
TEST(SeqpacketTest, KernelCtruncBehaviour) {
  SocketPair sp = MakeSocketPair();
  Pipe p = MakePipe();
  const std::vector<uint8_t> data = ValidFrame();
  SendRaw(sp.a.get(), data, std::vector<int>(8, p.write.get()));
  p.write.Reset();

  const int baseline = CountOpenFds();
  std::vector<uint8_t> buf(kMaxFrameLen);
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ASSERT_EQ(recvmsg(sp.b.get(), &msg, MSG_CMSG_CLOEXEC), static_cast<ssize_t>(data.size()));
  EXPECT_TRUE(msg.msg_flags & MSG_CTRUNC);
  std::vector<UniqueFd> got;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    ASSERT_EQ(c->cmsg_type, SCM_RIGHTS);
    for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); ++i) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      got.emplace_back(fd);
    }
  }
  EXPECT_EQ(got.size(), 4u);
  EXPECT_EQ(CountOpenFds(), baseline + static_cast<int>(got.size()));
  got.clear();
  EXPECT_EQ(CountOpenFds(), baseline);
  ExpectWriteEndsClosed(p);
}

// A zero-length datagram reads as 0 bytes, exactly like an orderly shutdown,
// so RecvFrame reports it as "peer closed" although the peer is still there.
// Either way the caller drops the connection, and any fd it carried is closed.
TEST(SeqpacketTest, ZeroLengthDatagramReadsAsPeerClosedAndClosesFd) {
  SocketPair sp = MakeSocketPair();
  Pipe p = MakePipe();
  SendRaw(sp.a.get(), {}, {p.write.get()});
  p.write.Reset();
  const int baseline = CountOpenFds();
  absl::StatusOr<Frame> f = RecvFrame(sp.b.get());
  ExpectStatus(f.status(), absl::StatusCode::kUnavailable, "peer closed");
  EXPECT_EQ(CountOpenFds(), baseline);
  ExpectWriteEndsClosed(p);
}

// ---------------------------------------------------------------------------
// Errors from the environment

TEST(SeqpacketTest, PeerClosedIsUnavailableEconnreset) {
  SocketPair sp = MakeSocketPair();
  sp.a.Reset();
  absl::StatusOr<Frame> f = RecvFrame(sp.b.get());
  ExpectStatus(f.status(), absl::StatusCode::kUnavailable, "receive frame: peer closed");
  EXPECT_TRUE(IsErrno(f.status(), ECONNRESET)) << f.status();
}

TEST(SeqpacketTest, NonBlockingEmptyIsEagain) {
  SocketPair sp = MakeSocketPair();
  absl::StatusOr<Frame> f = RecvFrame(sp.b.get(), MSG_DONTWAIT);
  EXPECT_EQ(f.status().code(), absl::StatusCode::kUnavailable) << f.status();
  EXPECT_TRUE(IsErrno(f.status(), EAGAIN)) << f.status();

  SocketPair nb = MakeSocketPair(SOCK_NONBLOCK);
  f = RecvFrame(nb.b.get());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kUnavailable) << f.status();
  EXPECT_TRUE(IsErrno(f.status(), EAGAIN)) << f.status();
}

TEST(SeqpacketTest, SendWouldBlockIsEagain) {
  SocketPair sp = MakeSocketPair();
  std::vector<uint8_t> payload(8192, 1);
  absl::Status s;
  for (int i = 0; i < 100000 && s.ok(); ++i) {
    s = SendFrame(sp.a.get(), MsgType::kHello, i, payload, -1, MSG_DONTWAIT);
  }
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_TRUE(IsErrno(s, EAGAIN)) << s;
}

TEST(SeqpacketTest, SendToClosedPeerIsEpipeWithoutSignal) {
  SocketPair sp = MakeSocketPair();
  sp.b.Reset();
  // MSG_NOSIGNAL: without it this would kill the test with SIGPIPE.
  absl::Status s = SendFrame(sp.a.get(), MsgType::kHello, 1, kPayload);
  ExpectStatus(s, absl::StatusCode::kUnavailable, "send HELLO");
  EXPECT_TRUE(IsErrno(s, EPIPE)) << s;
}

TEST(SeqpacketTest, SendOversizePayloadIsInvalidArgumentAndSendsNothing) {
  SocketPair sp = MakeSocketPair();
  std::vector<uint8_t> payload(kMaxFrameLen - kFrameHeaderLen + 1);
  ExpectStatus(SendFrame(sp.a.get(), MsgType::kConnection, 1, payload),
               absl::StatusCode::kInvalidArgument, "CONNECTION: payload of 20469 bytes too large");
  EXPECT_TRUE(IsErrno(RecvFrame(sp.b.get(), MSG_DONTWAIT).status(), EAGAIN));
}

TEST(SeqpacketTest, SendBadFdIsEbadf) {
  SocketPair sp = MakeSocketPair();
  Pipe p = MakePipe();
  const int closed_fd = p.write.get();
  p.write.Reset();
  absl::Status s = SendFrame(sp.a.get(), MsgType::kConnection, 1, kPayload, closed_fd);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(IsErrno(s, EBADF)) << s;
}

// ---------------------------------------------------------------------------
// PeerCredentials

TEST(PeerCredentialsTest, ReturnsOurOwnIdentity) {
  SocketPair sp = MakeSocketPair();
  absl::StatusOr<struct ucred> cred = PeerCredentials(sp.b.get());
  ASSERT_TRUE(cred.ok()) << cred.status();
  EXPECT_EQ(cred->pid, getpid());
  EXPECT_EQ(cred->uid, getuid());
  EXPECT_EQ(cred->gid, getgid());
}

TEST(PeerCredentialsTest, NotASocketIsEnotsock) {
  Pipe p = MakePipe();
  absl::StatusOr<struct ucred> cred = PeerCredentials(p.read.get());
  EXPECT_THAT(std::string(cred.status().message()), HasSubstr("SO_PEERCRED"));
  EXPECT_TRUE(IsErrno(cred.status(), ENOTSOCK)) << cred.status();
}

// ---------------------------------------------------------------------------
// ListenSeqpacket / ConnectSeqpacket

TEST(ListenSeqpacketTest, ReplacesStaleSocketAndServes) {
  TempDir dir;
  const std::string path = dir.Join("tlsd.sock");
  MakeStaleSocket(path);
  ASSERT_TRUE(std::filesystem::is_socket(path));
  // Nobody listens on the stale file.
  EXPECT_EQ(ConnectSeqpacket(path, false).status().code(), absl::StatusCode::kUnavailable);

  absl::StatusOr<UniqueFd> listener = ListenSeqpacket(path, 0660);
  ASSERT_TRUE(listener.ok()) << listener.status();
  const int fl = fcntl(listener->get(), F_GETFL);
  EXPECT_TRUE(fl & O_NONBLOCK);
  EXPECT_TRUE(fcntl(listener->get(), F_GETFD) & FD_CLOEXEC);
  struct stat st;
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);

  absl::StatusOr<UniqueFd> client = ConnectSeqpacket(path, false);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE(fcntl(client->get(), F_GETFD) & FD_CLOEXEC);
  EXPECT_FALSE(fcntl(client->get(), F_GETFL) & O_NONBLOCK);

  UniqueFd server(accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(server.valid()) << strerror(errno);
  ASSERT_TRUE(SendFrame(client->get(), MsgType::kHello, 3, kPayload).ok());
  absl::StatusOr<Frame> f = RecvFrame(server.get());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->header.request_id, 3u);
  absl::StatusOr<struct ucred> cred = PeerCredentials(server.get());
  ASSERT_TRUE(cred.ok()) << cred.status();
  EXPECT_EQ(cred->pid, getpid());
}

TEST(ListenSeqpacketTest, NonBlockingConnect) {
  TempDir dir;
  const std::string path = dir.Join("nb.sock");
  absl::StatusOr<UniqueFd> listener = ListenSeqpacket(path, 0600);
  ASSERT_TRUE(listener.ok()) << listener.status();
  absl::StatusOr<UniqueFd> client = ConnectSeqpacket(path, true);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_TRUE(fcntl(client->get(), F_GETFL) & O_NONBLOCK);
}

TEST(ListenSeqpacketTest, DoesNotReplaceARegularFile) {
  TempDir dir;
  const std::string path = dir.Join("not-a-socket");
  { std::ofstream(path) << "keep me"; }
  absl::StatusOr<UniqueFd> listener = ListenSeqpacket(path, 0660);
  ExpectStatus(listener.status(), absl::StatusCode::kAlreadyExists, path);
  EXPECT_TRUE(IsErrno(listener.status(), EADDRINUSE)) << listener.status();
  std::ifstream in(path);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "keep me");
}

TEST(ListenSeqpacketTest, LongestPathWorks) {
  TempDir dir;
  // sun_path holds 108 bytes including the terminating NUL.
  std::string path = dir.Join("");
  path.append(107 - path.size(), 'p');
  ASSERT_EQ(path.size(), 107u);
  absl::StatusOr<UniqueFd> listener = ListenSeqpacket(path, 0600);
  ASSERT_TRUE(listener.ok()) << listener.status();
  absl::StatusOr<UniqueFd> client = ConnectSeqpacket(path, false);
  EXPECT_TRUE(client.ok()) << client.status();
}

TEST(ListenSeqpacketTest, TooLongOrEmptyPathIsInvalidArgument) {
  const std::string too_long = "/tmp/" + std::string(103, 'x');
  ASSERT_EQ(too_long.size(), 108u);
  for (const std::string& path : {too_long, std::string()}) {
    SCOPED_TRACE(path.size());
    ExpectStatus(ListenSeqpacket(path, 0600).status(), absl::StatusCode::kInvalidArgument,
                 "empty or longer than 107 bytes");
    ExpectStatus(ConnectSeqpacket(path, false).status(), absl::StatusCode::kInvalidArgument,
                 "empty or longer than 107 bytes");
  }
  EXPECT_FALSE(std::filesystem::exists(too_long.substr(0, 107)));
}

TEST(ConnectSeqpacketTest, MissingPathIsNotFoundWithPath) {
  TempDir dir;
  const std::string path = dir.Join("missing.sock");
  absl::StatusOr<UniqueFd> fd = ConnectSeqpacket(path, false);
  ExpectStatus(fd.status(), absl::StatusCode::kNotFound, path);
  EXPECT_TRUE(IsErrno(fd.status(), ENOENT)) << fd.status();
}

TEST(ConnectSeqpacketTest, StaleSocketIsUnavailableWithPath) {
  TempDir dir;
  const std::string path = dir.Join("stale.sock");
  MakeStaleSocket(path);
  absl::StatusOr<UniqueFd> fd = ConnectSeqpacket(path, false);
  ExpectStatus(fd.status(), absl::StatusCode::kUnavailable, path);
  EXPECT_TRUE(IsErrno(fd.status(), ECONNREFUSED)) << fd.status();
}

}  // namespace
}  // namespace tlsd
