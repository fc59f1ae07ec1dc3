#include "tlsd/keyholder/holder.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/base/logging.h"
#include "common/base/privileges.h"
#include "common/base/secret_bytes.h"
#include "tlsd/sandbox/seccomp_policy.h"
#include "tlsd/tls/credentials.h"
#include "tlsd/tls/ossl_error.h"
#include "tlsd/tls/ticket_ring.h"

namespace tlsd::keyholder {
namespace {

absl::Status Refused(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("refused: ", why));
}

void Send(int fd, const std::vector<uint8_t>& msg) {
  // SOCK_SEQPACKET: one message or nothing; a gone engine is seen by recv.
  (void)send(fd, msg.data(), msg.size(), MSG_NOSIGNAL);
}

SetupReply Reply(const absl::Status& s, uint32_t key_id = 0) {
  return {static_cast<int32_t>(s.code()), key_id, std::string(s.message())};
}

// What the holder keeps: the private keys and the session-ticket rings the
// engine had it load, each named by its index.
struct Secrets {
  std::vector<EvpPkeyPtr> keys;
  std::vector<std::unique_ptr<TicketKeyRing>> rings;
};

// Load handles LOAD: read and check the key, keep it, answer its id.
SetupReply Load(const LoadRequest& load, std::vector<EvpPkeyPtr>& keys) {
  absl::StatusOr<X509Ptr> leaf = LoadCertificate(load.cert_path);
  if (!leaf.ok()) return Reply(leaf.status());
  LocalPrivateKeys local;
  absl::StatusOr<EvpPkeyPtr> key = local.Key(load.cert_path, leaf->get(), load.key_path);
  if (!key.ok()) return Reply(key.status());
  keys.push_back(std::move(*key));
  return Reply(absl::OkStatus(), static_cast<uint32_t>(keys.size() - 1));
}

// LoadTickets handles LOAD_TICKETS: a ring from the file, or a random one.
SetupReply LoadTickets(const LoadTicketsRequest& req, Secrets& secrets) {
  std::unique_ptr<TicketKeyRing> ring;
  if (req.key_file.empty()) {
    ring = TicketKeyRing::Random(absl::Seconds(req.rotate_seconds));
  } else {
    absl::StatusOr<std::unique_ptr<TicketKeyRing>> loaded = TicketKeyRing::FromFile(req.key_file);
    if (!loaded.ok()) return Reply(loaded.status());
    ring = *std::move(loaded);
  }
  secrets.rings.push_back(std::move(ring));
  return Reply(absl::OkStatus(), static_cast<uint32_t>(secrets.rings.size() - 1));
}

// OnLoad answers LOAD or LOAD_TICKETS.
SetupReply OnLoad(const SetupRequest& req, Secrets& secrets) {
  return req.type == MessageType::kLoad ? Load(req.load, secrets.keys)
                                        : LoadTickets(req.tickets, secrets);
}

// Ticket answers kTicketNew and kTicketOpen with ring `ring` (layouts in
// protocol.h).
absl::StatusOr<std::vector<uint8_t>> Ticket(TicketKeyRing& ring, SignOp op,
                                            absl::Span<const uint8_t> input) {
  std::vector<uint8_t> out;
  TicketSecrets s;
  if (op == SignOp::kTicketNew) {
    absl::StatusOr<TicketSecrets> made = ring.ForNewTicket();
    if (!made.ok()) return made.status();
    s = *std::move(made);
    out.insert(out.end(), s.name.begin(), s.name.end());
    out.insert(out.end(), s.iv.begin(), s.iv.end());
  } else {
    absl::StatusOr<TicketKeyState> state = ring.ForTicket(
        input.subspan(0, kTicketNameLen), input.subspan(kTicketNameLen, kTicketIvLen), &s);
    if (!state.ok()) return state.status();
    out.push_back(static_cast<uint8_t>(*state));
    if (*state == TicketKeyState::kUnknown) return out;
  }
  out.insert(out.end(), s.hmac.span().begin(), s.hmac.span().end());
  out.insert(out.end(), s.aes.span().begin(), s.aes.span().end());
  return out;
}

// Answer performs one SIGN request: a signature, or a ticket's keys.
absl::StatusOr<std::vector<uint8_t>> Answer(const SignRequest& req, Secrets& secrets) {
  if (req.op == SignOp::kTicketNew || req.op == SignOp::kTicketOpen) {
    if (req.key_id >= secrets.rings.size()) return Refused("no such ticket ring");
    return Ticket(*secrets.rings[req.key_id], req.op, req.input);
  }
  if (req.key_id >= secrets.keys.size()) return Refused("no such key");
  return SignWith(secrets.keys[req.key_id].get(), req.op, req.input);
}

// Setup: LOAD until SEAL. Returns false when the engine went away.
bool Setup(int fd, Secrets& secrets) {
  std::vector<uint8_t> buf(kMaxSetupMessage + 1);
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    absl::StatusOr<SetupRequest> req =
        DecodeSetupRequest(absl::MakeConstSpan(buf.data(), static_cast<size_t>(n)));
    if (!req.ok()) {
      Send(fd, EncodeSetupReply(Reply(req.status())));
      continue;
    }
    if (req->type != MessageType::kSeal) {
      Send(fd, EncodeSetupReply(OnLoad(*req, secrets)));
      continue;
    }
    // SEAL: give up root like the engine does, and become untraceable by it.
    absl::StatusOr<std::string> dropped = DropPrivileges(req->seal.user, "global.user");
    if (!dropped.ok()) {
      Send(fd, EncodeSetupReply(Reply(dropped.status())));
      return false;
    }
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
      Send(fd, EncodeSetupReply(Reply(absl::InternalError("PR_SET_DUMPABLE failed"))));
      return false;
    }
    // Last: from here on the holder can only answer requests.
    absl::StatusOr<std::string> sandboxed = sandbox::ApplyRole(sandbox::Role::kKeyHolder);
    if (!sandboxed.ok()) {
      Send(fd, EncodeSetupReply(Reply(sandboxed.status())));
      return false;
    }
    Send(fd, EncodeSetupReply(Reply(absl::OkStatus(), static_cast<uint32_t>(secrets.keys.size()))));
    return true;
  }
}

