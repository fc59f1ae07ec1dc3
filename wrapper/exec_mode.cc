#include "wrapper/exec_mode.h"

#include <errno.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/base/unique_fd.h"
#include "libtlsfd/include/tlsfd.h"
#include "wrapper/conn_env.h"

extern char** environ;

namespace tlswrap {
namespace {

using tlsd::UniqueFd;

// WriteAll writes all of `data` to the plain socket `fd`; false if the
// reader is gone.
bool WriteAll(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

bool TlsWriteAll(tlsfd_conn* c, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = tlsfd_write(c, data, len);
    if (n == -EINTR) continue;
    if (n <= 0) return false;
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  for (std::string& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

// Spawn starts the command with `child_end` as stdin and stdout (stderr is
// tls-wrap's) and the connection's environment.
absl::Status Spawn(const ExecOptions& options, const tlsfd_info& info, int child_end, pid_t* pid) {
  std::vector<std::string> base;
  for (char** e = environ; *e != nullptr; ++e) base.emplace_back(*e);
  std::vector<std::string> env = MergeEnv(base, ConnEnv(info));
  std::vector<std::string> argv = options.command;
  std::vector<char*> envp = Pointers(env);
  std::vector<char*> argvp = Pointers(argv);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 clears close-on-exec on the copies; everything else of ours
  // (the connection's socket, tls-wrap's subscription) is close-on-exec.
  posix_spawn_file_actions_adddup2(&actions, child_end, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, child_end, STDOUT_FILENO);
  const int rc = posix_spawnp(pid, argvp[0], &actions, nullptr, argvp.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return absl::InternalError(absl::StrCat(argv[0], ": ", strerror(rc)));
  return absl::OkStatus();
}

// Serve runs the command for one connection and copies between the two
// until both sides are done.
void Serve(const ExecOptions& options, tlsfd_conn* conn) {
  tlsfd_info info{};
  info.struct_size = sizeof(info);
  tlsfd_conn_info(conn, &info);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    fprintf(stderr, "tls-wrap: connection %llu: socketpair: %s\n",
            static_cast<unsigned long long>(info.connection_id), strerror(errno));
    tlsfd_close(conn);
    return;
  }
  UniqueFd ours(sv[0]);
  UniqueFd theirs(sv[1]);
  pid_t pid = -1;
  if (absl::Status s = Spawn(options, info, theirs.get(), &pid); !s.ok()) {
    fprintf(stderr, "tls-wrap: connection %llu: %s\n",
            static_cast<unsigned long long>(info.connection_id), std::string(s.message()).c_str());
    tlsfd_close(conn);
    return;
  }
  theirs.Reset();

  // Client -> command, in a thread of its own: tlsfd_read may block (and
  // may handle a control record) while the command writes.
  std::string read_end = "end-of-stream";
  std::thread inbound([&] {
    char buf[16384];
    for (;;) {
      ssize_t n = tlsfd_read(conn, buf, sizeof(buf));
      if (n == -EINTR) continue;
      if (n <= 0) {
        if (n < 0) read_end = tlsfd_strerror(static_cast<int>(n));
        break;
      }
      if (!WriteAll(ours.get(), buf, static_cast<size_t>(n))) break;
    }
    // The command reads end-of-file.
    shutdown(ours.get(), SHUT_WR);
  });

  // Command -> client, here; at its end of output, close_notify.
  char buf[16384];
  for (;;) {
    ssize_t n = read(ours.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (!TlsWriteAll(conn, buf, static_cast<size_t>(n))) break;
  }
  tlsfd_shutdown(conn);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // The command is done: stop reading a client that has not closed.
  shutdown(tlsfd_conn_fd(conn), SHUT_RD);
  inbound.join();
  fprintf(stderr, "tls-wrap: connection %llu from %s: %s exited %d; client %s\n",
          static_cast<unsigned long long>(info.connection_id), info.peer,
          options.command[0].c_str(),
          WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), read_end.c_str());
  tlsfd_close(conn);
}

}  // namespace

absl::Status RunExecMode(const ExecOptions& options) {
  tlsfd_server* srv = nullptr;
  if (int rc =
          tlsfd_server_subscribe(options.control_socket.c_str(), options.backend.c_str(), &srv);
      rc < 0) {
    return absl::UnavailableError(absl::StrCat("subscribing to backend '", options.backend, "' at ",
                                               options.control_socket, ": ", tlsfd_last_error()));
  }
  fprintf(stderr, "tls-wrap: serving backend '%s' with %s (at most %d at once)\n",
          options.backend.c_str(), options.command[0].c_str(), options.max_children);
  std::mutex mu;
  std::condition_variable cv;
  int active = 0;
  absl::Status result;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return active < options.max_children; });
    }
    tlsfd_conn* conn = nullptr;
    const int rc = tlsfd_accept(srv, &conn, 0);
    if (rc == -EINTR || rc == -EAGAIN) continue;
    if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM) {
      // That connection is lost; the subscription is not. Let some finish.
      fprintf(stderr, "tls-wrap: accept: %s\n", tlsfd_last_error());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (rc < 0) {
      result = absl::UnavailableError(absl::StrCat("accept: ", tlsfd_last_error()));
      break;
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      ++active;
    }
    std::thread([&, conn] {
      Serve(options, conn);
      std::lock_guard<std::mutex> lock(mu);
      --active;
      cv.notify_all();
    }).detach();
  }
  // Let the connections in progress finish before the state they use goes.
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return active == 0; });
  tlsfd_server_free(srv);
  return result;
}

}  // namespace tlswrap
