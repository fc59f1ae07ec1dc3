// libFuzzer target for the sealed per-connection state
// (tlsd/control/sealed_state.h): the blob a worker hands back to tlsd with
// every control record. Workers are not trusted, so Sealer::Open sees
// arbitrary bytes; behind the AES-256-GCM check sits the state decoder,
// which only tlsd-made plaintext should reach. With the fixed key of
// sealed_state_fuzz.h the fuzzer can seal plaintext of its own and test the
// decoder too.
//
// Input: u8 mode | rest.
//   mode % 3 == 0: rest is a blob, opened for the addresses LocalA/PeerA;
//   mode % 3 == 1: rest is a state plaintext, sealed here (SealRaw) for
//                  LocalA/PeerA and opened;
//   mode % 3 == 2: rest is read leniently as local | peer | state fields,
//                  sealed with Sealer::Seal and opened.
//
// Oracles, beyond the sanitizers:
//   - Open rejects with kInvalidArgument and a "sealed state: " message;
//   - a blob that opens does not open for other addresses, nor with any
//     byte changed;
//   - seal -> open is the identity on states, and open -> seal reproduces
//     the plaintext exactly (the state codec is a bijection on what opens);
//   - authentic plaintext that does not decode says so ("authentic but
//     malformed"), never "does not authenticate".

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/wire/messages.h"
#include "tests/fuzz/fuzz_oracle.h"
#include "tests/fuzz/sealed_state_fuzz.h"
#include "tlsd/control/sealed_state.h"

