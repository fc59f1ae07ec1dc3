#include "tests/integration/support/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tlsd/tls/ktls.h"
#include "tlsd/tls/tls_stat.h"
#include "tlsfd.hpp"

namespace tlsd {
namespace integration {
namespace {

// Tests write to sockets whose peer may be gone: that must be an error, not
// a signal that ends the test binary.
const bool kSigpipeIgnored = [] {
  signal(SIGPIPE, SIG_IGN);
  return true;
}();

std::string ErrnoText(int err) { return strerror(err); }

std::string OpenSslErrors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    absl::StrAppend(&out, out.empty() ? "" : "; ", buf);
  }
  return out;
}

void SetIoTimeout(int fd, absl::Duration d) {
  timeval tv = absl::ToTimeval(d);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

std::string SockaddrText(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    return absl::StrCat(host, ":", ntohs(in->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    return absl::StrCat("[", host, "]:", ntohs(in6->sin6_port));
  }
  return "unknown";
}

// PortListening reports whether /proc/net/tcp{,6} has a socket in LISTEN
// state on `port`.
bool PortListening(int port) {
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    absl::StatusOr<std::string> text = ReadFile(file);
    if (!text.ok()) continue;
    for (absl::string_view line : absl::StrSplit(*text, '\n')) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (f.size() < 4) continue;
      size_t colon = f[1].rfind(':');
      if (colon == absl::string_view::npos) continue;
      uint32_t p = 0;
      if (!absl::SimpleHexAtoi(f[1].substr(colon + 1), &p)) continue;
      if (static_cast<int>(p) == port && f[3] == "0A") return true;
    }
  }
  return false;
}

// UnixListening reports whether /proc/net/unix has a listening socket
// (__SO_ACCEPTCON, flags 00010000) bound at `path`. The socket file appears
// at bind(), before listen(): its existence alone is not readiness.
bool UnixListening(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile("/proc/net/unix");
  if (!text.ok()) return false;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (f.size() >= 8 && f[7] == path && f[3] == "00010000") return true;
  }
  return false;
}

std::vector<std::string> CleanEnv() {
  std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "LC_ALL=C",
                                  "HOME=/nonexistent"};
  // Keep TMPDIR (tests put their files there) and the VM lane's markers.
  for (const char* name : {"TMPDIR", "TLSD_IN_VM", "TLSD_TEST_BIN_DIR"}) {
    if (const char* v = getenv(name); v != nullptr) env.push_back(absl::StrCat(name, "=", v));
  }
  return env;
}

// Spawn starts `argv` with the given fds as 0, 1, 2 and `env`. Returns the
// pid or -errno.
pid_t Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env, int in,
            int out, int err) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in, 0);
  posix_spawn_file_actions_adddup2(&fa, out, 1);
  posix_spawn_file_actions_adddup2(&fa, err, 2);
  // A fresh signal mask and default SIGPIPE in the child.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, def;
  sigemptyset(&none);
  sigemptyset(&def);
  sigaddset(&def, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &def);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &fa, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return rc == 0 ? pid : -rc;
}

int StatusToExit(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// WaitPid waits up to `timeout` for `pid`; returns the exit code or -2 if it
// is still running.
int WaitPid(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return StatusToExit(status);
    if (r < 0 && errno != EINTR) return -1;
    if (absl::Now() >= deadline) return -2;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Environment

bool InVm() {
  const char* v = getenv("TLSD_IN_VM");
  return v != nullptr && std::string(v) == "1";
}

bool KernelKtls() {
  static const bool has = KernelHasTlsUlp();
  return has;
}

const char* ExpectedPathName() { return KernelKtls() ? "ktls-sw" : "relay"; }

std::string BinaryPath(absl::string_view name) {
  if (const char* dir = getenv("TLSD_TEST_BIN_DIR"); dir != nullptr && *dir != '\0') {
    return absl::StrCat(dir, "/", name);
  }
  if (name == "tlsd") return TLSD_IT_TLSD_BIN;
  if (name == "tlsd-demo-backend") return TLSD_IT_DEMO_BACKEND_BIN;
  if (name == "tlsctl") return TLSD_IT_TLSCTL_BIN;
  return std::string(name);
}

const testing::TestCerts& SharedCerts() {
  static const testing::TestCerts* certs = [] {
    testing::TestCertsOptions opts;
    opts.server_sans = {"localhost", "127.0.0.1", "::1",        "a.test",
                        "b.test",    "c.test",    "*.wild.test"};
    opts.with_rsa_server = false;  // ECDSA only: RSA keygen is slow under TCG
    absl::StatusOr<testing::TestCerts> made = testing::TestCerts::Generate(opts);
    if (!made.ok()) {
      fprintf(stderr, "cannot generate test certificates: %s\n",
              std::string(made.status().message()).c_str());
      abort();
    }
    return new testing::TestCerts(std::move(*made));
  }();
  return *certs;
}

// ---------------------------------------------------------------------------
// Files

TempDir::TempDir() {
  const char* tmp = getenv("TMPDIR");
  std::string templ =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/tlsd-it-XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << templ << ": " << ErrnoText(errno);
    return;
  }
  chmod(templ.c_str(), 0755);
  path_ = templ;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::File(absl::string_view name) const { return absl::StrCat(path_, "/", name); }

absl::Status WriteFile(const std::string& path, absl::string_view data, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path, ": ", ErrnoText(errno)));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return absl::InternalError(absl::StrCat("write ", path, ": ", ErrnoText(e)));
    }
    off += n;
  }
  fchmod(fd, mode);
  close(fd);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("open ", path, ": ", ErrnoText(errno)));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, n);
  }
  close(fd);
  return out;
}