// OnReload answers one message on the setup channel after SEAL: a LOAD or
// LOAD_TICKETS (a reload's), as the dropped user; nothing else.
// Returns false once the engine has closed the channel.
bool OnReload(int fd, Secrets& secrets, std::vector<uint8_t>& buf) {
  ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EINTR;
  if (n == 0) return false;
  absl::StatusOr<SetupRequest> req =
      DecodeSetupRequest(absl::MakeConstSpan(buf.data(), static_cast<size_t>(n)));
  if (!req.ok()) {
    Send(fd, EncodeSetupReply(Reply(req.status())));
  } else if (req->type == MessageType::kSeal) {
    Send(fd, EncodeSetupReply(Reply(absl::FailedPreconditionError("already sealed"))));
  } else {
    Send(fd, EncodeSetupReply(OnLoad(*req, secrets)));
  }
  return true;
}

// Serve answers SIGN on the signing channels and LOAD on the setup channel
// until the signing channels are all closed (the engine exited).
void Serve(int setup_fd, const std::vector<int>& fds, Secrets& secrets) {
  std::vector<pollfd> polls;
  for (int fd : fds) polls.push_back({fd, POLLIN, 0});
  polls.push_back({setup_fd, POLLIN, 0});
  std::vector<uint8_t> buf(kSignRequestSize + 1);
  std::vector<uint8_t> setup_buf(kMaxSetupMessage + 1);
  size_t open = fds.size();
  while (open > 0) {
    if (poll(polls.data(), polls.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (size_t i = 0; i < polls.size(); ++i) {
      pollfd& p = polls[i];
      if (p.fd < 0 || p.revents == 0) continue;
      if (i == polls.size() - 1) {
        if (!OnReload(p.fd, secrets, setup_buf)) p.fd = -1;  // no more reloads
        continue;
      }
      ssize_t n = recv(p.fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {  // the engine closed this channel (it is exiting)
        close(p.fd);
        p.fd = -1;
        --open;
        continue;
      }
      SignReply reply;
      absl::StatusOr<SignRequest> req =
          DecodeSignRequest(absl::MakeConstSpan(buf.data(), static_cast<size_t>(n)));
      if (req.ok()) {
        absl::StatusOr<std::vector<uint8_t>> out = Answer(*req, secrets);
        if (out.ok()) reply = {true, std::move(*out)};
      }
      std::vector<uint8_t> wire = EncodeSignReply(reply);
      Send(p.fd, wire);
      // A ticket's keys are secrets too (for as long as its ticket lives).
      SecureZero(wire.data(), wire.size());
      SecureZero(reply.output.data(), reply.output.size());
    }
  }
}

// Mgf1 is RFC 8017 B.2.1 (OpenSSL's PKCS1_MGF1 is deprecated).
bool Mgf1(uint8_t* mask, size_t len, const uint8_t* seed, size_t seed_len, const EVP_MD* md) {
  const size_t h_len = static_cast<size_t>(EVP_MD_get_size(md));
  std::vector<uint8_t> in(seed, seed + seed_len);
  in.resize(seed_len + 4);
  std::vector<uint8_t> h(h_len);
  for (uint32_t counter = 0, done = 0; done < len; ++counter) {
    in[seed_len] = static_cast<uint8_t>(counter >> 24);
    in[seed_len + 1] = static_cast<uint8_t>(counter >> 16);
    in[seed_len + 2] = static_cast<uint8_t>(counter >> 8);
    in[seed_len + 3] = static_cast<uint8_t>(counter);
    if (EVP_Digest(in.data(), in.size(), h.data(), nullptr, md, nullptr) != 1) return false;
    const size_t n = std::min(h_len, len - done);
    memcpy(mask + done, h.data(), n);
    done += static_cast<uint32_t>(n);
  }
  return true;
}

}  // namespace

bool IsPssEncoding(absl::Span<const uint8_t> block, int modulus_bits) {
  const size_t em_bits = static_cast<size_t>(modulus_bits - 1);
  const size_t em_len = (em_bits + 7) / 8;
  if (block.size() < em_len || block.size() - em_len > 1) return false;
  if (block.size() > em_len && block[0] != 0) return false;
  const uint8_t* em = block.data() + (block.size() - em_len);
  if (em[em_len - 1] != 0xbc) return false;
  const unsigned top_zero_bits = static_cast<unsigned>(8 * em_len - em_bits);
  if (top_zero_bits > 0 && (em[0] >> (8 - top_zero_bits)) != 0) return false;
  for (const EVP_MD* md : {EVP_sha256(), EVP_sha384(), EVP_sha512()}) {
    const size_t h_len = static_cast<size_t>(EVP_MD_get_size(md));
    if (em_len < 2 * h_len + 2) continue;
    const size_t db_len = em_len - h_len - 1;
    std::vector<uint8_t> db(db_len);
    if (!Mgf1(db.data(), db_len, em + db_len, h_len, md)) continue;
    for (size_t i = 0; i < db_len; ++i) db[i] ^= em[i];
    if (top_zero_bits > 0) db[0] &= static_cast<uint8_t>(0xff >> top_zero_bits);
    // DB = PS (zeros) || 0x01 || salt, salt as long as the hash (TLS 1.3).
    const size_t one = db_len - h_len - 1;
    bool ok = db[one] == 0x01;
    for (size_t i = 0; ok && i < one; ++i) ok = db[i] == 0;
    if (ok) return true;
  }
  return false;
}

absl::StatusOr<std::vector<uint8_t>> SignWith(EVP_PKEY* key, SignOp op,
                                              absl::Span<const uint8_t> input) {
  const int type = EVP_PKEY_get_base_id(key);
  int padding = 0;
  if (type == EVP_PKEY_EC) {
    if (op != SignOp::kEcdsaDigest) return Refused("not an ECDSA operation for an EC key");
    if (input.size() < 20 || input.size() > 64) return Refused("digest length");
  } else if (type == EVP_PKEY_RSA) {
    const size_t k = static_cast<size_t>(EVP_PKEY_get_size(key));
    if (op == SignOp::kRsaPkcs1) {
      if (input.size() + 11 > k) return Refused("PKCS#1 input too long");
      padding = RSA_PKCS1_PADDING;
    } else if (op == SignOp::kRsaPss) {
      if (input.size() != k || !IsPssEncoding(input, EVP_PKEY_get_bits(key))) {
        return Refused("not a PSS encoding");
      }
      padding = RSA_NO_PADDING;
    } else {
      return Refused("not an RSA operation for an RSA key");
    }
  } else {
    return Refused("unsupported key type");
  }
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
      (padding != 0 && EVP_PKEY_CTX_set_rsa_padding(ctx.get(), padding) != 1)) {
    return OsslError(absl::StatusCode::kInternal, "sign init");
  }
  size_t len = 0;
  if (EVP_PKEY_sign(ctx.get(), nullptr, &len, input.data(), input.size()) != 1 ||
      len > kMaxSignOutput) {
    return OsslError(absl::StatusCode::kInternal, "sign size");
  }
  std::vector<uint8_t> out(len);
  if (EVP_PKEY_sign(ctx.get(), out.data(), &len, input.data(), input.size()) != 1) {
    return OsslError(absl::StatusCode::kInternal, "sign");
  }
  out.resize(len);
  return out;
}

int RunKeyHolder(int setup_fd, const std::vector<int>& sign_fds) {
  Secrets secrets;
  if (!Setup(setup_fd, secrets)) return 1;
  Serve(setup_fd, sign_fds, secrets);
  return 0;
}

}  // namespace tlsd::keyholder
