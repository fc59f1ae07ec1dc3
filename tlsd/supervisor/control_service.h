#ifndef TLSD_TLSD_SUPERVISOR_CONTROL_SERVICE_H_
#define TLSD_TLSD_SUPERVISOR_CONTROL_SERVICE_H_

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/base/unique_fd.h"
#include "common/ipc/seqpacket.h"
#include "tlsd/control/control_records.h"
#include "tlsd/control/sealed_state.h"
#include "tlsd/handshaker/client_tls.h"
#include "tlsd/handshaker/connector.h"
#include "tlsd/supervisor/admin.h"
#include "tlsd/supervisor/backends.h"

namespace tlsd {

using ClientProfiles = std::vector<std::unique_ptr<ClientTls>>;

// ControlService answers local peers on tlsd's control socket.
//  - HELLO{backend}: tlsd checks the backend exists, is a pull backend, and
//    that the peer's SO_PEERCRED uid/gid is allowed, then answers HELLO_OK and
//    from then on sends it CONNECTION frames; or answers ERROR and closes.
//  - CONTROL_RECORD (+ the kTLS socket): answered with CONTROL_VERDICT, or
//    ERROR when the sealed state does not belong to that socket. Any number
//    per peer; the socket is closed after each answer.
//  - CONNECT{profile, host, port, ...}: the peer's SO_PEERCRED must be
//    allowed by the client profile and the destination must match one of its
//    patterns (else ERROR EACCES, logged); then the Connector sets the
//    connection up and answers CONNECT_REPLY (+ the socket) or ERROR with the
//    same request id. Any number per peer, answered in completion order.
//  - ADMIN_REQUEST{command}: root or a member of [global] admin_group only
//    (else ERROR EACCES, logged); answered with ADMIN_REPLY chunks holding
//    Admin's JSON. Any number per peer.
// A peer that sends anything malformed is closed; nothing else is affected.
class ControlService {
 public:
  // Create serves `listener` (a listening SOCK_SEQPACKET socket).
  static absl::StatusOr<std::unique_ptr<ControlService>> Create(
      UniqueFd listener, Backends& backends, const Sealer& sealer,
      const ControlRecordPolicy& policy, const ClientProfiles& profiles, Connector& connector,
      Admin& admin, std::optional<uint32_t> admin_gid, GlobalMetrics& metrics);
  // fd is readable when OnReady has work; add it to an event loop.
  int fd() const { return epoll_.get(); }
  // OnReady accepts new peers and handles their frames, without blocking.
  void OnReady();

 private:
  struct Peer {
    std::shared_ptr<WorkerLink> link;
    Backend* subscribed = nullptr;
  };
  ControlService(UniqueFd listener, UniqueFd epoll, Backends& backends, const Sealer& sealer,
                 const ControlRecordPolicy& policy, const ClientProfiles& profiles,
                 Connector& connector, Admin& admin, std::optional<uint32_t> admin_gid,
                 GlobalMetrics& metrics)
      : listener_(std::move(listener)),
        epoll_(std::move(epoll)),
        backends_(backends),
        sealer_(sealer),
        policy_(policy),
        profiles_(profiles),
        connector_(connector),
        admin_(admin),
        admin_gid_(admin_gid),
        metrics_(metrics) {}
  void OnHello(uint64_t id, Frame& frame);
  void OnConnect(uint64_t id, Frame& frame);
  void OnControlRecord(uint64_t id, Frame& frame);
  void OnAdmin(uint64_t id, Frame& frame);
  void Accept();
  void OnPeer(uint64_t id);
  void Refuse(uint64_t id, int code, const std::string& why);
  void Close(uint64_t id);

  UniqueFd listener_;
  UniqueFd epoll_;
  Backends& backends_;
  const Sealer& sealer_;
  const ControlRecordPolicy& policy_;
  const ClientProfiles& profiles_;
  Connector& connector_;
  Admin& admin_;
  const std::optional<uint32_t> admin_gid_;
  GlobalMetrics& metrics_;
  absl::flat_hash_map<uint64_t, Peer> peers_;
  uint64_t next_id_ = 1;
};

}  // namespace tlsd

#endif  // TLSD_TLSD_SUPERVISOR_CONTROL_SERVICE_H_