std::string RandomBytes(size_t len) {
  std::string out(len, '\0');
  if (len > 0) RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(len));
  return out;
}

std::string RandomHex(size_t num_bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string raw = RandomBytes(num_bytes), out;
  for (unsigned char c : raw) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string Sha256Hex(absl::string_view data) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Ports, waiting

int PickFreePort() {
  // Below the ephemeral range: a port the kernel handed out for bind(0) can
  // be taken as the source port of some other test's outgoing connection
  // before tlsd binds it (hostile_test makes 10,000 of them).
  int ephemeral_low = 32768;
  if (absl::StatusOr<std::string> range = ReadFile("/proc/sys/net/ipv4/ip_local_port_range");
      range.ok()) {
    int low = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(range->substr(0, range->find_first_of(" \t"))),
                         &low) &&
        low > 11000) {
      ephemeral_low = low;
    }
  }
  static std::mt19937 rng{std::random_device{}()};
  std::uniform_int_distribution<int> pick(10000, ephemeral_low - 1);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int port = pick(rng);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    const bool free = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    close(fd);
    if (free) return port;
  }
  return -1;
}

UniqueFd ConnectLoopback(int port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!fd.valid() || connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    return UniqueFd();
  }
  return fd;
}

bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return cond();
}

// ---------------------------------------------------------------------------
// Peers

std::string PeerResult::Describe() const {
  return absl::StrCat("exit ", exit_code, timed_out ? " (timed out, killed)" : "", " after ",
                      absl::FormatDuration(elapsed), "\n--- stdout ---\n",
                      out.size() > 4000 ? out.substr(0, 4000) + "...(cut)" : out,
                      "\n--- stderr ---\n", err);
}

PeerResult RunPeer(const std::vector<std::string>& argv, const PeerOptions& opts) {
  PeerResult r;
  const absl::Time start = absl::Now();
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    r.err = absl::StrCat("pipe2: ", ErrnoText(errno));
    return r;
  }
  pid_t pid = Spawn(argv, CleanEnv(), in[0], out[1], err[1]);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    close(in[1]);
    close(out[0]);
    close(err[0]);
    r.err = absl::StrCat("spawn ", argv[0], ": ", ErrnoText(-pid));
    return r;
  }
  int stdin_fd = in[1];
  fcntl(stdin_fd, F_SETFL, O_NONBLOCK);
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  fcntl(err[0], F_SETFL, O_NONBLOCK);
  // What goes to stdin: stdin_data, then each script step once released.
  std::string input = opts.stdin_data;
  size_t written = 0;
  size_t step = 0;
  size_t out_mark = 0, err_mark = 0;  // output seen when the last step was released
  auto release_steps = [&] {
    if (step >= opts.stdin_script.size() || written < input.size()) return;
    const PeerOptions::Step& next = opts.stdin_script[step];
    if (!absl::StrContains(absl::string_view(r.out).substr(out_mark), next.after) &&
        !absl::StrContains(absl::string_view(r.err).substr(err_mark), next.after)) {
      return;
    }
    input += next.text;
    out_mark = r.out.size();
    err_mark = r.err.size();
    ++step;
  };
  bool out_open = true, err_open = true;
  const absl::Time deadline = start + opts.timeout;
  auto maybe_close_stdin = [&] {
    release_steps();
    if (stdin_fd < 0 || written < input.size() || step < opts.stdin_script.size()) return;
    if (!opts.close_stdin_after_stdout_has.empty() &&
        !absl::StrContains(r.out, opts.close_stdin_after_stdout_has)) {
      return;
    }
    close(stdin_fd);
    stdin_fd = -1;
  };
  maybe_close_stdin();
  while (out_open || err_open) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      r.timed_out = true;
      break;
    }
    pollfd p[3];
    int n = 0;
    int idx_in = -1, idx_out = -1, idx_err = -1;
    if (stdin_fd >= 0 && written < input.size()) {
      idx_in = n;
      p[n++] = {stdin_fd, POLLOUT, 0};
    }
    if (out_open) {
      idx_out = n;
      p[n++] = {out[0], POLLIN, 0};
    }
    if (err_open) {
      idx_err = n;
      p[n++] = {err[0], POLLIN, 0};
    }
    int rc =
        poll(p, n, static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 200)));
    if (rc < 0 && errno != EINTR) break;
    char buf[65536];
    if (idx_in >= 0 && (p[idx_in].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w =
          write(stdin_fd, input.data() + written, std::min<size_t>(input.size() - written, 65536));
      if (w > 0) {
        written += w;
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        written = input.size();  // EPIPE: it stopped reading
        step = opts.stdin_script.size();
        close(stdin_fd);
        stdin_fd = -1;
      }
    }
    for (auto [idx, fd, open, sink] :
         {std::tuple<int, int, bool*, std::string*>{idx_out, out[0], &out_open, &r.out},
          std::tuple<int, int, bool*, std::string*>{idx_err, err[0], &err_open, &r.err}}) {
      if (idx < 0 || !(p[idx].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t got = read(fd, buf, sizeof(buf));
      if (got > 0) {
        sink->append(buf, got);
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        *open = false;
      }
    }
    maybe_close_stdin();
  }
  if (stdin_fd >= 0) close(stdin_fd);
  int code = r.timed_out ? -2 : WaitPid(pid, std::max(deadline - absl::Now(), absl::Seconds(1)));
  if (code == -2) {
    r.timed_out = true;
    kill(pid, SIGKILL);
    code = WaitPid(pid, absl::Seconds(5));
  }
  close(out[0]);
  close(err[0]);
  r.exit_code = code;
  r.elapsed = absl::Now() - start;
  return r;
}

// ---------------------------------------------------------------------------
// tlsd

std::string ConnLogLine::Field(absl::string_view key) const {
  const std::string needle = absl::StrCat(" ", key, "=");
  size_t pos = line.find(needle);
  if (pos == std::string::npos) {
    // The line may start with the field (after the "<N>tlsd: " prefix).
    const std::string start = absl::StrCat(": ", key, "=");
    pos = line.find(start);
    if (pos == std::string::npos) return "";
    pos += 1;
  }
  pos += needle.size();
  size_t end = line.find(' ', pos);
  return line.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
}

absl::StatusOr<std::unique_ptr<TestDaemon>> TestDaemon::Start(const DaemonSpec& spec) {
  std::string last_log;
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::unique_ptr<TestDaemon> d(new TestDaemon());
    d->dir_ = std::make_unique<TempDir>();
    const std::string& dir = d->dir_->path();
    if (dir.empty()) return absl::InternalError("no temp dir");
    if (absl::Status s = SharedCerts().WriteTo(dir); !s.ok()) return s;
    DaemonEnv& env = d->env_;
    env.dir = dir;
    env.control = absl::StrCat(dir, "/control.sock");
    env.ca = absl::StrCat(dir, "/ca.pem");
    env.cert = absl::StrCat(dir, "/server-ecdsa.pem");
    env.key = absl::StrCat(dir, "/server-ecdsa.key");
    env.client_cert = absl::StrCat(dir, "/client.pem");
    env.client_key = absl::StrCat(dir, "/client.key");
    while (static_cast<int>(env.ports.size()) < spec.num_ports) {
      int p = PickFreePort();
      if (p <= 0) return absl::InternalError("cannot pick a free port");
      if (std::find(env.ports.begin(), env.ports.end(), p) == env.ports.end()) {
        env.ports.push_back(p);
      }
    }
    if (spec.prepare) {
      if (absl::Status s = spec.prepare(env); !s.ok()) return s;
    }
    d->config_path_ = absl::StrCat(dir, "/tlsd.toml");
    d->log_path_ = absl::StrCat(dir, "/tlsd.log");
    if (absl::Status s = WriteFile(d->config_path_, spec.config(env)); !s.ok()) return s;
    if (absl::Status s = d->Launch(); !s.ok()) return s;

    const absl::Time deadline = absl::Now() + spec.ready_timeout;
    bool exited = false;
    for (;;) {
      int status = 0;
      if (waitpid(d->pid_, &status, WNOHANG) == d->pid_) {
        d->exit_status_ = StatusToExit(status);
        d->pid_ = -1;
        exited = true;
        break;
      }
      bool ready = UnixListening(env.control);
      for (int p : env.ports) ready = ready && PortListening(p);
      if (ready) return d;
      if (absl::Now() >= deadline) break;
      absl::SleepFor(absl::Milliseconds(10));
    }
    last_log = d->Log();
    if (exited && absl::StrContains(last_log, "Address already in use")) {
      continue;  // lost a race for the port: try other ports
    }
    if (exited) {
      return absl::FailedPreconditionError(
          absl::StrCat("tlsd exited with status ", d->exit_status_, " during start-up; log:\n",
                       last_log, "\nconfig:\n", ReadFile(d->config_path_).value_or("")));
    }
    return absl::DeadlineExceededError(absl::StrCat(
        "tlsd not ready within ", absl::FormatDuration(spec.ready_timeout), "; log:\n", last_log));
  }
  return absl::UnavailableError(absl::StrCat("tlsd kept losing its port; last log:\n", last_log));
}

