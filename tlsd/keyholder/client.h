#ifndef TLSD_TLSD_KEYHOLDER_CLIENT_H_
#define TLSD_TLSD_KEYHOLDER_CLIENT_H_

// The handshake engine's side of the key holder (holder.h): it starts the
// holder process, has it load the configured keys, and gets back, for each
// certificate, an EVP_PKEY that carries only the public key and whose
// private operations (ECDSA signatures, RSA PKCS#1 and PSS signatures) are
// requests to the holder (remote_key.h). The engine's memory never holds a
// private key.

#include <sys/types.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/base/unique_fd.h"
#include "tlsd/keyholder/protocol.h"
#include "tlsd/tls/credentials.h"

namespace tlsd::keyholder {

class KeyHolder : public PrivateKeys {
 public:
  // Spawn forks the holder with `channels` signing channels (one per thread
  // that may run handshakes; a thread waits when all are busy). Call it
  // before any thread starts and before anything is read from the network.
  static absl::StatusOr<std::unique_ptr<KeyHolder>> Spawn(size_t channels);

  // Closes the channels (the holder exits) and reaps it.
  ~KeyHolder() override;
  KeyHolder(const KeyHolder&) = delete;
  KeyHolder& operator=(const KeyHolder&) = delete;

  // PrivateKeys: the holder loads and checks the key (errors as
  // LocalPrivateKeys reports them); the result is a stand-in for it.
  absl::StatusOr<EvpPkeyPtr> Key(const std::string& cert_path, X509* leaf,
                                 const std::string& key_path) override;
  // PrivateKeys: the holder makes the ring (and reads the file); the result
  // asks it for each ticket's keys.
  absl::StatusOr<std::shared_ptr<TicketKeys>> Tickets(const std::string& key_file,
                                                      absl::Duration rotate) override;

  // Seal ends setup: the holder becomes `user` (as the engine will), applies
  // its seccomp profile and from then on takes SIGN on the signing channels
  // and only LOAD (for a reload; the key is then read as `user`) on the
  // setup channel.
  absl::Status Seal(const std::string& user);

  // Sign asks for one operation with key `key_id` (a ticket ring's id for
  // the ticket operations; waits for a free channel; bounded by a 5 s reply
  // timeout).
  absl::StatusOr<std::vector<uint8_t>> Sign(uint32_t key_id, SignOp op,
                                            absl::Span<const uint8_t> input);

  pid_t pid() const { return pid_; }
  // Alive is false once the holder process has exited (it is then reaped);
  // DeathReason says how ("exited with status 1", "was killed by signal 9").
  bool Alive();
  const std::string& DeathReason() const { return death_; }

 private:
  KeyHolder() = default;
  absl::StatusOr<SetupReply> Setup(const std::vector<uint8_t>& request);

  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string death_;
  std::mutex setup_mu_;
  UniqueFd setup_;
  std::vector<UniqueFd> channels_;
  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<int> free_;  // channel fds not in use
};

}  // namespace tlsd::keyholder

#endif  // TLSD_TLSD_KEYHOLDER_CLIENT_H_
