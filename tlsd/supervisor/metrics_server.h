#ifndef TLSD_TLSD_SUPERVISOR_METRICS_SERVER_H_
#define TLSD_TLSD_SUPERVISOR_METRICS_SERVER_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/unique_fd.h"
#include "tlsd/config/config.h"

namespace tlsd {

// MetricsServer answers `GET /metrics` over HTTP/1.0 on [global]
// metrics_listen (a loopback TCP address or a unix socket), one response per
// connection, without ever blocking the thread it runs on: a client that
// sends slowly costs a slot, not a stall. At most kMaxClients at once; when
// full, the oldest is dropped if it has had kClientTimeout, else the new one
// is answered 503.
class MetricsServer {
 public:
  static constexpr size_t kMaxClients = 16;
  static constexpr absl::Duration kClientTimeout = absl::Seconds(5);

  // Bind binds and listens (before privileges are dropped).
  static absl::StatusOr<UniqueFd> Bind(const GlobalConfig& global);
  // `render` produces the body (RenderPrometheus).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Create(UniqueFd listener,
                                                               std::function<std::string()> render);
  int fd() const { return epoll_.get(); }
  void OnReady();

 private:
  struct Client {
    UniqueFd sock;
    std::string request;
    std::string response;
    size_t sent = 0;
    absl::Time since;
  };
  MetricsServer(UniqueFd listener, UniqueFd epoll, std::function<std::string()> render)
      : listener_(std::move(listener)), epoll_(std::move(epoll)), render_(std::move(render)) {}
  void Accept();
  void OnClient(uint64_t id);
  std::string Respond(absl::string_view request) const;
  void Flush(uint64_t id);
  void Close(uint64_t id);

  UniqueFd listener_;
  UniqueFd epoll_;
  std::function<std::string()> render_;
  absl::flat_hash_map<uint64_t, Client> clients_;
  uint64_t next_id_ = 1;
};

}  // namespace tlsd

#endif  // TLSD_TLSD_SUPERVISOR_METRICS_SERVER_H_
