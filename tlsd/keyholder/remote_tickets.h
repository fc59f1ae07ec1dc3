#ifndef TLSD_TLSD_KEYHOLDER_REMOTE_TICKETS_H_
#define TLSD_TLSD_KEYHOLDER_REMOTE_TICKETS_H_

// RemoteTicketKeys is the engine's stand-in for a ticket ring the key holder
// keeps: each ticket's keys are one request to the holder (kTicketNew,
// kTicketOpen), so the engine never holds a ring's masters.

#include <stdint.h>

#include <memory>

#include "tlsd/tls/ticket_ring.h"

namespace tlsd::keyholder {

class KeyHolder;

// MakeRemoteTicketKeys returns the ring `ring_id` of `holder`, which must
// outlive it.
std::shared_ptr<TicketKeys> MakeRemoteTicketKeys(KeyHolder* holder, uint32_t ring_id);

}  // namespace tlsd::keyholder

#endif  // TLSD_TLSD_KEYHOLDER_REMOTE_TICKETS_H_