absl::Status TestDaemon::Launch() {
  const std::string bin = BinaryPath("tlsd");
  if (access(bin.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat(bin, ": ", ErrnoText(errno)));
  }
  int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (log < 0 || null < 0) return absl::InternalError("open log or /dev/null");
  // A clean environment: no JOURNAL_STREAM (log lines must reach stderr),
  // no NOTIFY_SOCKET, no LISTEN_FDS.
  pid_ = Spawn({bin, "--config", config_path_}, CleanEnv(), null, log, log);
  close(log);
  close(null);
  if (pid_ < 0) {
    int e = -pid_;
    pid_ = -1;
    return absl::InternalError(absl::StrCat("spawn ", bin, ": ", ErrnoText(e)));
  }
  return absl::OkStatus();
}

TestDaemon::~TestDaemon() {
  if (pid_ > 0 && Stop() == -1) {
    ADD_FAILURE() << "tlsd (pid " << pid_ << ") did not stop within 5 s of SIGTERM and was "
                  << "killed; log:\n"
                  << Log();
  }
}

int TestDaemon::Stop() {
  if (pid_ <= 0) return exit_status_;
  kill(pid_, SIGTERM);
  int code = WaitPid(pid_, absl::Seconds(5));
  if (code == -2) {
    kill(pid_, SIGKILL);
    WaitPid(pid_, absl::Seconds(5));
    code = -1;
  }
  exit_status_ = code;
  pid_ = -1;
  return code;
}

bool TestDaemon::Alive() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    exit_status_ = StatusToExit(status);
    pid_ = -1;
    return false;
  }
  return true;
}

std::string TestDaemon::Log() const { return ReadFile(log_path_).value_or(""); }

bool TestDaemon::WaitForLog(absl::string_view text, absl::Duration timeout) const {
  return WaitFor([&] { return absl::StrContains(Log(), text); }, timeout);
}

