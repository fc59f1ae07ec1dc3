#ifndef TLSD_LIBTLSFD_SRC_CONTROL_RELAY_H_
#define TLSD_LIBTLSFD_SRC_CONTROL_RELAY_H_

// The worker's half of the control-record relay (ARCHITECTURE.md "Control
// records"): a TLS handshake message that arrives on a kTLS socket after the
// handshake (a TLS 1.3 KeyUpdate, a TLS 1.2 HelloRequest or ClientHello) can
// only be answered by tlsd, which owns the TLS state. The library hands it
// over with the socket and the connection's sealed state, and acts on the
// verdict.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/wire/messages.h"

namespace tlsfd::internal {

// How long a read waits for tlsd's verdict. tlsd answers from its event loop
// without blocking; this only bounds a tlsd that is gone or wedged.
inline constexpr absl::Duration kControlVerdictTimeout = absl::Seconds(10);

// AskTlsd connects to tlsd's control socket, sends one CONTROL_RECORD with
// `fd` attached and waits for the answer. Errors: tlsd's own refusal (its
// ERROR frame: EPERM when the sealed state does not belong to `fd`, EINVAL
// for a socket that is not a kTLS connection), ETIMEDOUT, or the connect /
// send / receive failure, each with a message naming the control socket.
absl::StatusOr<tlsd::ControlVerdict> AskTlsd(const std::string& control_socket, int fd,
                                             uint8_t record_type, absl::Span<const uint8_t> payload,
                                             absl::string_view sealed_state,
                                             absl::Duration timeout = kControlVerdictTimeout);

}  // namespace tlsfd::internal

#endif  // TLSD_LIBTLSFD_SRC_CONTROL_RELAY_H_
