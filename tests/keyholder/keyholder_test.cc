#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"
#include "tests/support/test_certs.h"
#include "tlsd/keyholder/client.h"
#include "tlsd/keyholder/holder.h"
#include "tlsd/keyholder/protocol.h"
#include "tlsd/tls/credentials.h"

namespace tlsd::keyholder {
namespace {

using ::testing::HasSubstr;
using ::tlsd::testing::IsOk;
using ::tlsd::testing::StatusIs;

const testing::TestCerts& Certs() {
  static const testing::TestCerts* certs = [] {
    absl::StatusOr<testing::TestCerts> c = testing::TestCerts::Generate();
    if (!c.ok()) abort();
    return new testing::TestCerts(std::move(*c));
  }();
  return *certs;
}

std::vector<uint8_t> Bytes(size_t n, uint8_t v) { return std::vector<uint8_t>(n, v); }

// --- Codecs ---------------------------------------------------------------

TEST(ProtocolTest, SignRequestRoundTripsAtItsFixedSize) {
  SignRequest in{SignOp::kEcdsaDigest, 7, Bytes(32, 0xab)};
  std::vector<uint8_t> wire = EncodeSignRequest(in);
  EXPECT_EQ(wire.size(), kSignRequestSize);
  TLSD_ASSERT_OK_AND_ASSIGN(SignRequest out, DecodeSignRequest(wire));
  EXPECT_EQ(out.op, SignOp::kEcdsaDigest);
  EXPECT_EQ(out.key_id, 7u);
  EXPECT_EQ(out.input, in.input);
}

TEST(ProtocolTest, MalformedSignRequestsAreRejected) {
  std::vector<uint8_t> good = EncodeSignRequest({SignOp::kRsaPkcs1, 0, Bytes(51, 1)});
  std::vector<uint8_t> shorter(good.begin(), good.end() - 1);
  EXPECT_THAT(DecodeSignRequest(shorter), StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  EXPECT_THAT(DecodeSignRequest(longer), StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<uint8_t> bad_type = good;
  bad_type[0] = static_cast<uint8_t>(MessageType::kLoad);
  EXPECT_THAT(DecodeSignRequest(bad_type), StatusIs(absl::StatusCode::kInvalidArgument));
  for (uint8_t op : {0, 6, 255}) {
    std::vector<uint8_t> bad_op = good;
    bad_op[1] = op;
    EXPECT_THAT(DecodeSignRequest(bad_op), StatusIs(absl::StatusCode::kInvalidArgument));
  }
  std::vector<uint8_t> zero_len = good;
  zero_len[2] = zero_len[3] = 0;
  EXPECT_THAT(DecodeSignRequest(zero_len), StatusIs(absl::StatusCode::kInvalidArgument));
  std::vector<uint8_t> huge_len = good;
  huge_len[2] = huge_len[3] = 0xff;
  EXPECT_THAT(DecodeSignRequest(huge_len), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ProtocolTest, SetupMessagesRoundTripAndSignIsNoSetupRequest) {
  TLSD_ASSERT_OK_AND_ASSIGN(SetupRequest load,
                            DecodeSetupRequest(EncodeLoad({"/a.pem", "/a.key"})));
  EXPECT_EQ(load.type, MessageType::kLoad);
  EXPECT_EQ(load.load.key_path, "/a.key");
  TLSD_ASSERT_OK_AND_ASSIGN(SetupRequest seal, DecodeSetupRequest(EncodeSeal({"nobody"})));
  EXPECT_EQ(seal.type, MessageType::kSeal);
  EXPECT_EQ(seal.seal.user, "nobody");
  EXPECT_THAT(DecodeSetupRequest(EncodeLoad({"", "/a.key"})),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(DecodeSetupRequest(EncodeSignRequest({SignOp::kEcdsaDigest, 0, Bytes(32, 1)})),
              StatusIs(absl::StatusCode::kInvalidArgument));
  TLSD_ASSERT_OK_AND_ASSIGN(SetupReply r, DecodeSetupReply(EncodeSetupReply({3, 2, "why"})));
  EXPECT_EQ(r.code, 3);
  EXPECT_EQ(r.key_id, 2u);
  EXPECT_EQ(r.message, "why");
}

TEST(ProtocolTest, TicketOperationsHaveFixedInputLengths) {
  TLSD_ASSERT_OK_AND_ASSIGN(SignRequest made,
                            DecodeSignRequest(EncodeSignRequest({SignOp::kTicketNew, 3, {}})));
  EXPECT_EQ(made.op, SignOp::kTicketNew);
  EXPECT_EQ(made.key_id, 3u);
  EXPECT_THAT(DecodeSignRequest(EncodeSignRequest({SignOp::kTicketNew, 3, Bytes(1, 0)})),
              StatusIs(absl::StatusCode::kInvalidArgument));
  TLSD_ASSERT_OK_AND_ASSIGN(
      SignRequest open,
      DecodeSignRequest(EncodeSignRequest({SignOp::kTicketOpen, 0, Bytes(32, 7)})));
  EXPECT_EQ(open.input, Bytes(32, 7));
  for (size_t len : {0, 31, 33, 64}) {
    EXPECT_THAT(DecodeSignRequest(EncodeSignRequest({SignOp::kTicketOpen, 0, Bytes(len, 7)})),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << len;
  }
  // A signing operation still needs input.
  EXPECT_THAT(DecodeSignRequest(EncodeSignRequest({SignOp::kEcdsaDigest, 0, {}})),
              StatusIs(absl::StatusCode::kInvalidArgument));

  TLSD_ASSERT_OK_AND_ASSIGN(SetupRequest file,
                            DecodeSetupRequest(EncodeLoadTickets({"/etc/t.keys", 0})));
  EXPECT_EQ(file.type, MessageType::kLoadTickets);
  EXPECT_EQ(file.tickets.key_file, "/etc/t.keys");
  TLSD_ASSERT_OK_AND_ASSIGN(SetupRequest random, DecodeSetupRequest(EncodeLoadTickets({"", 3600})));
  EXPECT_EQ(random.tickets.rotate_seconds, 3600u);
  EXPECT_THAT(DecodeSetupRequest(EncodeLoadTickets({"", 0})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rotation")));
  EXPECT_THAT(DecodeSetupRequest(EncodeLoadTickets({std::string("/a\0b", 4), 0})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad path")));
}

// --- What the holder agrees to do -----------------------------------------

TEST(SignWithTest, EcdsaSignsDigestsOnly) {
  TLSD_ASSERT_OK_AND_ASSIGN(EvpPkeyPtr key, testing::ParseKeyPem(Certs().server_ecdsa().key_pem));
  EXPECT_THAT(SignWith(key.get(), SignOp::kEcdsaDigest, Bytes(32, 1)), IsOk());
  EXPECT_THAT(SignWith(key.get(), SignOp::kEcdsaDigest, Bytes(19, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SignWith(key.get(), SignOp::kEcdsaDigest, Bytes(65, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SignWith(key.get(), SignOp::kRsaPss, Bytes(256, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SignWithTest, RsaRawOperationOnlyForAPssEncodedBlock) {
  TLSD_ASSERT_OK_AND_ASSIGN(EvpPkeyPtr key, testing::ParseKeyPem(Certs().server_rsa().key_pem));
  // A real PSS signature's block, as libssl makes it.
  EvpMdCtxPtr md(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  ASSERT_EQ(EVP_DigestSignInit(md.get(), &pctx, EVP_sha256(), nullptr, key.get()), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
  const std::string msg = "signed handshake transcript";
  size_t len = 0;
  ASSERT_EQ(EVP_DigestSign(md.get(), nullptr, &len, reinterpret_cast<const uint8_t*>(msg.data()),
                           msg.size()),
            1);
  std::vector<uint8_t> sig(len);
  ASSERT_EQ(EVP_DigestSign(md.get(), sig.data(), &len, reinterpret_cast<const uint8_t*>(msg.data()),
                           msg.size()),
            1);
  // Public operation on the signature gives back the encoded block.
  EvpPkeyCtxPtr vctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  ASSERT_EQ(EVP_PKEY_verify_recover_init(vctx.get()), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(vctx.get(), RSA_NO_PADDING), 1);
  std::vector<uint8_t> block(256);
  size_t block_len = block.size();
  ASSERT_EQ(EVP_PKEY_verify_recover(vctx.get(), block.data(), &block_len, sig.data(), sig.size()),
            1);
  block.resize(block_len);
  EXPECT_TRUE(IsPssEncoding(block, EVP_PKEY_get_bits(key.get())));
  TLSD_ASSERT_OK_AND_ASSIGN(std::vector<uint8_t> again,
                            SignWith(key.get(), SignOp::kRsaPss, block));
  EXPECT_EQ(again, sig) << "the raw private operation on the block is the signature";

  // Anything else, e.g. a ciphertext someone wants decrypted, is refused.
  std::vector<uint8_t> other = block;
  other[40] ^= 1;
  EXPECT_FALSE(IsPssEncoding(other, EVP_PKEY_get_bits(key.get())));
  EXPECT_THAT(SignWith(key.get(), SignOp::kRsaPss, other),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SignWith(key.get(), SignOp::kRsaPss, Bytes(256, 0x42)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SignWith(key.get(), SignOp::kRsaPkcs1, Bytes(246, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SignWith(key.get(), SignOp::kRsaPkcs1, Bytes(51, 1)), IsOk());
  EXPECT_THAT(SignWith(key.get(), SignOp::kEcdsaDigest, Bytes(32, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// --- The process ----------------------------------------------------------

class KeyHolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/keyholder-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_THAT(Certs().WriteTo(dir_), IsOk());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Signs `msg` with `key` (SHA-256; PSS for RSA) and verifies the
  // signature with the certificate's public key.
  static bool SignsAndVerifies(EVP_PKEY* key, EVP_PKEY* pub, bool pss) {
    const std::string msg = "the handshake transcript";
    EvpMdCtxPtr md(EVP_MD_CTX_new());
    EVP_PKEY_CTX* pctx = nullptr;
    if (EVP_DigestSignInit(md.get(), &pctx, EVP_sha256(), nullptr, key) != 1) return false;
    if (pss && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1)) {
      return false;
    }
    std::vector<uint8_t> sig(1024);
    size_t len = sig.size();
    if (EVP_DigestSign(md.get(), sig.data(), &len, reinterpret_cast<const uint8_t*>(msg.data()),
                       msg.size()) != 1) {
      return false;
    }
    EvpMdCtxPtr v(EVP_MD_CTX_new());
    EVP_PKEY_CTX* vctx = nullptr;
    if (EVP_DigestVerifyInit(v.get(), &vctx, EVP_sha256(), nullptr, pub) != 1) return false;
    if (pss && (EVP_PKEY_CTX_set_rsa_padding(vctx, RSA_PKCS1_PSS_PADDING) != 1 ||
                EVP_PKEY_CTX_set_rsa_pss_saltlen(vctx, RSA_PSS_SALTLEN_DIGEST) != 1)) {
      return false;
    }
    return EVP_DigestVerify(v.get(), sig.data(), len, reinterpret_cast<const uint8_t*>(msg.data()),
                            msg.size()) == 1;
  }

  std::string dir_;
};

TEST_F(KeyHolderTest, StandInKeysSignInTheHolderProcess) {
  TLSD_ASSERT_OK_AND_ASSIGN(std::unique_ptr<KeyHolder> holder, KeyHolder::Spawn(2));
  EXPECT_GT(holder->pid(), 0);
  std::vector<X509Ptr> leaves;
  std::vector<EvpPkeyPtr> keys;
  for (const char* name : {"server-ecdsa", "server-rsa"}) {
    const std::string cert = dir_ + "/" + name + ".pem";
    TLSD_ASSERT_OK_AND_ASSIGN(X509Ptr leaf, LoadCertificate(cert));
    TLSD_ASSERT_OK_AND_ASSIGN(EvpPkeyPtr key,
                              holder->Key(cert, leaf.get(), dir_ + "/" + name + ".key"));
    leaves.push_back(std::move(leaf));
    keys.push_back(std::move(key));
  }
  // The holder signs only once setup is over.
  ASSERT_THAT(holder->Seal(""), IsOk());
  EXPECT_TRUE(SignsAndVerifies(keys[0].get(), X509_get0_pubkey(leaves[0].get()), false));
  EXPECT_TRUE(SignsAndVerifies(keys[1].get(), X509_get0_pubkey(leaves[1].get()), /*pss=*/true));
  EXPECT_TRUE(SignsAndVerifies(keys[1].get(), X509_get0_pubkey(leaves[1].get()), /*pss=*/false));

  // After SEAL a reload may still LOAD (the answer is an id or an error,
  // never key material), but not SEAL again.
  EXPECT_THAT(holder->Key(dir_ + "/server-ecdsa.pem", leaves[0].get(), dir_ + "/client.key"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not match")));
  TLSD_ASSERT_OK_AND_ASSIGN(
      EvpPkeyPtr reloaded,
      holder->Key(dir_ + "/server-ecdsa.pem", leaves[0].get(), dir_ + "/server-ecdsa.key"));
  EXPECT_TRUE(SignsAndVerifies(reloaded.get(), X509_get0_pubkey(leaves[0].get()), false));
  EXPECT_THAT(holder->Seal(""), StatusIs(absl::StatusCode::kFailedPrecondition));
  // An unknown key id, or an operation that does not fit the key, is
  // refused, and the channel still works afterwards.
  EXPECT_THAT(holder->Sign(99, SignOp::kEcdsaDigest, Bytes(32, 1)),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(holder->Sign(1, SignOp::kRsaPss, Bytes(256, 0x42)),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(holder->Sign(0, SignOp::kEcdsaDigest, Bytes(32, 1)), IsOk());
}

// The holder's rings give the engine the keys of one ticket at a time: the
// same keys a local ring over the same file derives (so tickets move
// between tlsd instances), nothing for an unknown name, and a refusal for a
// ring that does not exist.
TEST_F(KeyHolderTest, TicketKeysComeFromTheHoldersRings) {
  const std::string file = dir_ + "/ticket.keys";
  {
    std::ofstream out(file, std::ios::binary);
    out << std::string(16, 'N') << std::string(64, 'K');
  }
  TLSD_ASSERT_OK_AND_ASSIGN(std::unique_ptr<KeyHolder> holder, KeyHolder::Spawn(1));
  TLSD_ASSERT_OK_AND_ASSIGN(std::shared_ptr<TicketKeys> shared,
                            holder->Tickets(file, absl::Hours(1)));
  TLSD_ASSERT_OK_AND_ASSIGN(std::shared_ptr<TicketKeys> random,
                            holder->Tickets("", absl::Hours(1)));
  ASSERT_THAT(holder->Seal(""), IsOk());

  LocalPrivateKeys local;
  TLSD_ASSERT_OK_AND_ASSIGN(std::shared_ptr<TicketKeys> here, local.Tickets(file, absl::Hours(1)));
  TLSD_ASSERT_OK_AND_ASSIGN(TicketSecrets sealed, shared->ForNewTicket());
  EXPECT_EQ(std::string(sealed.name.begin(), sealed.name.end()), std::string(16, 'N'));
  TicketSecrets opened;
  TLSD_ASSERT_OK_AND_ASSIGN(TicketKeyState state, here->ForTicket(sealed.name, sealed.iv, &opened));
  EXPECT_EQ(state, TicketKeyState::kCurrent);
  EXPECT_EQ(opened.hmac.span(), sealed.hmac.span());
  EXPECT_EQ(opened.aes.span(), sealed.aes.span());
  TicketSecrets back;
  TLSD_ASSERT_OK_AND_ASSIGN(state, shared->ForTicket(sealed.name, sealed.iv, &back));
  EXPECT_EQ(state, TicketKeyState::kCurrent);
  EXPECT_EQ(back.aes.span(), sealed.aes.span());
  // The random ring has other masters: the shared ring's ticket is unknown.
  TLSD_ASSERT_OK_AND_ASSIGN(state, random->ForTicket(sealed.name, sealed.iv, &back));
  EXPECT_EQ(state, TicketKeyState::kUnknown);

  // After SEAL a reload may still load a ring; errors are check-config's.
  TLSD_ASSERT_OK_AND_ASSIGN(std::shared_ptr<TicketKeys> reloaded,
                            holder->Tickets(file, absl::Hours(1)));
  TLSD_ASSERT_OK_AND_ASSIGN(state, reloaded->ForTicket(sealed.name, sealed.iv, &back));
  EXPECT_EQ(state, TicketKeyState::kCurrent);
  absl::StatusOr<std::shared_ptr<TicketKeys>> missing =
      holder->Tickets(dir_ + "/missing.keys", absl::Hours(1));
  absl::StatusOr<std::shared_ptr<TicketKeys>> missing_here =
      local.Tickets(dir_ + "/missing.keys", absl::Hours(1));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), missing_here.status().code());
  EXPECT_EQ(missing.status().message(), missing_here.status().message());
  // No such ring: refused, and the channel still works.
  EXPECT_THAT(holder->Sign(7, SignOp::kTicketNew, {}),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(holder->Sign(0, SignOp::kTicketNew, {}), IsOk());
}

TEST_F(KeyHolderTest, LoadErrorsAreTheOnesCheckConfigReports) {
  TLSD_ASSERT_OK_AND_ASSIGN(std::unique_ptr<KeyHolder> holder, KeyHolder::Spawn(1));
  const std::string cert = dir_ + "/server-ecdsa.pem";
  TLSD_ASSERT_OK_AND_ASSIGN(X509Ptr leaf, LoadCertificate(cert));
  LocalPrivateKeys local;
  for (const std::string& key : {dir_ + "/server-rsa.key", dir_ + "/missing.key"}) {
    absl::StatusOr<EvpPkeyPtr> remote = holder->Key(cert, leaf.get(), key);
    absl::StatusOr<EvpPkeyPtr> here = local.Key(cert, leaf.get(), key);
    ASSERT_FALSE(remote.ok());
    ASSERT_FALSE(here.ok());
    EXPECT_EQ(remote.status().code(), here.status().code());
    EXPECT_EQ(remote.status().message(), here.status().message());
  }
  absl::StatusOr<EvpPkeyPtr> mismatch = holder->Key(cert, leaf.get(), dir_ + "/server-rsa.key");
  EXPECT_THAT(mismatch.status().message(), HasSubstr("does not match certificate"));
}

}  // namespace
}  // namespace tlsd::keyholder