std::vector<ConnLogLine> TestDaemon::ConnLogLines() const {
  std::vector<ConnLogLine> lines;
  for (absl::string_view l : absl::StrSplit(Log(), '\n')) {
    if (absl::StrContains(l, "tlsd: conn=")) lines.push_back({std::string(l)});
  }
  return lines;
}

absl::StatusOr<ConnLogLine> TestDaemon::WaitForConnLog(uint64_t conn_id,
                                                       absl::Duration timeout) const {
  const std::string id = absl::StrCat(conn_id);
  ConnLogLine found;
  bool ok = WaitFor(
      [&] {
        for (const ConnLogLine& l : ConnLogLines()) {
          if (l.Field("conn") == id) {
            found = l;
            return true;
          }
        }
        return false;
      },
      timeout);
  if (!ok) {
    return absl::NotFoundError(absl::StrCat("no log line for conn=", conn_id, " within ",
                                            absl::FormatDuration(timeout), "; log:\n", Log()));
  }
  return found;
}

int TestDaemon::NumFds() const {
  if (pid_ <= 0) return -1;
  std::error_code ec;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator(absl::StrCat("/proc/", pid_, "/fd"), ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

absl::StatusOr<std::unique_ptr<BackgroundProcess>> BackgroundProcess::Start(
    const std::vector<std::string>& argv, const std::string& output_path) {
  std::unique_ptr<BackgroundProcess> p(new BackgroundProcess());
  p->output_path_ = output_path;
  int out = open(output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out < 0 || null < 0) return absl::InternalError("open output or /dev/null");
  p->pid_ = Spawn(argv, CleanEnv(), null, out, out);
  close(out);
  close(null);
  if (p->pid_ < 0) {
    return absl::InternalError(absl::StrCat("spawn ", argv[0], ": ", ErrnoText(-p->pid_)));
  }
  return p;
}

BackgroundProcess::~BackgroundProcess() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  if (WaitPid(pid_, absl::Seconds(5)) == -2) {
    kill(pid_, SIGKILL);
    WaitPid(pid_, absl::Seconds(5));
  }
}

pid_t TestDaemon::KeyHolderPid() const {
  const std::string log = Log();
  const std::string mark = "key holder pid ";
  const size_t at = log.find(mark);
  if (at == std::string::npos) return -1;
  size_t end = at + mark.size();
  while (end < log.size() && isdigit(static_cast<unsigned char>(log[end]))) ++end;
  int pid = -1;
  return absl::SimpleAtoi(log.substr(at + mark.size(), end - at - mark.size()), &pid) ? pid : -1;
}

std::string BackgroundProcess::Output() const { return ReadFile(output_path_).value_or(""); }

bool BackgroundProcess::WaitForOutput(absl::string_view text, absl::Duration timeout) const {
  return WaitFor([&] { return absl::StrContains(Output(), text); }, timeout);
}

// ---------------------------------------------------------------------------
// In-process backends

int BackendConn::WriteAll(absl::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = Write(data.data() + off, data.size() - off);
    if (n == -EINTR) continue;
    if (n < 0) return static_cast<int>(n);
    off += n;
  }
  return 0;
}

namespace {

class TlsfdBackendConn : public BackendConn {
 public:
  explicit TlsfdBackendConn(tlsfd::Conn& c) : c_(c) {}
  int fd() const override { return c_.fd(); }
  ssize_t Read(void* buf, size_t len) override { return c_.Read(buf, len); }
  ssize_t Write(const void* buf, size_t len) override { return c_.Write(buf, len); }
  int Shutdown() override { return c_.Shutdown(); }
  int LastAlert() const override { return c_.LastAlert(); }

 private:
  tlsfd::Conn& c_;
};

void FillRecord(const tlsfd_info& in, ConnRecord& rec) {
  rec.connection_id = in.connection_id;
  rec.service = in.service;
  rec.backend = in.backend;
  rec.sni = in.sni;
  rec.alpn = in.alpn;
  rec.tls_version = in.tls_version;
  rec.cipher_suite = in.cipher_suite;
  rec.tls_version_name = in.tls_version_name;
  rec.cipher_name = in.cipher_name;
  rec.tx_path = in.tx_path;
  rec.rx_path = in.rx_path;
  rec.tx_path_name = in.tx_path_name;
  rec.rx_path_name = in.rx_path_name;
  rec.path_reason = in.path_reason;
  rec.peer = in.peer;
  rec.local = in.local;
  rec.peer_family = in.peer_addr.ss_family;
  rec.local_family = in.local_addr.ss_family;
  // The text and the sockaddr must say the same; a mismatch shows up in
  // every comparison of `peer` / `local`.
  if (in.peer_addr.ss_family != AF_UNSPEC && SockaddrText(in.peer_addr) != rec.peer) {
    rec.peer += absl::StrCat(" (but peer_addr says ", SockaddrText(in.peer_addr), ")");
  }
  if (in.local_addr.ss_family != AF_UNSPEC && SockaddrText(in.local_addr) != rec.local) {
    rec.local += absl::StrCat(" (but local_addr says ", SockaddrText(in.local_addr), ")");
  }
  rec.has_client_cert = in.has_client_cert;
  rec.client_cert_subject = in.client_cert_subject;
  rec.client_cert_sha256_hex = in.client_cert_sha256_hex;
  rec.client_cert_sha256_raw.assign(reinterpret_cast<const char*>(in.client_cert_sha256), 32);
  rec.resumed = in.resumed;
  rec.handshake_us = in.handshake_us;
}

}  // namespace

