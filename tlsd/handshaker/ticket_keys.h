#ifndef TLSD_TLSD_HANDSHAKER_TICKET_KEYS_H_
#define TLSD_TLSD_HANDSHAKER_TICKET_KEYS_H_

#include <openssl/ssl.h>

#include "tlsd/tls/ticket_ring.h"

namespace tlsd {

// AttachTicketKeys makes `ctx` seal and open its session tickets with the
// per-ticket keys `keys` gives (ticket_ring.h): in tlsd, requests to the key
// holder, so the engine holds a ticket's keys only while OpenSSL seals or
// opens that one ticket. `keys` must outlive ctx (the ServiceTls that owns
// both guarantees that). A ticket whose keys cannot be had is not issued, or
// not accepted (a full handshake instead); the handshake goes on.
void AttachTicketKeys(SSL_CTX* ctx, TicketKeys* keys);

}  // namespace tlsd

#endif  // TLSD_TLSD_HANDSHAKER_TICKET_KEYS_H_
