#include "tlsd/supervisor/daemon.h"

#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/base/exit_codes.h"
#include "common/base/logging.h"
#include "common/base/privileges.h"
#include "common/ipc/seqpacket.h"
#include "tlsd/handshaker/connector.h"
#include "tlsd/handshaker/engine.h"
#include "tlsd/keyholder/client.h"
#include "tlsd/sandbox/seccomp_policy.h"
#include "tlsd/supervisor/admin.h"
#include "tlsd/supervisor/control_service.h"
#include "tlsd/supervisor/listeners.h"
#include "tlsd/supervisor/metrics_server.h"
#include "tlsd/supervisor/metrics_text.h"
#include "tlsd/supervisor/reload.h"
#include "tlsd/tls/ktls.h"

namespace tlsd {
namespace {

// The FileDescriptorName= tlsd-control.socket gives the control socket.
constexpr char kControlFdName[] = "control";
// The name under which the sealing key sits in systemd's fd store.
constexpr char kSealingKeyFdName[] = "sealing-key";

// RaiseFdLimit takes the hard RLIMIT_NOFILE as the soft one: every
// connection is an fd, and the usual soft limit of 1024 exists for programs
// that use select(), which tlsd does not. Returns the limit in force.
rlim_t RaiseFdLimit() {
  rlimit l{};
  if (getrlimit(RLIMIT_NOFILE, &l) != 0) return 0;
  if (l.rlim_cur < l.rlim_max) {
    rlimit raised{l.rlim_max, l.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) l = raised;
  }
  return l.rlim_cur;
}

absl::Status MakeParentDir(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return absl::OkStatus();
  const std::string dir = path.substr(0, slash);
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("mkdir ", dir, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

// WaitForSignal waits for SIGTERM/SIGINT/SIGHUP and returns it, or returns
// 0 if the key holder died (no handshake can complete without it: tlsd must
// stop and be restarted). Under a systemd watchdog (WatchdogSec=) it pings
// at half the interval, as long as every handshake thread has gone round its
// loop within the interval: a thread stuck (in OpenSSL, say) stops the
// pings and systemd restarts tlsd.
int WaitForSignal(const sigset_t& signals, const std::vector<std::unique_ptr<Engine>>& engines,
                  keyholder::KeyHolder& keys) {
  uint64_t usec = 0;
  const bool watchdog = sd_watchdog_enabled(0, &usec) > 0 && usec > 0;
  const absl::Duration interval = absl::Microseconds(static_cast<int64_t>(usec));
  if (watchdog) {
    TLSD_LOG(Info) << "systemd watchdog: pinging every " << absl::FormatDuration(interval / 2);
  }
  const timespec tick =
      absl::ToTimespec(watchdog ? std::min(interval / 2, absl::Seconds(1)) : absl::Seconds(1));
  absl::Time last_ping = absl::InfinitePast();
  bool stalled = false;
  for (;;) {
    int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig > 0) return sig;
    if (!keys.Alive()) return 0;
    if (!watchdog) continue;
    const absl::Time now = absl::Now();
    if (now - last_ping < interval / 2 - absl::Milliseconds(5)) continue;
    size_t late = engines.size();
    for (size_t i = 0; i < engines.size(); ++i) {
      if (now - engines[i]->LastLoop() > interval) late = i;
    }
    if (late == engines.size()) {
      sd_notify(0, "WATCHDOG=1");
      last_ping = now;
      stalled = false;
    } else if (!stalled) {
      TLSD_LOG(Error) << "handshake thread " << late << " has not run for "
                      << absl::FormatDuration(now - engines[late]->LastLoop())
                      << ": no more watchdog pings";
      stalled = true;
    }
  }
}

// Drain stops accepting and lets the handshakes in progress and the
// connections waiting for a backend finish, bounded by the longest
// handshake plus queue timeout (30 s at most), then gives relayed
// connections half a second to finish what they are doing: a restart under
// socket activation loses no client - new ones wait in the listening
// socket's backlog for the next process. Connections handed off with kTLS
// are the workers' and never depended on this process.
void Drain(const Runtime& rt, const std::vector<std::unique_ptr<Engine>>& engines) {
  uint32_t limit_ms = 0;
  for (const ServiceConfig& s : rt.config.services) {
    limit_ms = std::max(limit_ms, s.handshake_timeout_ms);
  }
  uint32_t queue_ms = 0;
  for (const BackendConfig& b : rt.config.backends) {
    queue_ms = std::max(queue_ms, b.queue_timeout_ms);
  }
  const absl::Time start = absl::Now();
  const absl::Time deadline =
      start + absl::Milliseconds(std::min<uint32_t>(limit_ms + queue_ms, 30000));
  for (const auto& e : engines) e->BeginDrain();
  auto all = [&](bool (Engine::*done)() const) {
    for (const auto& e : engines) {
      if (!((*e).*done)()) return false;
    }
    return true;
  };
  while (!all(&Engine::Drained) && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  const bool drained = all(&Engine::Drained);
  const absl::Time grace = std::min(deadline, absl::Now() + absl::Milliseconds(500));
  while (!all(&Engine::Idle) && absl::Now() < grace) absl::SleepFor(absl::Milliseconds(10));
  TLSD_LOG(Info) << (drained ? "drained" : "drain deadline passed") << " after "
                 << absl::FormatDuration(absl::Now() - start)
                 << (all(&Engine::Idle) ? "" : "; closing relayed connections");
}

}  // namespace

absl::Status BuildServices(Runtime& rt, PrivateKeys& keys) {
  rt.services.clear();
  for (const ServiceConfig& svc : rt.config.services) {
    auto runtime = std::make_unique<ServiceRuntime>();
    runtime->index = rt.services.size();
    runtime->config = &svc;
    runtime->limiter = std::make_unique<SourceLimiter>(svc.max_handshakes_per_source,
                                                       svc.handshakes_per_second_per_source,
                                                       svc.handshakes_per_second);
    absl::StatusOr<std::unique_ptr<ServiceTls>> tls =
        ServiceTls::Create(svc, rt.config.source, keys);
    if (!tls.ok()) return tls.status();
    runtime->SetTls(std::move(*tls));
    rt.services.push_back(std::move(runtime));
  }
  rt.client_profiles.clear();
  for (const ClientProfileConfig& profile : rt.config.client_profiles) {
    absl::StatusOr<std::unique_ptr<ClientTls>> tls =
        ClientTls::Create(profile, rt.config.source, keys);
    if (!tls.ok()) return tls.status();
    rt.client_profiles.push_back(std::move(*tls));
  }
  return absl::OkStatus();
}

int RunDaemon(Config config, unsigned threads_override) {
  // Writes to a socket whose peer left must fail with EPIPE, not kill us
  // (OpenSSL writes with write(2), which has no MSG_NOSIGNAL).
  signal(SIGPIPE, SIG_IGN);
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);  // reload
  // Blocked before any thread starts, so only sigwait below receives them.
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const rlim_t fd_limit = RaiseFdLimit();
  auto rt = std::make_unique<Runtime>();
  rt->fd_limit = fd_limit;
  rt->config = std::move(config);
  const GlobalConfig& global = rt->config.global;
  rt->num_threads = threads_override != 0 ? threads_override
                    : global.threads != 0 ? global.threads
                                          : std::max(1u, std::thread::hardware_concurrency());
  // The key holder first: from here on this process never reads a key file.
  // A channel per handshake thread, one for the connector, one spare.
  absl::StatusOr<std::unique_ptr<keyholder::KeyHolder>> holder =
      keyholder::KeyHolder::Spawn(rt->num_threads + 2);
  if (!holder.ok()) {
    TLSD_LOG(Error) << holder.status().message();
    return kExitOsErr;
  }
  keyholder::KeyHolder* keys = holder->get();
  rt->private_keys = std::move(*holder);
  TLSD_LOG(Info) << "key holder pid " << keys->pid() << "; file descriptor limit " << fd_limit;
  if (absl::Status s = BuildServices(*rt, *keys); !s.ok()) {
    TLSD_LOG(Error) << s.message();
    return kExitConfig;
  }
  // Every key is loaded: the holder becomes global.user too and takes
  // nothing but signing requests from now on.
  if (absl::Status s = keys->Seal(global.user); !s.ok()) {
    TLSD_LOG(Error) << s.message();
    return absl::IsInvalidArgument(s) ? kExitConfig : kExitOsErr;
  }
  rt->backends = std::make_unique<Backends>(rt->config);

  absl::StatusOr<SystemdSockets> activated = SystemdSockets::Take();
  if (!activated.ok()) {
    TLSD_LOG(Error) << activated.status().message();
    return kExitOsErr;
  }
  for (const auto& svc : rt->services) {
    const ServiceConfig& c = *svc->config;
    if (!c.systemd_socket.empty()) {
      absl::StatusOr<UniqueFd> fd = activated->TakeTcpListener(c.systemd_socket);
      if (!fd.ok()) {
        TLSD_LOG(Error) << "service '" << c.name << "': " << fd.status().message();
        return kExitOsErr;
      }
      rt->listeners.push_back(
          {std::move(*fd), svc.get(), absl::StrCat("systemd:", c.systemd_socket)});
    }
    for (const ListenAddress& addr : c.listen) {
      absl::StatusOr<UniqueFd> fd = ListenTcp(addr);
      if (!fd.ok()) {
        TLSD_LOG(Error) << "service '" << c.name << "': " << fd.status().message();
        return kExitOsErr;
      }
      rt->listeners.push_back({std::move(*fd), svc.get(), addr.text});
    }
  }

  // The sealing key: the previous process's, if systemd's fd store kept it
  // across a restart (so workers' control records keep working), else a new
  // one, which goes into the store (FileDescriptorStoreMax= in the unit).
  if (absl::StatusOr<UniqueFd> kept = activated->TakeFd(kSealingKeyFdName); kept.ok()) {
    absl::StatusOr<std::unique_ptr<Sealer>> sealer = Sealer::FromFd(kept->get());
    if (!sealer.ok()) {
      TLSD_LOG(Error) << sealer.status().message();
      return kExitOsErr;
    }
    rt->sealer = std::move(*sealer);
    TLSD_LOG(Notice) << "sealing key: the one from before the restart (fd '" << kSealingKeyFdName
                     << "')";
  } else if (getenv("NOTIFY_SOCKET") != nullptr) {
    absl::StatusOr<UniqueFd> memfd = rt->sealer->KeyMemfd();
    int fd = memfd.ok() ? memfd->get() : -1;
    if (fd < 0 || sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDNAME=sealing-key", &fd, 1) <= 0) {
      TLSD_LOG(Warning) << "sealing key: could not store it with systemd; control records of "
                           "connections handed off now will not survive a restart";
    } else {
      TLSD_LOG(Info) << "sealing key: new, kept in systemd's fd store";
    }
  }

  absl::StatusOr<UniqueFd> control = activated->TakeUnixListener(kControlFdName);
  if (!control.ok() && absl::IsNotFound(control.status())) {
    if (absl::Status s = MakeParentDir(global.control_socket); !s.ok()) {
      TLSD_LOG(Error) << s.message();
      return kExitOsErr;
    }
    // World-connectable on purpose: who may do what is decided per request
    // from SO_PEERCRED, and a refused peer is told why.
    control = ListenSeqpacket(global.control_socket, 0666);
  }
  if (!control.ok()) {
    TLSD_LOG(Error) << "control socket: " << control.status().message();
    return kExitOsErr;
  }
  UniqueFd metrics_listener;
  if (global.metrics_address.has_value() || !global.metrics_socket_path.empty()) {
    if (!global.metrics_socket_path.empty()) {
      if (absl::Status s = MakeParentDir(global.metrics_socket_path); !s.ok()) {
        TLSD_LOG(Error) << s.message();
        return kExitOsErr;
      }
    }
    absl::StatusOr<UniqueFd> fd = MetricsServer::Bind(global);
    if (!fd.ok()) {
      TLSD_LOG(Error) << "metrics_listen " << global.metrics_text << ": " << fd.status().message();
      return kExitOsErr;
    }
    metrics_listener = std::move(*fd);
  }
  if (!KernelHasTlsUlp()) {
    TLSD_LOG(Notice) << "kernel has no TLS ULP (CONFIG_TLS): services with ktls = prefer relay "
                        "in user space; services with ktls = require refuse connections";
  }
  // Everything that needed root is done: sockets bound, keys loaded, the tls
  // module loaded by the probe above. Nothing has been read from a client.
  if (absl::StatusOr<std::string> dropped = DropPrivileges(global.user, "global.user");
      !dropped.ok()) {
    TLSD_LOG(Error) << dropped.status().message();
    return absl::IsInvalidArgument(dropped.status()) ? kExitConfig : kExitOsErr;
  } else {
    TLSD_LOG(Notice) << *dropped;
  }
  if (absl::StatusOr<std::string> sandboxed = sandbox::ApplyRole(sandbox::Role::kEngine);
      !sandboxed.ok()) {
    TLSD_LOG(Error) << sandboxed.status().message();
    return kExitOsErr;
  } else {
    TLSD_LOG(Info) << *sandboxed;
  }

  std::vector<std::unique_ptr<Engine>> engines;
  for (unsigned i = 0; i < rt->num_threads; ++i) {
    auto engine = std::make_unique<Engine>(*rt, i);
    if (absl::Status s = engine->Init(); !s.ok()) {
      TLSD_LOG(Error) << s.message();
      return kExitOsErr;
    }
    engines.push_back(std::move(engine));
  }
  // Outgoing connections the kernel cannot take are relayed by engine 0.
  Engine* relay_engine = engines[0].get();
  auto connector = std::make_unique<Connector>(
      *rt, [relay_engine](Engine::OutgoingRelay r) { relay_engine->AdoptRelay(std::move(r)); });
  std::string listening;
  for (const Listener& l : rt->listeners) {
    absl::StrAppend(&listening, listening.empty() ? "" : " ", l.description);
  }
  Admin admin(*rt, *keys, listening);
  absl::StatusOr<std::unique_ptr<ControlService>> control_service =
      ControlService::Create(std::move(*control), *rt->backends, *rt->sealer, rt->control_policy,
                             rt->client_profiles, *connector, admin, global.admin_gid, rt->metrics);
  if (!control_service.ok()) {
    TLSD_LOG(Error) << control_service.status().message();
    return kExitOsErr;
  }

  ControlService* cs = control_service->get();
  if (absl::Status s = engines[0]->AddExternal(cs->fd(), [cs] { cs->OnReady(); }); !s.ok()) {
    TLSD_LOG(Error) << s.message();
    return kExitOsErr;
  }

  std::unique_ptr<MetricsServer> metrics_server;
  if (metrics_listener.valid()) {
    const Runtime* r = rt.get();
    absl::StatusOr<std::unique_ptr<MetricsServer>> m =
        MetricsServer::Create(std::move(metrics_listener), [r] { return RenderPrometheus(*r); });
    if (!m.ok()) {
      TLSD_LOG(Error) << m.status().message();
      return kExitOsErr;
    }
    metrics_server = std::move(*m);
    MetricsServer* ms = metrics_server.get();
    if (absl::Status s = engines[0]->AddExternal(ms->fd(), [ms] { ms->OnReady(); }); !s.ok()) {
      TLSD_LOG(Error) << s.message();
      return kExitOsErr;
    }
    TLSD_LOG(Info) << "metrics on " << global.metrics_text << " (GET /metrics)";
  }

  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (auto& engine : engines) {
    threads.emplace_back([&engine, &stop] { engine->Run(stop); });
  }
  TLSD_LOG(Notice) << "tlsd ready: " << rt->services.size() << " service(s), " << rt->num_threads
                   << " handshake thread(s), listening on " << listening << ", control socket "
                   << global.control_socket;
  sd_notifyf(0, "READY=1\nSTATUS=serving %zu service(s) on %s", rt->services.size(),
             listening.c_str());

  int sig;
  while ((sig = WaitForSignal(stop_signals, engines, *keys)) == SIGHUP) {
    (void)admin.Reload();  // logged and reported to systemd there
  }
  if (sig == 0) {
    TLSD_LOG(Error) << "key holder (pid " << keys->pid() << ") " << keys->DeathReason()
                    << ": no handshake can complete; stopping";
    sd_notify(0, "STOPPING=1\nSTATUS=key holder died");
    stop = true;
    for (auto& t : threads) t.join();
    return kExitFailure;
  }
  TLSD_LOG(Notice) << "signal " << sig << ": stopping";
  sd_notify(0, "STOPPING=1");
  Drain(*rt, engines);
  stop = true;
  for (auto& t : threads) t.join();
  return kExitOk;
}

}  // namespace tlsd