Handler EchoHandler() {
  return [](BackendConn& c, ConnRecord& rec) {
    char buf[16384];
    for (;;) {
      ssize_t n = c.Read(buf, sizeof(buf));
      if (n == -EINTR) continue;
      if (n == 0) return;
      if (n < 0) {
        rec.handler_error = absl::StrCat("read: ", strerror(static_cast<int>(-n)));
        return;
      }
      rec.received.append(buf, n);
      if (int w = c.WriteAll(absl::string_view(buf, n)); w < 0) {
        rec.handler_error = absl::StrCat("write: ", strerror(-w));
        return;
      }
    }
  };
}

Handler ReadAllHandler() {
  return [](BackendConn& c, ConnRecord& rec) {
    char buf[16384];
    for (;;) {
      ssize_t n = c.Read(buf, sizeof(buf));
      if (n == -EINTR) continue;
      if (n == 0) return;
      if (n < 0) {
        rec.handler_error = absl::StrCat("read: ", strerror(static_cast<int>(-n)));
        return;
      }
      rec.received.append(buf, n);
    }
  };
}

Handler CloseHandler() {
  return [](BackendConn&, ConnRecord&) {};
}

Handler HttpEchoHandler() {
  return [](BackendConn& c, ConnRecord& rec) {
    std::string req;
    char buf[16384];
    size_t header_end = std::string::npos;
    size_t content_length = 0;
    for (;;) {
      if (header_end == std::string::npos) {
        header_end = req.find("\r\n\r\n");
        if (header_end != std::string::npos) {
          for (absl::string_view line :
               absl::StrSplit(absl::string_view(req).substr(0, header_end), "\r\n")) {
            std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(line, ':');
            if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(kv.first), "content-length")) {
              (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(kv.second), &content_length);
            }
          }
        }
      }
      if (header_end != std::string::npos && req.size() >= header_end + 4 + content_length) break;
      ssize_t n = c.Read(buf, sizeof(buf));
      if (n == -EINTR) continue;
      if (n <= 0) {
        rec.handler_error = n == 0 ? "end of stream inside the request"
                                   : absl::StrCat("read: ", strerror(static_cast<int>(-n)));
        return;
      }
      req.append(buf, n);
    }
    rec.received = req.substr(header_end + 4, content_length);
    std::string resp = absl::StrCat("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n",
                                    "Content-Length: ", rec.received.size(),
                                    "\r\nConnection: close\r\n\r\n", rec.received);
    if (int w = c.WriteAll(resp); w < 0) rec.handler_error = absl::StrCat("write: ", strerror(-w));
  };
}

struct InProcessBackend::State {
  tlsfd::Server server;
  Handler handler;
  std::atomic<bool> stop{false};
  std::thread acceptor;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<ConnRecord> done;
  size_t accepted = 0;
  std::vector<std::thread> workers;

  void Run() {
    while (!stop.load()) {
      pollfd p{server.fd(), POLLIN, 0};
      int rc = poll(&p, 1, 50);
      if (rc <= 0) continue;
      tlsfd::Conn conn;
      int a = server.Accept(&conn, TLSFD_NONBLOCK);
      if (a == -EAGAIN || a == -EINTR) continue;
      if (a < 0) {
        if (a == -EMFILE || a == -ENFILE || a == -ENOBUFS || a == -ENOMEM) continue;
        fprintf(stderr, "in-process backend: accept: %s (%s)\n", strerror(-a), tlsfd_last_error());
        return;  // the subscription is over
      }
      std::lock_guard<std::mutex> lock(mu);
      ++accepted;
      workers.emplace_back([this, c = std::move(conn)]() mutable { Serve(c); });
    }
  }

  void Serve(tlsfd::Conn& conn) {
    ConnRecord rec;
    tlsfd_info info{};
    if (int rc = conn.Info(&info); rc == 0) {
      FillRecord(info, rec);
    } else {
      rec.handler_error = absl::StrCat("tlsfd_conn_info: ", strerror(-rc));
    }
    // Bounded: a client that stalls cannot hold a handler forever.
    SetIoTimeout(conn.fd(), absl::Seconds(60));
    TlsfdBackendConn bc(conn);
    handler(bc, rec);
    conn.Close();
    std::lock_guard<std::mutex> lock(mu);
    done.push_back(std::move(rec));
    cv.notify_all();
  }
};

InProcessBackend::InProcessBackend(std::shared_ptr<State> state) : state_(std::move(state)) {
  state_->acceptor = std::thread([s = state_.get()] { s->Run(); });
}

absl::StatusOr<std::unique_ptr<InProcessBackend>> InProcessBackend::Subscribe(
    const std::string& control, const std::string& backend, Handler handler) {
  auto state = std::make_shared<State>();
  state->handler = std::move(handler);
  int rc = tlsfd::Server::Subscribe(control.c_str(), backend.c_str(), &state->server);
  if (rc < 0) {
    return absl::Status(absl::StatusCode::kUnavailable,
                        absl::StrCat("tlsfd_server_subscribe(", control, ", ", backend,
                                     "): ", strerror(-rc), ": ", tlsfd_last_error()));
  }
  return std::unique_ptr<InProcessBackend>(new InProcessBackend(std::move(state)));
}

absl::StatusOr<std::unique_ptr<InProcessBackend>> InProcessBackend::Listen(const std::string& path,
                                                                           Handler handler) {
  auto state = std::make_shared<State>();
  state->handler = std::move(handler);
  int rc = tlsfd::Server::Listen(path.c_str(), 0600, &state->server);
  if (rc < 0) {
    return absl::Status(
        absl::StatusCode::kUnavailable,
        absl::StrCat("tlsfd_server_listen(", path, "): ", strerror(-rc), ": ", tlsfd_last_error()));
  }
  return std::unique_ptr<InProcessBackend>(new InProcessBackend(std::move(state)));
}