namespace tlsd {
namespace {

using fuzz::LocalA;
using fuzz::LocalB;
using fuzz::PeerA;
using fuzz::PeerB;

bool SameSecret(const SecretBytes& a, const SecretBytes& b) {
  return a.size() == b.size() && (a.size() == 0 || memcmp(a.data(), b.data(), a.size()) == 0);
}

bool SameState(const ConnState& a, const ConnState& b) {
  return a.is_server == b.is_server && a.tls_version == b.tls_version &&
         a.cipher_suite == b.cipher_suite && a.connection_id == b.connection_id &&
         a.rx_generation == b.rx_generation && a.tx_generation == b.tx_generation &&
         SameSecret(a.rx_secret, b.rx_secret) && SameSecret(a.tx_secret, b.tx_secret) &&
         a.rx_key_hash == b.rx_key_hash && a.tx_key_hash == b.tx_key_hash &&
         a.window_records == b.window_records && a.window_start_ms == b.window_start_ms;
}

void RequireRejected(const absl::Status& s) {
  FUZZ_REQUIRE(s.code() == absl::StatusCode::kInvalidArgument);
  FUZZ_REQUIRE(absl::StartsWith(s.message(), "sealed state: "));
}

const Sealer& TheSealer() {
  static const Sealer* sealer = [] {
    std::unique_ptr<Sealer> s = fuzz::FixedSealer();
    // sealed_state_fuzz.h's copy of the format must match Sealer's, or
    // modes 0 and 1 would only ever test the authentication failure.
    ConnState probe;
    probe.connection_id = 42;
    std::vector<uint8_t> plain;
    if (!fuzz::OpenRaw(s->Seal(probe, LocalA(), PeerA()), LocalA(), PeerA(), &plain)) {
      fprintf(stderr, "sealed_state_fuzz.h no longer matches Sealer's blob format\n");
      abort();
    }
    return s.release();
  }();
  return *sealer;
}

// CheckOpened: `blob` opened for (local, peer) as `state`.
void CheckOpened(absl::string_view blob, const ConnState& state, const WireAddress& local,
                 const WireAddress& peer) {
  const Sealer& sealer = TheSealer();
  // Bound to the addresses.
  const WireAddress& other_local = local == LocalB() ? LocalA() : LocalB();
  const WireAddress& other_peer = peer == PeerB() ? PeerA() : PeerB();
  absl::StatusOr<ConnState> moved = sealer.Open(blob, other_local, peer);
  FUZZ_REQUIRE(!moved.ok());
  RequireRejected(moved.status());
  moved = sealer.Open(blob, local, other_peer);
  FUZZ_REQUIRE(!moved.ok());
  RequireRejected(moved.status());
  if (!(local == peer)) FUZZ_REQUIRE(!sealer.Open(blob, peer, local).ok());

  // Any changed byte breaks it (one position, chosen by the blob itself).
  std::string tampered(blob);
  const size_t at = static_cast<uint8_t>(blob[blob.size() / 2]) % blob.size();
  tampered[at] = static_cast<char>(tampered[at] ^ 0x01);
  FUZZ_REQUIRE(!sealer.Open(tampered, local, peer).ok());

  // open -> seal -> open is the identity, and the plaintext is the same.
  const std::string again = sealer.Seal(state, local, peer);
  absl::StatusOr<ConnState> reopened = sealer.Open(again, local, peer);
  FUZZ_REQUIRE(reopened.ok() && SameState(*reopened, state));
  std::vector<uint8_t> plain_in, plain_again;
  FUZZ_REQUIRE(fuzz::OpenRaw(blob, local, peer, &plain_in));
  FUZZ_REQUIRE(fuzz::OpenRaw(again, local, peer, &plain_again));
  FUZZ_REQUIRE(plain_in == plain_again);
}

// Reader hands out the input's bytes, then zeros.
struct Reader {
  absl::Span<const uint8_t> in;
  uint8_t U8() {
    if (in.empty()) return 0;
    const uint8_t v = in[0];
    in.remove_prefix(1);
    return v;
  }
  uint64_t Uint(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | U8();
    return v;
  }
  WireAddress Address() {
    WireAddress a;
    a.family = U8();
    for (uint8_t& b : a.addr) b = U8();
    a.port = static_cast<uint16_t>(Uint(2));
    return a;
  }
  SecretBytes Secret() {
    SecretBytes s(U8() % 65);  // tlsd's are 0 (TLS 1.2), 32 or 48 bytes
    for (size_t i = 0; i < s.size(); ++i) s.data()[i] = U8();
    return s;
  }
};

}  // namespace
}  // namespace tlsd

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tlsd;
  if (size < 1) return 0;
  const Sealer& sealer = TheSealer();
  const absl::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      absl::StatusOr<ConnState> s = sealer.Open(rest, LocalA(), PeerA());
      if (s.ok()) {
        CheckOpened(rest, *s, LocalA(), PeerA());
      } else {
        RequireRejected(s.status());
      }
      break;
    }
    case 1: {
      const std::string blob =
          fuzz::SealRaw(absl::MakeConstSpan(data + 1, size - 1), 0x5a, LocalA(), PeerA());
      absl::StatusOr<ConnState> s = sealer.Open(blob, LocalA(), PeerA());
      if (s.ok()) {
        CheckOpened(blob, *s, LocalA(), PeerA());
      } else {
        FUZZ_REQUIRE(s.status().code() == absl::StatusCode::kInvalidArgument);
        FUZZ_REQUIRE(s.status().message() == "sealed state: authentic but malformed");
      }
      break;
    }
    case 2: {
      Reader r{absl::MakeConstSpan(data + 1, size - 1)};
      const WireAddress local = r.Address();
      const WireAddress peer = r.Address();
      ConnState state;
      state.is_server = (r.U8() & 1) != 0;
      state.tls_version = static_cast<uint16_t>(r.Uint(2));
      state.cipher_suite = static_cast<uint16_t>(r.Uint(2));
      state.connection_id = r.Uint(8);
      state.rx_generation = static_cast<uint32_t>(r.Uint(4));
      state.tx_generation = static_cast<uint32_t>(r.Uint(4));
      state.rx_secret = r.Secret();
      state.tx_secret = r.Secret();
      for (uint8_t& b : state.rx_key_hash) b = r.U8();
      for (uint8_t& b : state.tx_key_hash) b = r.U8();
      state.window_records = static_cast<uint32_t>(r.Uint(4));
      state.window_start_ms = r.Uint(8);
      const std::string blob = sealer.Seal(state, local, peer);
      absl::StatusOr<ConnState> s = sealer.Open(blob, local, peer);
      FUZZ_REQUIRE(s.ok() && SameState(*s, state));
      CheckOpened(blob, *s, local, peer);
      break;
    }
  }
  return 0;
}
