#include "tlsd/supervisor/backends.h"

#include <errno.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/errno_status.h"
#include "common/base/logging.h"
#include "common/ipc/seqpacket.h"

namespace tlsd {

bool PeerAllowed(const struct ucred& cred, const std::vector<uint32_t>& uids,
                 const std::vector<uint32_t>& gids) {
  return std::find(uids.begin(), uids.end(), cred.uid) != uids.end() ||
         std::find(gids.begin(), gids.end(), cred.gid) != gids.end();
}

bool Backend::Allowed(const struct ucred& cred) const {
  // A push backend without lists takes any peer (documented in config.md).
  if (config_.allow_uids.empty() && config_.allow_gids.empty()) return true;
  return PeerAllowed(cred, config_.allow_uids, config_.allow_gids);
}

absl::StatusOr<std::shared_ptr<WorkerLink>> Backend::ConnectPush() {
  absl::StatusOr<UniqueFd> sock = ConnectSeqpacket(config_.socket_path, /*nonblock=*/true);
  if (!sock.ok()) return sock.status();
  absl::StatusOr<struct ucred> cred = PeerCredentials(sock->get());
  if (!cred.ok()) return cred.status();
  if (!Allowed(*cred)) {
    // Whoever bound the path is not the backend we were told to trust: it
    // gets no connections.
    return absl::PermissionDeniedError(absl::StrCat(
        "backend '", config_.name, "': socket ", config_.socket_path, " is served by uid ",
        cred->uid, " gid ", cred->gid, ", not an allowed uid/gid"));
  }
  auto link = std::make_shared<WorkerLink>();
  link->sock = std::move(*sock);
  link->cred = *cred;
  return link;
}

absl::Status Backend::Handoff(const ConnectionInfo& info, int fd) {
  const std::vector<uint8_t> payload = info.Encode();
  std::vector<std::shared_ptr<WorkerLink>> snapshot;
  size_t start;
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot = links_;
    start = next_++;
  }
  bool reconnected = false;
  absl::Status last =
      absl::UnavailableError(absl::StrCat("backend '", config_.name, "': no worker connected"));
  for (size_t attempt = 0;; ++attempt) {
    if (attempt >= snapshot.size()) {
      // Push backends get one fresh link per handoff attempt at most, so a
      // dead backend costs one failed connect(), not a loop.
      if (config_.mode != BackendMode::kPush || reconnected) break;
      reconnected = true;
      absl::StatusOr<std::shared_ptr<WorkerLink>> link = ConnectPush();
      if (!link.ok()) {
        last = absl::UnavailableError(link.status().message());
        break;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        links_.push_back(*link);
      }
      snapshot.push_back(*link);
    }
    const std::shared_ptr<WorkerLink>& link = snapshot[(start + attempt) % snapshot.size()];
    absl::Status sent =
        SendFrame(link->sock.get(), MsgType::kConnection, 0, payload, fd, MSG_DONTWAIT);
    if (sent.ok()) return absl::OkStatus();
    if (IsErrno(sent, EAGAIN)) {
      last = absl::UnavailableError(
          absl::StrCat("backend '", config_.name, "': worker queues are full"));
      continue;
    }
    // EPIPE/ECONNRESET: that worker is gone. Forget it and try the next.
    Drop(link.get());
    last = absl::UnavailableError(absl::StrCat("backend '", config_.name, "': ", sent.message()));
  }
  return last;
}

void Backend::AddSubscriber(std::shared_ptr<WorkerLink> link) {
  std::lock_guard<std::mutex> lock(mu_);
  links_.push_back(std::move(link));
}

void Backend::RemoveSubscriber(const WorkerLink* link) { Drop(link); }

void Backend::Drop(const WorkerLink* link) {
  std::lock_guard<std::mutex> lock(mu_);
  links_.erase(
      std::remove_if(links_.begin(), links_.end(), [&](const auto& l) { return l.get() == link; }),
      links_.end());
}

size_t Backend::NumWorkers() {
  std::lock_guard<std::mutex> lock(mu_);
  return links_.size();
}

bool Backend::TryReserveQueueSlot() {
  uint32_t cur = queued_.load();
  while (cur < config_.queue_limit) {
    if (queued_.compare_exchange_weak(cur, cur + 1)) return true;
  }
  return false;
}

void Backend::ReleaseQueueSlot() { queued_.fetch_sub(1); }

Backends::Backends(const Config& config) {
  for (const BackendConfig& b : config.backends) {
    by_name_.emplace(b.name, std::make_unique<Backend>(b));
  }
}

Backend* Backends::Find(absl::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second.get();
}

}  // namespace tlsd