InProcessBackend::~InProcessBackend() {
  state_->stop = true;
  if (state_->acceptor.joinable()) state_->acceptor.join();
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    workers.swap(state_->workers);
  }
  for (std::thread& t : workers) t.join();
}

std::vector<ConnRecord> InProcessBackend::WaitForConnections(size_t n, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(state_->mu);
  state_->cv.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                      [&] { return state_->done.size() >= n; });
  return state_->done;
}

size_t InProcessBackend::NumAccepted() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->accepted;
}

std::vector<ConnRecord> InProcessBackend::Records() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->done;
}

// ---------------------------------------------------------------------------
// TlsClient

namespace {

int AlertIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Records the description of the last alert received (-1: none).
void OnMessage(int write_p, int, int content_type, const void* buf, size_t len, SSL* ssl, void*) {
  if (write_p == 0 && content_type == SSL3_RT_ALERT && len >= 2) {
    auto* slot = static_cast<std::atomic<int>*>(SSL_get_ex_data(ssl, AlertIndex()));
    if (slot != nullptr) *slot = static_cast<const unsigned char*>(buf)[1];
  }
}

}  // namespace

namespace {
std::atomic<int> interruptions{0};
constexpr int kMaxInterruptions = 100;  // per call: a bound, not a spin
}  // namespace

absl::Status TlsClient::Init(int port, const ClientOptions& opts) {
  alert_ = std::make_unique<std::atomic<int>>(-1);
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr) return absl::InternalError("SSL_CTX_new");
  if (opts.version != 0) {
    SSL_CTX_set_min_proto_version(ctx_, opts.version);
    SSL_CTX_set_max_proto_version(ctx_, opts.version);
  }
  if (!opts.tls12_cipher.empty() && SSL_CTX_set_cipher_list(ctx_, opts.tls12_cipher.c_str()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("cipher list ", opts.tls12_cipher));
  }
  if (!opts.tls13_suite.empty() && SSL_CTX_set_ciphersuites(ctx_, opts.tls13_suite.c_str()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("ciphersuites ", opts.tls13_suite));
  }
  if (absl::Status st = testing::TrustCa(ctx_, SharedCerts().ca()); !st.ok()) return st;
  if (opts.identity != nullptr) {
    if (absl::Status st = testing::UseIdentity(ctx_, *opts.identity); !st.ok()) return st;
  }
  // No client session cache: freeing a context flushes its cache, which
  // marks the sessions in it not resumable; tests keep sessions themselves.
  if (!opts.alpn.empty()) {
    std::string wire;
    for (const std::string& p : opts.alpn) {
      wire.push_back(static_cast<char>(p.size()));
      wire += p;
    }
    SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const unsigned char*>(wire.data()), wire.size());
  }
  ssl_ = SSL_new(ctx_);
  if (ssl_ == nullptr) return absl::InternalError("SSL_new");
  SSL_set_ex_data(ssl_, AlertIndex(), alert_.get());
  SSL_set_msg_callback(ssl_, &OnMessage);
  if (!opts.sni.empty()) {
    SSL_set_tlsext_host_name(ssl_, opts.sni.c_str());
    SSL_set1_host(ssl_, opts.sni.c_str());
  } else {
    SSL_set1_host(ssl_, "localhost");
  }
  if (opts.session != nullptr) SSL_set_session(ssl_, opts.session);

  fd_ = socket(opts.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return absl::InternalError(absl::StrCat("socket: ", ErrnoText(errno)));
  SetIoTimeout(fd_, opts.io_timeout);
  sockaddr_storage ss{};
  socklen_t ss_len;
  if (opts.ipv6) {
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    a6->sin6_family = AF_INET6;
    a6->sin6_addr = in6addr_loopback;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    ss_len = sizeof(*a6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = htons(static_cast<uint16_t>(port));
    ss_len = sizeof(*a);
  }
  if (!opts.source_address.empty()) {
    sockaddr_in src{};
    src.sin_family = AF_INET;
    if (opts.ipv6 || inet_pton(AF_INET, opts.source_address.c_str(), &src.sin_addr) != 1 ||
        bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bind ", opts.source_address, ": ", ErrnoText(errno)));
    }
  }
  int rc = connect(fd_, reinterpret_cast<sockaddr*>(&ss), ss_len);
  if (rc != 0 && errno == EINTR) {
    // The connection goes on in the background (connect(2)): wait for it.
    ++interruptions;
    pollfd p{fd_, POLLOUT, 0};
    int err = 0;
    socklen_t err_len = sizeof err;
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(opts.io_timeout))) == 1 &&
        getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &err_len) == 0) {
      rc = err == 0 ? 0 : -1;
      errno = err;
    } else {
      errno = ETIMEDOUT;
    }
  }
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat(
        "connect ", opts.ipv6 ? "[::1]:" : "127.0.0.1:", port, ": ", ErrnoText(errno)));
  }
  if (!opts.prefix.empty() && send(fd_, opts.prefix.data(), opts.prefix.size(), MSG_NOSIGNAL) !=
                                  static_cast<ssize_t>(opts.prefix.size())) {
    return absl::UnavailableError(absl::StrCat("send prefix: ", ErrnoText(errno)));
  }
  return absl::OkStatus();
}

