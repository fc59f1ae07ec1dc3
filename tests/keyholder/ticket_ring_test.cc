// The session-ticket rings the key holder keeps (tlsd/tls/ticket_ring.h):
// per-ticket keys derived from a master, key names that say which master,
// rotation, and the shared key file.

#include "tlsd/tls/ticket_ring.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/status_matchers.h"

namespace tlsd {
namespace {

using ::testing::HasSubstr;
using ::tlsd::testing::StatusIs;

std::string Hex(const SecretBytes& b) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}

// Opens the ticket `sealed` was made for with `ring`.
TicketKeyState Open(TicketKeys& ring, const TicketSecrets& sealed, TicketSecrets* out) {
  absl::StatusOr<TicketKeyState> state = ring.ForTicket(sealed.name, sealed.iv, out);
  EXPECT_TRUE(state.ok()) << state.status();
  return state.value_or(TicketKeyState::kUnknown);
}

class KeyFile {
 public:
  // Entries of 16 name bytes `name` and 64 key bytes `key`.
  explicit KeyFile(const std::vector<std::pair<uint8_t, uint8_t>>& entries) {
    char tmpl[] = "/tmp/ticket-ring-test.XXXXXX";
    int fd = mkstemp(tmpl);
    path_ = tmpl;
    std::string bytes;
    for (auto [name, key] : entries) {
      bytes += std::string(16, static_cast<char>(name));
      bytes += std::string(64, static_cast<char>(key));
    }
    EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    close(fd);
  }
  ~KeyFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(TicketRingTest, DerivationIsHkdfSha256OfTheMasterWithNameAndIv) {
  // Known answer, computed independently (Python's hmac module, RFC 5869).
  std::vector<uint8_t> master(64);
  for (size_t i = 0; i < master.size(); ++i) master[i] = static_cast<uint8_t>(i);
  TicketSecrets s;
  for (size_t i = 0; i < 16; ++i) {
    s.name[i] = static_cast<uint8_t>(0xa0 + i);
    s.iv[i] = static_cast<uint8_t>(0x10 + i);
  }
  ASSERT_TRUE(DeriveTicketSecrets(master, &s).ok());
  EXPECT_EQ(Hex(s.hmac), "5a4dd1842314e903b110f511a9b21e0d5ac2c073c474e79c9e55d8b1dc1d3322");
  EXPECT_EQ(Hex(s.aes), "2570d9bc584338bff077af34aef907647924cc5c3f177ab5a5fbc92a20994ff7");
}

TEST(TicketRingTest, EveryTicketHasItsOwnKeysAndOpensWithThem) {
  std::unique_ptr<TicketKeyRing> ring = TicketKeyRing::Random(absl::Hours(1));
  absl::StatusOr<TicketSecrets> a = ring->ForNewTicket();
  absl::StatusOr<TicketSecrets> b = ring->ForNewTicket();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->name, b->name) << "one current master";
  EXPECT_NE(a->iv, b->iv);
  EXPECT_NE(Hex(a->hmac), Hex(b->hmac));
  EXPECT_NE(Hex(a->aes), Hex(b->aes));
  EXPECT_EQ(a->hmac.size(), kTicketKeyLen);
  EXPECT_EQ(a->aes.size(), kTicketKeyLen);

  TicketSecrets opened;
  EXPECT_EQ(Open(*ring, *a, &opened), TicketKeyState::kCurrent);
  EXPECT_EQ(Hex(opened.hmac), Hex(a->hmac));
  EXPECT_EQ(Hex(opened.aes), Hex(a->aes));

  // Another ring's ticket: its key name is unknown here.
  std::unique_ptr<TicketKeyRing> other = TicketKeyRing::Random(absl::Hours(1));
  EXPECT_EQ(Open(*other, *a, &opened), TicketKeyState::kUnknown);
  EXPECT_THAT(ring->ForTicket(absl::MakeConstSpan(a->name).subspan(1), a->iv, &opened),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TicketRingTest, RandomKeysRotateAndTheOldOneOpensForOnePeriod) {
  std::unique_ptr<TicketKeyRing> ring = TicketKeyRing::Random(absl::Seconds(1));
  absl::StatusOr<TicketSecrets> old = ring->ForNewTicket();
  ASSERT_TRUE(old.ok());
  absl::SleepFor(absl::Milliseconds(1100));
  absl::StatusOr<TicketSecrets> fresh = ring->ForNewTicket();
  ASSERT_TRUE(fresh.ok());
  EXPECT_NE(fresh->name, old->name) << "rotated";
  TicketSecrets opened;
  EXPECT_EQ(Open(*ring, *old, &opened), TicketKeyState::kRenew);
  EXPECT_EQ(Hex(opened.aes), Hex(old->aes));
  absl::SleepFor(absl::Milliseconds(1100));
  EXPECT_EQ(Open(*ring, *old, &opened), TicketKeyState::kUnknown) << "two periods: gone";
}

TEST(TicketRingTest, AFleetSharingAKeyFileOpensEachOthersTickets) {
  KeyFile before({{0x0b, 0xbb}});
  KeyFile after({{0x0a, 0xaa}, {0x0b, 0xbb}});  // rotated: a new first entry
  absl::StatusOr<std::unique_ptr<TicketKeyRing>> one = TicketKeyRing::FromFile(before.path());
  absl::StatusOr<std::unique_ptr<TicketKeyRing>> two = TicketKeyRing::FromFile(after.path());
  ASSERT_TRUE(one.ok() && two.ok());
  absl::StatusOr<TicketSecrets> t = (*one)->ForNewTicket();
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->name, (std::array<uint8_t, 16>{0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
                                              0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b}));
  TicketSecrets opened;
  EXPECT_EQ(Open(**two, *t, &opened), TicketKeyState::kRenew) << "not the first entry";
  EXPECT_EQ(Hex(opened.hmac), Hex(t->hmac));
  EXPECT_EQ(Hex(opened.aes), Hex(t->aes));
  absl::StatusOr<TicketSecrets> t2 = (*two)->ForNewTicket();
  ASSERT_TRUE(t2.ok());
  EXPECT_EQ(t2->name[0], 0x0a);
  EXPECT_EQ(Open(**one, *t2, &opened), TicketKeyState::kUnknown);
}

TEST(TicketRingTest, KeyFileErrorsNameTheFile) {
  EXPECT_THAT(TicketKeyRing::FromFile("/nonexistent/ticket.keys"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/ticket.keys")));
  KeyFile good({{1, 2}});
  std::ofstream(good.path(), std::ios::app) << "x";
  EXPECT_THAT(TicketKeyRing::FromFile(good.path()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(": must hold one or more 80-byte keys, has 81 bytes")));
}

}  // namespace
}  // namespace tlsd
