// History's text form: one operation per line, exact round trip, readable
// errors naming the line.
#include "sim/history.h"

#include <algorithm>
#include <string>

#include <gtest/gtest.h>

namespace keel::sim {
namespace {

History every_kind_of_operation() {
  History h;
  h.record({.client = 1,
            .key = "k1",
            .kind = OpKind::kPut,
            .value = "v1",
            .call_time = 0,
            .return_time = 10});
  h.record({.client = 2,
            .key = "k1",
            .kind = OpKind::kGet,
            .output = "v1",
            .call_time = 5,
            .return_time = 15});
  h.record({.client = 3,
            .key = "k1",
            .kind = OpKind::kGet,
            .output = std::nullopt,
            .call_time = -7,
            .return_time = 3});
  h.record({.client = 4,
            .key = "k1",
            .kind = OpKind::kCas,
            .value = "v2",
            .expected = "v1",
            .cas_succeeded = true,
            .call_time = 20,
            .return_time = 30});
  h.record({.client = 5,
            .key = "k1",
            .kind = OpKind::kCas,
            .value = "v3",
            .expected = "v9",
            .outcome = Outcome::kUnknown,
            .call_time = 21,
            .return_time = 21});
  h.record({.client = 6,
            .key = "k2",
            .kind = OpKind::kDelete,
            .outcome = Outcome::kFailed,
            .call_time = 40,
            .return_time = 50});
  h.record({.client = 7,
            .key = "k2",
            .kind = OpKind::kGet,
            .output = "stale",
            .call_time = 41,
            .return_time = 42,
            .checked = false});
  h.record({.client = 18446744073709551615ULL,
            .key = "",
            .kind = OpKind::kPut,
            .value = "",
            .outcome = Outcome::kUnknown,
            .call_time = 60,
            .return_time = 70});
  return h;
}

TEST(HistoryText, RoundTripReproducesEveryField) {
  const History original = every_kind_of_operation();
  Result<History> parsed = History::from_text(original.to_text());
  ASSERT_TRUE(parsed.is_ok()) << parsed.status();
  EXPECT_EQ(*parsed, original);
}

TEST(HistoryText, OneReadableLinePerOperation) {
  History h;
  h.record({.client = 3,
            .key = "k1",
            .kind = OpKind::kPut,
            .value = "v7",
            .call_time = 100,
            .return_time = 250});
  h.record({.client = 1,
            .key = "k1",
            .kind = OpKind::kGet,
            .output = std::nullopt,
            .call_time = 310,
            .return_time = 400});
  h.record({.client = 2,
            .key = "k1",
            .kind = OpKind::kCas,
            .value = "v8",
            .expected = "v7",
            .outcome = Outcome::kUnknown,
            .call_time = 130,
            .return_time = 900});
  EXPECT_EQ(h.to_text(),
            "# keel-sim history: one operation per line (sim/history.h)\n"
            "client=3 call=100 return=250 ok put key=\"k1\" value=\"v7\"\n"
            "client=1 call=310 return=400 ok get key=\"k1\" output=absent\n"
            "client=2 call=130 return=900 unknown cas key=\"k1\" expected=\"v7\" value=\"v8\" "
            "succeeded=false\n");
}

TEST(HistoryText, AnyByteStringSurvivesQuoting) {
  const std::string awkward =
      std::string("a \"quoted\" \\ value\nwith = # and ") + std::string(1, '\0') + "\xc3\xa9\t\r";
  History h;
  h.record({.client = 1,
            .key = awkward,
            .kind = OpKind::kCas,
            .value = awkward,
            .expected = awkward,
            .call_time = 1,
            .return_time = 2});
  h.record({.client = 1,
            .key = awkward,
            .kind = OpKind::kGet,
            .output = awkward,
            .call_time = 3,
            .return_time = 4});
  const std::string text = h.to_text();
  EXPECT_EQ(text.find('\0'), std::string::npos);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);  // header and two operations
  Result<History> parsed = History::from_text(text);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status();
  EXPECT_EQ(*parsed, h);
  EXPECT_EQ(quoted("a\"b\n"), "\"a\\\"b\\x0a\"");
}

TEST(HistoryText, FieldsInAnyOrderCommentsBlankLinesAndCrlfAreAccepted) {
  Result<History> parsed = History::from_text(
      "# a comment\n"
      "\n"
      "   \n"
      "get ok key=\"k\" return=9 call=4 output=\"x\" client=2\r\n"
      "  # indented comment\n");
  ASSERT_TRUE(parsed.is_ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 1U);
  const Operation& op = parsed->operations()[0];
  EXPECT_EQ(op.client, 2U);
  EXPECT_EQ(op.kind, OpKind::kGet);
  EXPECT_EQ(op.output, std::optional<std::string>("x"));
  EXPECT_EQ(op.call_time, 4);
  EXPECT_EQ(op.return_time, 9);
  EXPECT_TRUE(op.checked);
}

TEST(HistoryText, QuotedAbsentIsAValueNotAnAbsentKey) {
  Result<History> parsed = History::from_text(
      "client=1 call=0 return=1 ok get key=\"k\" output=\"absent\"\n"
      "client=1 call=2 return=3 ok get key=\"k\" output=absent\n");
  ASSERT_TRUE(parsed.is_ok()) << parsed.status();
  EXPECT_EQ(parsed->operations()[0].output, std::optional<std::string>("absent"));
  EXPECT_EQ(parsed->operations()[1].output, std::nullopt);
}

void expect_error(const std::string& text, const std::string& fragment) {
  Result<History> parsed = History::from_text(text);
  ASSERT_FALSE(parsed.is_ok()) << "accepted: " << text;
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(parsed.status().message().find(fragment), std::string::npos)
      << parsed.status().message();
}

TEST(HistoryText, MalformedLinesAreRejectedWithTheirLineNumber) {
  const std::string good = "client=1 call=0 return=1 ok put key=\"k\" value=\"v\"\n";
  expect_error(good + "client=1 call=0 return=1 ok put key=\"k\" colour=\"v\"\n",
               "line 2: unknown field 'colour'");
  expect_error("client=1 call=0 return=1 ok key=\"k\"\n", "line 1: no operation kind");
  expect_error("client=1 call=0 return=1 put key=\"k\"\n", "no outcome");
  expect_error("client=1 call=0 ok put key=\"k\"\n", "needs both call= and return=");
  expect_error("client=1 call=5 return=1 ok put key=\"k\"\n", "returns before its call");
  expect_error("client=1 call=x return=1 ok put key=\"k\"\n", "'call' is not an integer");
  expect_error("client=1 call=0 return=1 ok put key=k\n", "'key' must be a quoted string");
  expect_error("client=1 call=0 return=1 ok put key=\"k\n", "unterminated quoted string");
  expect_error("client=1 call=0 return=1 ok put key=\"\\q\"\n", "bad escape");
  expect_error("client=1 call=0 return=1 ok put key=\"k\"x\n", "text after the closing quote");
  expect_error("client=1 call=0 return=1 ok get get key=\"k\"\n", "two operation kinds");
  expect_error("client=1 call=0 return=1 ok failed put key=\"k\"\n", "two outcomes");
  expect_error("client=1 call=0 return=1 ok cas key=\"k\" succeeded=yes\n",
               "'succeeded' is not true or false");
  expect_error("client=1 call=0 return=1 ok put key=\"k\" =\"v\"\n", "a field without a name");
  expect_error("client=1 call=0 return=1 ok put key=\"k\" frobnicate\n",
               "unknown word 'frobnicate'");
}

TEST(HistoryDeathTest, RecordingAnOperationThatReturnsBeforeItsCallAborts) {
  History h;
  EXPECT_DEATH(h.record({.call_time = 10, .return_time = 9}), "returns no earlier than");
}

}  // namespace
}  // namespace keel::sim