absl::Status TlsClient::Failure(absl::string_view what, int ret) {
  int e = errno;
  int err = SSL_get_error(ssl_, ret);
  std::string detail = OpenSslErrors();
  if (detail.empty() && err == SSL_ERROR_SYSCALL) {
    detail = ret == 0 ? "EOF from the server" : ErrnoText(e);
  }
  const int alert = alert_->load();
  // The local address lets a test match this failure with tlsd's log line
  // for the same connection (peer=...).
  return absl::AbortedError(absl::StrCat(
      what, " failed (ssl error ", err, "): ", detail,
      alert >= 0 ? absl::StrCat(" [alert received: ", SSL_alert_desc_string_long(alert), "]") : "",
      " [local ", LocalAddress(), "]"));
}

int TlsClient::Interruptions() { return interruptions.load(); }

bool TlsClient::Interrupted(int ret) {
  const int e = errno;
  const int err = SSL_get_error(ssl_, ret);
  if ((err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) || e != EINTR) return false;
  ++interruptions;
  return true;
}

absl::StatusOr<std::unique_ptr<TlsClient>> TlsClient::Connect(int port, const ClientOptions& opts) {
  std::unique_ptr<TlsClient> c(new TlsClient());
  if (absl::Status st = c->Init(port, opts); !st.ok()) return st;
  SSL_set_fd(c->ssl_, c->fd_);
  for (int i = 0;; ++i) {
    ERR_clear_error();
    errno = 0;
    int r = SSL_connect(c->ssl_);
    if (r == 1) return c;
    if (i < kMaxInterruptions && c->Interrupted(r)) continue;
    return c->Failure("handshake", r);
  }
}

namespace {

// SendAll sends `data` on a blocking socket; true when all of it went out.
bool SendAll(int fd, absl::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += n;
  }
  return true;
}

std::string DrainBio(BIO* b) {
  std::string out;
  char buf[16384];
  int n;
  while ((n = BIO_read(b, buf, sizeof(buf))) > 0) out.append(buf, n);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TlsClient>> TlsClient::ConnectAndSend(int port,
                                                                     const ClientOptions& opts,
                                                                     absl::string_view data) {
  std::unique_ptr<TlsClient> c(new TlsClient());
  if (absl::Status st = c->Init(port, opts); !st.ok()) return st;
  // Memory BIOs: the test decides when handshake bytes reach the socket.
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(c->ssl_, rbio, wbio);  // the SSL owns both
  for (;;) {
    ERR_clear_error();
    int r = SSL_connect(c->ssl_);
    if (r == 1) break;
    int err = SSL_get_error(c->ssl_, r);
    if (err != SSL_ERROR_WANT_READ) return c->Failure("handshake", r);
    // The client waits for the server: send what it wrote, read more.
    if (!SendAll(c->fd_, DrainBio(wbio))) {
      return absl::UnavailableError(absl::StrCat("send: ", ErrnoText(errno)));
    }
    char buf[16384];
    ssize_t n = recv(c->fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      return absl::UnavailableError(absl::StrCat(
          "recv during handshake: ", n == 0 ? "EOF" : ErrnoText(errno),
          c->alert_->load() >= 0
              ? absl::StrCat(" [alert ", SSL_alert_desc_string_long(c->alert_->load()), "]")
              : ""));
    }
    BIO_write(rbio, buf, static_cast<int>(n));
  }
  // Handshake done on the client's side; its last flight (Finished) is still
  // in wbio. Append the request as application data and send both at once.
  size_t off = 0;
  while (off < data.size()) {
    int n = SSL_write(c->ssl_, data.data() + off, static_cast<int>(data.size() - off));
    if (n <= 0) return c->Failure("SSL_write", n);
    off += n;
  }
  const std::string flight = DrainBio(wbio);
  if (!SendAll(c->fd_, flight))
    return absl::UnavailableError(absl::StrCat("send: ", ErrnoText(errno)));
  if (BIO_pending(rbio) != 0) {
    return absl::InternalError("server bytes left unread in the handshake buffer");
  }
  // From here on the SSL talks to the socket directly.
  SSL_set_fd(c->ssl_, c->fd_);
  return c;
}

TlsClient::~TlsClient() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  if (fd_ >= 0) close(fd_);
}

std::string TlsClient::LocalAddress() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "unknown";
  return SockaddrText(ss);
}

