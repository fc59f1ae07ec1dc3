// The "what does tlsfd_read do with record type T and payload P" decision,
// table-driven: every row is one case of RFC 8446 6 / RFC 5246 7.2 as
// libtlsfd applies them.

#include "libtlsfd/src/record_policy.h"

#include <errno.h>

#include <ostream>
#include <string>
#include <vector>

#include "common/ktls/record_io.h"
#include "gtest/gtest.h"

namespace tlsfd::internal {

// For readable failures.
void PrintTo(const RecordDecision& d, std::ostream* os) {
  *os << "{" << RecordActionName(d.action) << ", alert " << d.alert << ", error " << d.error
      << ", reply " << d.reply_alert << "}";
}

namespace {

constexpr uint16_t k12 = 0x0303;
constexpr uint16_t k13 = 0x0304;

struct Row {
  const char* name;
  uint8_t type;
  std::vector<uint8_t> payload;
  uint16_t version;
  RecordDecision want;
};

const RecordDecision kData{RecordAction::kData, -1, 0, -1};
RecordDecision Eos() { return {RecordAction::kEndOfStream, tlsd::kAlertCloseNotify, 0, -1}; }
RecordDecision Skip(int alert) { return {RecordAction::kSkip, alert, 0, -1}; }
RecordDecision Fatal(int alert) { return {RecordAction::kFatalAlert, alert, -ECONNRESET, -1}; }
RecordDecision Proto(int reply) { return {RecordAction::kProtocolError, -1, -EPROTO, reply}; }
const RecordDecision kHandshake{RecordAction::kHandshake, -1, -EPROTO, -1};

const std::vector<Row>& Rows() {
  static const std::vector<Row> rows = {
      // Application data, whatever it holds.
      {"data", 23, {'h', 'i'}, k13, kData},
      {"data_tls12", 23, {0x15, 0x03}, k12, kData},
      {"data_empty", 23, {}, k13, kData},

      // close_notify ends the stream at either level, in either version.
      {"close_notify_warning_13", 21, {1, 0}, k13, Eos()},
      {"close_notify_warning_12", 21, {1, 0}, k12, Eos()},
      {"close_notify_fatal", 21, {2, 0}, k13, Eos()},

      // Fatal alerts reset the connection and are remembered.
      {"handshake_failure", 21, {2, 40}, k13, Fatal(40)},
      {"bad_record_mac", 21, {2, 20}, k12, Fatal(20)},
      {"internal_error", 21, {2, 80}, k13, Fatal(80)},
      {"unknown_description_fatal", 21, {2, 201}, k12, Fatal(201)},
      {"user_canceled_fatal", 21, {2, 90}, k13, Fatal(90)},

      // user_canceled (warning) is a closure alert: skip, close_notify follows.
      {"user_canceled_13", 21, {1, 90}, k13, Skip(90)},
      {"user_canceled_12", 21, {1, 90}, k12, Skip(90)},

      // TLS 1.2 warnings are skipped; TLS 1.3 treats them as errors.
      {"no_renegotiation_warning_12", 21, {1, 100}, k12, Skip(100)},
      {"unrecognized_name_warning_12", 21, {1, 112}, k12, Skip(112)},
      {"unknown_description_warning_12", 21, {1, 222}, k12, Skip(222)},
      {"no_renegotiation_warning_13", 21, {1, 100}, k13, Fatal(100)},
      {"bad_certificate_warning_13", 21, {1, 42}, k13, Fatal(42)},
      {"unknown_description_warning_13", 21, {1, 222}, k13, Fatal(222)},

      // Malformed alerts: decode_error.
      {"alert_empty", 21, {}, k13, Proto(tlsd::kAlertDecodeError)},
      {"alert_one_byte", 21, {2}, k13, Proto(tlsd::kAlertDecodeError)},
      {"alert_coalesced", 21, {1, 0, 1, 0}, k12, Proto(tlsd::kAlertDecodeError)},
      {"alert_level_zero", 21, {0, 40}, k13, Proto(tlsd::kAlertDecodeError)},
      {"alert_level_three", 21, {3, 0}, k12, Proto(tlsd::kAlertDecodeError)},

      // Post-handshake handshake messages: for tlsd (the control-record relay).
      {"key_update", 22, {24, 0, 0, 1, 1}, k13, kHandshake},
      {"new_session_ticket", 22, {4, 0, 0, 0}, k13, kHandshake},
      {"hello_request", 22, {0, 0, 0, 0}, k12, kHandshake},
      {"client_hello_renegotiation", 22, {1, 0, 0, 0}, k12, kHandshake},
      {"handshake_empty", 22, {}, k13, kHandshake},

      // Record types that may not appear after the handshake.
      {"change_cipher_spec_13", 20, {1}, k13, Proto(tlsd::kAlertUnexpectedMessage)},
      {"change_cipher_spec_12", 20, {1}, k12, Proto(tlsd::kAlertUnexpectedMessage)},
      {"heartbeat", 24, {1, 0, 0}, k12, Proto(tlsd::kAlertUnexpectedMessage)},
      {"type_zero", 0, {}, k13, Proto(tlsd::kAlertUnexpectedMessage)},
      {"type_255", 255, {1, 2}, k13, Proto(tlsd::kAlertUnexpectedMessage)},
  };
  return rows;
}

class DecideRecordTest : public ::testing::TestWithParam<Row> {};

TEST_P(DecideRecordTest, Decides) {
  const Row& r = GetParam();
  EXPECT_EQ(DecideRecord(r.type, r.payload, r.version), r.want);
}

INSTANTIATE_TEST_SUITE_P(Table, DecideRecordTest, ::testing::ValuesIn(Rows()),
                         [](const ::testing::TestParamInfo<Row>& info) {
                           return std::string(info.param.name);
                         });

TEST(DecideRecordTest, EveryRecordTypeIsClassified) {
  // No type falls through to an unintended action: only 21/22/23 are anything
  // but a protocol error.
  for (int t = 0; t < 256; ++t) {
    RecordDecision d = DecideRecord(static_cast<uint8_t>(t), {}, k13);
    if (t == 23) {
      EXPECT_EQ(d.action, RecordAction::kData);
    } else if (t == 22) {
      EXPECT_EQ(d.action, RecordAction::kHandshake);
    } else {
      EXPECT_EQ(d.action, RecordAction::kProtocolError) << "type " << t;
      EXPECT_EQ(d.error, -EPROTO);
    }
  }
}

TEST(DecideRecordTest, EveryAlertEitherEndsSkipsOrFails) {
  for (int level = 1; level <= 2; ++level) {
    for (int desc = 0; desc < 256; ++desc) {
      for (uint16_t v : {k12, k13}) {
        const uint8_t p[2] = {static_cast<uint8_t>(level), static_cast<uint8_t>(desc)};
        RecordDecision d = DecideRecord(21, p, v);
        EXPECT_EQ(d.alert, desc);
        EXPECT_EQ(d.reply_alert, -1) << "never answer a well-formed alert";
        if (desc == 0) {
          EXPECT_EQ(d.action, RecordAction::kEndOfStream);
        } else if (d.action == RecordAction::kSkip) {
          EXPECT_EQ(level, 1);
          EXPECT_TRUE(v == k12 || desc == 90);
        } else {
          EXPECT_EQ(d.action, RecordAction::kFatalAlert);
          EXPECT_EQ(d.error, -ECONNRESET);
        }
      }
    }
  }
}

TEST(RecordActionNameTest, Names) {
  EXPECT_STREQ(RecordActionName(RecordAction::kData), "data");
  EXPECT_STREQ(RecordActionName(RecordAction::kEndOfStream), "end_of_stream");
  EXPECT_STREQ(RecordActionName(RecordAction::kSkip), "skip");
  EXPECT_STREQ(RecordActionName(RecordAction::kFatalAlert), "fatal_alert");
  EXPECT_STREQ(RecordActionName(RecordAction::kHandshake), "handshake");
  EXPECT_STREQ(RecordActionName(RecordAction::kProtocolError), "protocol_error");
}

}  // namespace
}  // namespace tlsfd::internal
