#ifndef TLSD_TESTS_SUPPORT_STATUS_MATCHERS_H_
#define TLSD_TESTS_SUPPORT_STATUS_MATCHERS_H_

// gMock matchers for absl::Status and absl::StatusOr<T>, API-compatible with
// abseil's absl/status/status_matchers.h (absent from Debian 12's abseil), so
// a later abseil can replace these with a sed:
//
//   EXPECT_THAT(DoIt(), IsOk());
//   EXPECT_THAT(Parse(bad), StatusIs(absl::StatusCode::kInvalidArgument));
//   EXPECT_THAT(Open(p), StatusIs(absl::StatusCode::kNotFound,
//                                 HasSubstr("no such file")));
//   EXPECT_THAT(Get(), IsOkAndHolds(42));
//   TLSD_ASSERT_OK_AND_ASSIGN(auto value, Get());

#include <ostream>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tlsd {
namespace testing {
namespace internal {

inline const absl::Status& GetStatus(const absl::Status& status) { return status; }

template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

// Explains a status in a failure message as "CODE: message".
inline std::string Describe(const absl::Status& status) { return status.ToString(); }

// StatusIs(code, message_matcher) for one concrete argument type.
template <typename T>
class MonoStatusIsMatcher : public ::testing::MatcherInterface<T> {
 public:
  MonoStatusIsMatcher(::testing::Matcher<absl::StatusCode> code,
                      ::testing::Matcher<const std::string&> message)
      : code_(std::move(code)), message_(std::move(message)) {}

  void DescribeTo(std::ostream* os) const override {
    *os << "has a status code that ";
    code_.DescribeTo(os);
    *os << ", and a message that ";
    message_.DescribeTo(os);
  }
  void DescribeNegationTo(std::ostream* os) const override {
    *os << "has a status code that ";
    code_.DescribeNegationTo(os);
    *os << ", or a message that ";
    message_.DescribeNegationTo(os);
  }
  bool MatchAndExplain(T actual, ::testing::MatchResultListener* listener) const override {
    const absl::Status& status = GetStatus(actual);
    *listener << "which is " << Describe(status);
    ::testing::StringMatchResultListener inner;
    if (!code_.MatchAndExplain(status.code(), &inner)) {
      return false;
    }
    const std::string message(status.message());
    return message_.MatchAndExplain(message, &inner);
  }

 private:
  ::testing::Matcher<absl::StatusCode> code_;
  ::testing::Matcher<const std::string&> message_;
};

// The polymorphic StatusIs matcher: converts to a Matcher for Status or any
// StatusOr<T>.
class StatusIsMatcher {
 public:
  StatusIsMatcher(::testing::Matcher<absl::StatusCode> code,
                  ::testing::Matcher<const std::string&> message)
      : code_(std::move(code)), message_(std::move(message)) {}

  template <typename T>
  operator ::testing::Matcher<T>() const {  // NOLINT: implicit by design
    return ::testing::Matcher<T>(new MonoStatusIsMatcher<const std::decay_t<T>&>(code_, message_));
  }

 private:
  ::testing::Matcher<absl::StatusCode> code_;
  ::testing::Matcher<const std::string&> message_;
};

// IsOkAndHolds(m) for one concrete StatusOr<T>.
template <typename StatusOrT>
class MonoIsOkAndHoldsMatcher : public ::testing::MatcherInterface<StatusOrT> {
 public:
  using ValueType = typename std::decay_t<StatusOrT>::value_type;

  template <typename InnerMatcher>
  explicit MonoIsOkAndHoldsMatcher(InnerMatcher&& inner)
      : inner_(::testing::SafeMatcherCast<const ValueType&>(std::forward<InnerMatcher>(inner))) {}