absl::Status TlsClient::Write(absl::string_view data) {
  size_t off = 0;
  int interrupted = 0;
  while (off < data.size()) {
    ERR_clear_error();
    errno = 0;
    int n = SSL_write(ssl_, data.data() + off,
                      static_cast<int>(std::min<size_t>(data.size() - off, 1 << 20)));
    if (n <= 0 && interrupted < kMaxInterruptions && Interrupted(n)) {
      ++interrupted;
      continue;
    }
    if (n <= 0) return Failure("SSL_write", n);
    off += n;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> TlsClient::ReadExactly(size_t len) {
  std::string out(len, '\0');
  size_t off = 0;
  int interrupted = 0;
  while (off < len) {
    ERR_clear_error();
    errno = 0;
    int n =
        SSL_read(ssl_, out.data() + off, static_cast<int>(std::min<size_t>(len - off, 1 << 20)));
    if (n <= 0 && interrupted < kMaxInterruptions && Interrupted(n)) {
      ++interrupted;
      continue;
    }
    if (n <= 0) {
      absl::Status f = Failure("SSL_read", n);
      return absl::Status(f.code(),
                          absl::StrCat(f.message(), " after ", off, " of ", len, " bytes"));
    }
    off += n;
  }
  return out;
}

std::string ReadEnd::Describe() const {
  static const char* kNames[] = {"close_notify", "alert", "EOF without close_notify", "error",
                                 "timeout"};
  return absl::StrCat(
      kNames[kind], alert >= 0 ? absl::StrCat(" (", SSL_alert_desc_string_long(alert), ")") : "",
      detail.empty() ? "" : absl::StrCat(": ", detail), " after ", data.size(), " bytes");
}

ReadEnd TlsClient::ReadToEnd() {
  ReadEnd end;
  char buf[16384];
  int interrupted = 0;
  for (;;) {
    ERR_clear_error();
    errno = 0;
    int n = SSL_read(ssl_, buf, sizeof(buf));
    if (n > 0) {
      end.data.append(buf, n);
      continue;
    }
    if (interrupted < kMaxInterruptions && Interrupted(n)) {
      ++interrupted;
      continue;
    }
    const int e = errno;
    const int err = SSL_get_error(ssl_, n);
    const unsigned long first = ERR_peek_error();
    end.detail = OpenSslErrors();
    end.alert = alert_->load();
    if (err == SSL_ERROR_ZERO_RETURN) {
      end.kind = ReadEnd::kCloseNotify;
    } else if (err == SSL_ERROR_SSL &&
               ERR_GET_REASON(first) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
      end.kind = ReadEnd::kEof;
    } else if (err == SSL_ERROR_SSL && end.alert > 0) {
      end.kind = ReadEnd::kAlert;
    } else if (err == SSL_ERROR_SYSCALL && (e == EAGAIN || e == EWOULDBLOCK)) {
      end.kind = ReadEnd::kTimeout;
    } else if (err == SSL_ERROR_SYSCALL && e == 0) {
      end.kind = ReadEnd::kEof;
    } else {
      end.kind = ReadEnd::kError;
      if (end.detail.empty())
        end.detail = absl::StrCat("ssl error ", err, ", errno ", ErrnoText(e));
    }
    return end;
  }
}

void TlsClient::Close() {
  if (ssl_ != nullptr) {
    ERR_clear_error();
    SSL_shutdown(ssl_);
  }
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

// ---------------------------------------------------------------------------
// Data path assertions

TlsStatSnapshot::TlsStatSnapshot() {
  if (!KernelKtls()) return;
  absl::StatusOr<TlsStat> stat = ReadTlsStat();
  if (!stat.ok()) {
    ADD_FAILURE() << "kernel has kTLS but " << kTlsStatPath << " is unreadable: " << stat.status();
    return;
  }
  for (const auto& [k, v] : *stat) values_.push_back({k, v});
  valid_ = true;
}

int64_t TlsStatSnapshot::Delta(absl::string_view name) const {
  if (!valid_) return 0;
  absl::StatusOr<TlsStat> now = ReadTlsStat();
  if (!now.ok()) return -1;
  int64_t before = 0;
  for (const auto& [k, v] : values_) {
    if (k == name) before = v;
  }
  return TlsStatValue(*now, name) - before;
}

bool TlsStatSnapshot::Has(absl::string_view name) const {
  for (const auto& [k, v] : values_) {
    if (k == name) return true;
  }
  return false;
}

void ExpectKtlsCounters(const TlsStatSnapshot& before, int handed_off) {
  if (!KernelKtls()) return;
  EXPECT_EQ(before.Delta("TlsTxSw"), handed_off)
      << "TlsTxSw must rise by exactly one per connection tlsd handed off with kTLS";
  EXPECT_EQ(before.Delta("TlsRxSw"), handed_off)
      << "TlsRxSw must rise by exactly one per connection tlsd handed off with kTLS";
  EXPECT_EQ(before.Delta("TlsDecryptError"), 0);
}

void ExpectDataPath(const ConnRecord& rec, const TestDaemon& daemon) {
  const std::string want = ExpectedPathName();
  EXPECT_EQ(rec.tx_path_name, want)
      << "tx path of conn " << rec.connection_id << " (reason: " << rec.path_reason << ")";
  EXPECT_EQ(rec.rx_path_name, want)
      << "rx path of conn " << rec.connection_id << " (reason: " << rec.path_reason << ")";
  const int want_enum = KernelKtls() ? TLSFD_PATH_KTLS_SW : TLSFD_PATH_RELAY;
  EXPECT_EQ(rec.tx_path, want_enum);
  EXPECT_EQ(rec.rx_path, want_enum);
  absl::StatusOr<ConnLogLine> line = daemon.WaitForConnLog(rec.connection_id);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->Field("path"), absl::StrCat(want, "/", want)) << line->line;
  // With kTLS tlsd hands the socket off and relays nothing.
  EXPECT_EQ(line->Field("outcome"), KernelKtls() ? "handed-off" : "relay") << line->line;
  EXPECT_EQ(line->Field("service"), rec.service) << line->line;
  EXPECT_EQ(line->Field("backend"), rec.backend) << line->line;
}

std::string PullBackendToml(absl::string_view name, absl::string_view extra) {
  return absl::StrCat("[[backend]]\nname = \"", name, "\"\nmode = \"pull\"\nallow_uids = [",
                      getuid(), "]\n", extra, "\n");
}

std::string SimpleConfig(const DaemonEnv& env, absl::string_view service_extra,
                         absl::string_view backend_extra) {
  return absl::StrCat("[global]\ncontrol_socket = \"", env.control, "\"\nstate_dir = \"", env.dir,
                      "\"\n\n[[service]]\nname = \"web\"\nlisten = [\"127.0.0.1:", env.port(0),
                      "\"]\nbackend = \"app\"\n", service_extra,
                      "\n[[service.certificate]]\ncert = \"", env.cert, "\"\nkey = \"", env.key,
                      "\"\n\n", PullBackendToml("app", backend_extra));
}

}  // namespace integration
}  // namespace tlsd