  void DescribeTo(std::ostream* os) const override {
    *os << "is OK and has a value that ";
    inner_.DescribeTo(os);
  }
  void DescribeNegationTo(std::ostream* os) const override {
    *os << "isn't OK or has a value that ";
    inner_.DescribeNegationTo(os);
  }
  bool MatchAndExplain(StatusOrT actual, ::testing::MatchResultListener* listener) const override {
    if (!actual.ok()) {
      *listener << "which has status " << Describe(actual.status());
      return false;
    }
    ::testing::StringMatchResultListener inner_listener;
    const bool matches = inner_.MatchAndExplain(*actual, &inner_listener);
    const std::string explanation = inner_listener.str();
    if (!explanation.empty()) {
      *listener << "which contains value " << ::testing::PrintToString(*actual) << ", "
                << explanation;
    }
    return matches;
  }

 private:
  ::testing::Matcher<const ValueType&> inner_;
};

template <typename InnerMatcher>
class IsOkAndHoldsMatcher {
 public:
  explicit IsOkAndHoldsMatcher(InnerMatcher inner) : inner_(std::move(inner)) {}

  template <typename StatusOrT>
  operator ::testing::Matcher<StatusOrT>() const {  // NOLINT
    return ::testing::Matcher<StatusOrT>(
        new MonoIsOkAndHoldsMatcher<const std::decay_t<StatusOrT>&>(inner_));
  }

 private:
  InnerMatcher inner_;
};

class IsOkMatcher {
 public:
  template <typename T>
  bool MatchAndExplain(const T& actual, ::testing::MatchResultListener* listener) const {
    const absl::Status& status = GetStatus(actual);
    if (!status.ok()) {
      *listener << "which is " << Describe(status);
    }
    return status.ok();
  }
  void DescribeTo(std::ostream* os) const { *os << "is OK"; }
  void DescribeNegationTo(std::ostream* os) const { *os << "is not OK"; }
};

}  // namespace internal

// IsOk matches an OK absl::Status or an absl::StatusOr<T> that holds a value.
inline ::testing::PolymorphicMatcher<internal::IsOkMatcher> IsOk() {
  return ::testing::MakePolymorphicMatcher(internal::IsOkMatcher());
}

// StatusIs matches a Status or StatusOr<T> whose code matches `code` and whose
// message matches `message` (any message when omitted). Both arguments may be
// values or matchers.
template <typename CodeMatcher, typename MessageMatcher>
internal::StatusIsMatcher StatusIs(CodeMatcher code, MessageMatcher message) {
  return internal::StatusIsMatcher(::testing::MatcherCast<absl::StatusCode>(code),
                                   ::testing::MatcherCast<const std::string&>(message));
}
template <typename CodeMatcher>
internal::StatusIsMatcher StatusIs(CodeMatcher code) {
  return StatusIs(code, ::testing::_);
}

// IsOkAndHolds matches an OK StatusOr<T> whose value matches `inner`.
template <typename InnerMatcher>
internal::IsOkAndHoldsMatcher<std::decay_t<InnerMatcher>> IsOkAndHolds(InnerMatcher&& inner) {
  return internal::IsOkAndHoldsMatcher<std::decay_t<InnerMatcher>>(
      std::forward<InnerMatcher>(inner));
}

}  // namespace testing
}  // namespace tlsd

#define TLSD_TESTING_CONCAT_INNER_(x, y) x##y
#define TLSD_TESTING_CONCAT_(x, y) TLSD_TESTING_CONCAT_INNER_(x, y)

// TLSD_ASSERT_OK_AND_ASSIGN(lhs, expr) asserts that the StatusOr `expr` is OK
// and moves its value into `lhs` (which may declare a variable). Like
// ASSERT_*, it returns from the enclosing void function on failure.
#define TLSD_ASSERT_OK_AND_ASSIGN(lhs, expr) \
  TLSD_ASSERT_OK_AND_ASSIGN_IMPL_(TLSD_TESTING_CONCAT_(tlsd_statusor_, __LINE__), lhs, expr)
#define TLSD_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                    \
  ASSERT_TRUE(statusor.ok()) << statusor.status();           \
  lhs = std::move(statusor).value()

#endif  // TLSD_TESTS_SUPPORT_STATUS_MATCHERS_H_
