// The JSON-lines history format of keel-kv's chaos tests (docs/kv.md, "History
// format"): every field maps onto sim::Operation, every malformed line is
// rejected with its line number and the field at fault, and the parsed
// history gets the verdict the linearizability checker would give.
#include "history_json.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sim/history.h"
#include "sim/linearizability.h"

namespace keel::sim {
namespace {

// One line of a history: the fields shared by every operation, then `rest`.
std::string line(const std::string& op, const std::string& outcome, std::int64_t call,
                 std::int64_t ret, const std::string& rest = "") {
  return R"({"client":1,"op":")" + op + R"(","key":"k","outcome":")" + outcome + R"(","call":)" +
         std::to_string(call) + R"(,"return":)" + std::to_string(ret) + rest + "}\n";
}

// A valid first line, so that the errors below are on line 2.
const std::string kGoodLine = line("put", "ok", 0, 10, R"(,"value":"v0")");

std::string error_of(const std::string& text) {
  Result<History> parsed = parse_history_json_lines(text);
  EXPECT_FALSE(parsed.is_ok()) << "accepted:\n" << text;
  return parsed.is_ok() ? std::string() : parsed.status().message();
}

// --- what a good history becomes ---------------------------------------------------

TEST(HistoryJson, EveryKindOfOperationMapsOntoItsOperation) {
  const std::string text =
      R"({"client":3,"op":"put","key":"k1","value":"v7","outcome":"ok","call":100,"return":250})"
      "\n"
      R"({"client":1,"op":"get","key":"k1","found":true,"value":"v7","outcome":"ok","call":120,"return":300})"
      "\n"
      R"({"client":1,"op":"get","key":"k1","found":false,"outcome":"ok","call":310,"return":400})"
      "\n"
      R"({"client":2,"op":"cas","key":"k1","expected":"v7","value":"v8","outcome":"ok","succeeded":true,"call":410,"return":500})"
      "\n"
      R"({"client":2,"op":"cas","key":"k1","expected":"v7","value":"v9","outcome":"ok","succeeded":false,"call":510,"return":600})"
      "\n"
      R"({"client":4,"op":"cas","key":"k2","expected":"a","value":"b","outcome":"unknown","call":-5,"return":900})"
      "\n"
      R"({"client":4,"op":"delete","key":"k2","outcome":"failed","call":910,"return":920})"
      "\n"
      R"({"client":5,"op":"get","key":"k1","found":true,"value":"v1","outcome":"ok","consistency":"stale","call":700,"return":800})"
      "\n"
      R"({"client":5,"op":"get","key":"k1","found":true,"value":"v8","outcome":"ok","consistency":"lease","call":810,"return":820})"
      "\n"
      R"({"client":18446744073709551615,"op":"get","key":"k1","outcome":"unknown","call":830,"return":830})"
      "\n";
  History expected;
  expected.record({.client = 3,
                   .key = "k1",
                   .kind = OpKind::kPut,
                   .value = "v7",
                   .call_time = 100,
                   .return_time = 250});
  expected.record({.client = 1,
                   .key = "k1",
                   .kind = OpKind::kGet,
                   .output = "v7",
                   .call_time = 120,
                   .return_time = 300});
  expected.record({.client = 1,
                   .key = "k1",
                   .kind = OpKind::kGet,
                   .output = std::nullopt,
                   .call_time = 310,
                   .return_time = 400});
  expected.record({.client = 2,
                   .key = "k1",
                   .kind = OpKind::kCas,
                   .value = "v8",
                   .expected = "v7",
                   .cas_succeeded = true,
                   .call_time = 410,
                   .return_time = 500});
  expected.record({.client = 2,
                   .key = "k1",
                   .kind = OpKind::kCas,
                   .value = "v9",
                   .expected = "v7",
                   .cas_succeeded = false,
                   .call_time = 510,
                   .return_time = 600});
  expected.record({.client = 4,
                   .key = "k2",
                   .kind = OpKind::kCas,
                   .value = "b",
                   .expected = "a",
                   .outcome = Outcome::kUnknown,
                   .call_time = -5,
                   .return_time = 900});
  expected.record({.client = 4,
                   .key = "k2",
                   .kind = OpKind::kDelete,
                   .outcome = Outcome::kFailed,
                   .call_time = 910,
                   .return_time = 920});
  expected.record({.client = 5,
                   .key = "k1",
                   .kind = OpKind::kGet,
                   .output = "v1",
                   .call_time = 700,
                   .return_time = 800,
                   .checked = false});
  expected.record({.client = 5,
                   .key = "k1",
                   .kind = OpKind::kGet,
                   .output = "v8",
                   .call_time = 810,
                   .return_time = 820});
  expected.record({.client = 18446744073709551615ULL,
                   .key = "k1",
                   .kind = OpKind::kGet,
                   .outcome = Outcome::kUnknown,
                   .call_time = 830,
                   .return_time = 830});
  Result<History> parsed = parse_history_json_lines(text);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status();
  EXPECT_EQ(parsed->to_text(), expected.to_text());
  EXPECT_EQ(*parsed, expected);
}

TEST(HistoryJson, UnknownFieldsCommentsBlankLinesAndCrlfAreAccepted) {
  const std::string text =
      "# written by a chaos test\n"
      "\n"
      "   \t\n"
      "  # an indented comment\n"
      R"({"return":20,"call":10,"outcome":"ok","key":"k","value":"v","op":"put","client":1,)"
      R"("version":17,"error":"","node":"n2","attempt":{"n":3},"tags":[1,"x"]})"
      "\r\n"
      R"({"client":1,"op":"get","key":"k","found":true,"value":"v","outcome":"ok","call":30,"return":40})";
  Result<History> parsed = parse_history_json_lines(text);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ(parsed->operations()[0].value, "v");
  EXPECT_EQ(parsed->operations()[1].output, std::optional<std::string>("v"));
}

TEST(HistoryJson, AnEmptyInputIsAnEmptyHistory) {
  Result<History> parsed = parse_history_json_lines("# nothing yet\n\n");
  ASSERT_TRUE(parsed.is_ok()) << parsed.status();
  EXPECT_TRUE(parsed->empty());
}

TEST(HistoryJson, JsonEscapesAndUtf8SurviveInKeysAndValues) {
  const std::string text =
      R"({"client":1,"op":"put","key":"a \"b\"\n\u00e9","value":"\u0000x","outcome":"ok","call":1,"return":2})";
  Result<History> parsed = parse_history_json_lines(text);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status();
  EXPECT_EQ(parsed->operations()[0].key, "a \"b\"\n\xc3\xa9");
  EXPECT_EQ(parsed->operations()[0].value, std::string("\0x", 2));
}

TEST(HistoryJson, OnlyAGetWithOutcomeOkNeedsFound) {
  const std::string text = kGoodLine + line("get", "failed", 20, 30) +
                           line("get", "unknown", 40, 50) +
                           line("cas", "unknown", 60, 70, R"(,"expected":"v0","value":"v1")");
  Result<History> parsed = parse_history_json_lines(text);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status();
  EXPECT_EQ(parsed->size(), 4u);
}

// --- what a malformed line is told -------------------------------------------------

struct Malformed {
  const char* what;
  std::string second_line;
  // Parts the message must contain besides "history:2: ".
  std::vector<std::string> mentions;
};

TEST(HistoryJson, EachMalformedLineIsRejectedNamingTheLineAndTheField) {
  const std::vector<Malformed> cases = {
      {"not JSON", "{\"client\":1,\n", {"not valid JSON"}},
      {"trailing garbage",
       R"({"client":1,"op":"delete","key":"k","outcome":"ok","call":1,"return":2} x)"
       "\n",
       {"not valid JSON"}},
      {"not an object", "[1,2]\n", {"not a JSON object"}},
      {"a bare string", "\"put\"\n", {"not a JSON object"}},
      {"no client",
       R"({"op":"delete","key":"k","outcome":"ok","call":1,"return":2})"
       "\n",
       {"missing \"client\""}},
      {"no op",
       R"({"client":1,"key":"k","outcome":"ok","call":1,"return":2})"
       "\n",
       {"missing \"op\""}},
      {"no key",
       R"({"client":1,"op":"delete","outcome":"ok","call":1,"return":2})"
       "\n",
       {"missing \"key\""}},
      {"no outcome",
       R"({"client":1,"op":"delete","key":"k","call":1,"return":2})"
       "\n",
       {"missing \"outcome\""}},
      {"no call",
       R"({"client":1,"op":"delete","key":"k","outcome":"ok","return":2})"
       "\n",
       {"missing \"call\""}},
      {"no return",
       R"({"client":1,"op":"delete","key":"k","outcome":"ok","call":1})"
       "\n",
       {"missing \"return\""}},
      {"put without value", line("put", "ok", 1, 2), {"missing \"value\"", "put"}},
      {"cas without value",
       line("cas", "unknown", 1, 2, R"(,"expected":"a")"),
       {"missing \"value\"", "cas"}},
      {"cas without expected",
       line("cas", "failed", 1, 2, R"(,"value":"a")"),
       {"missing \"expected\""}},
      {"ok cas without succeeded",
       line("cas", "ok", 1, 2, R"(,"expected":"a","value":"b")"),
       {"missing \"succeeded\""}},
      {"ok get without found", line("get", "ok", 1, 2, R"(,"value":"a")"), {"missing \"found\""}},
      {"found without value",
       line("get", "ok", 1, 2, R"(,"found":true)"),
       {"\"found\" is true", "\"value\""}},
      {"not found with value",
       line("get", "ok", 1, 2, R"(,"found":false,"value":"a")"),
       {"\"found\" is false", "\"value\""}},
      {"client as a string",
       R"({"client":"1","op":"delete","key":"k","outcome":"ok","call":1,"return":2})"
       "\n",
       {"\"client\" must be a non-negative integer", "\"1\""}},
      {"negative client",
       R"({"client":-1,"op":"delete","key":"k","outcome":"ok","call":1,"return":2})"
       "\n",
       {"\"client\" must be a non-negative integer", "-1"}},
      {"key as a number",
       R"({"client":1,"op":"delete","key":7,"outcome":"ok","call":1,"return":2})"
       "\n",
       {"\"key\" must be a string", "7"}},
      {"fractional call",
       R"({"client":1,"op":"delete","key":"k","outcome":"ok","call":1.5,"return":2})"
       "\n",
       {"\"call\" must be an integer", "1.5"}},
      {"return as a string",
       R"({"client":1,"op":"delete","key":"k","outcome":"ok","call":1,"return":"2"})"
       "\n",
       {"\"return\" must be an integer"}},
      {"return beyond 64 bits",
       R"({"client":1,"op":"delete","key":"k","outcome":"ok","call":1,"return":9223372036854775808})"
       "\n",
       {"\"return\" must be a 64-bit signed integer"}},
      {"found as a string",
       line("get", "ok", 1, 2, R"(,"found":"yes")"),
       {"\"found\" must be true or false"}},
      {"succeeded as a number",
       line("cas", "ok", 1, 2, R"(,"expected":"a","value":"b","succeeded":1)"),
       {"\"succeeded\" must be true or false"}},
      {"value as null",
       line("put", "ok", 1, 2, R"(,"value":null)"),
       {"\"value\" must be a string", "null"}},
      {"version as a string",
       line("delete", "ok", 1, 2, R"(,"version":"v3")"),
       {"\"version\" must be an integer"}},
      {"unknown consistency",
       line("get", "ok", 1, 2, R"(,"found":false,"consistency":"eventual")"),
       {"\"consistency\" must be one of linearizable, lease, stale", "eventual"}},
      {"unknown op",
       line("scan", "ok", 1, 2),
       {"\"op\" must be one of put, get, delete, cas", "scan"}},
      {"unknown outcome",
       line("delete", "maybe", 1, 2),
       {"\"outcome\" must be one of ok, failed, unknown", "maybe"}},
      {"return before call",
       line("delete", "ok", 100, 99),
       {"\"return\" (99) is before \"call\" (100)"}},
  };
  for (const Malformed& malformed : cases) {
    SCOPED_TRACE(malformed.what);
    const std::string message = error_of(kGoodLine + malformed.second_line);
    EXPECT_EQ(message.rfind("history:2: ", 0), 0u) << message;
    for (const std::string& part : malformed.mentions) {
      EXPECT_NE(message.find(part), std::string::npos) << message << "\nlacks: " << part;
    }
    EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
  }
}

TEST(HistoryJson, TheErrorNamesTheSourceAndCountsSkippedLines) {
  Result<History> parsed = parse_history_json_lines(
      "# comment\n\n" + kGoodLine + "\r\n" + line("delete", "ok", 5, 4), "chaos.jsonl");
  ASSERT_FALSE(parsed.is_ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parsed.status().message().rfind("chaos.jsonl:5: \"return\" (4)", 0), 0u)
      << parsed.status().message();
}

// --- the verdicts ------------------------------------------------------------------

TEST(HistoryJson, ALinearizableHistoryPassesTheChecker) {
  const std::string text =
      line("put", "ok", 0, 100, R"(,"value":"v1")") +
      // Concurrent with the put: may read before or after it.
      line("get", "ok", 50, 150, R"(,"found":false)") +
      line("cas", "unknown", 200, 900, R"(,"expected":"v1","value":"v2")") +
      line("get", "ok", 950, 990, R"(,"found":true,"value":"v2","consistency":"lease")") +
      line("delete", "failed", 1000, 1100) +
      line("get", "ok", 1200, 1300, R"(,"found":true,"value":"v2")");
  Result<History> parsed = parse_history_json_lines(text);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status();
  const CheckResult result = check_linearizable(*parsed);
  EXPECT_TRUE(result.linearizable) << result.explanation;
  EXPECT_FALSE(result.budget_exhausted);
}

// The fault chaos tests look for: a read served from a replica that has not
// seen a write already acknowledged to another client.
TEST(HistoryJson, AGetThatMissesAnAcknowledgedPutIsNotLinearizable) {
  const std::string text = line("put", "ok", 0, 100, R"(,"value":"v1")") +
                           line("get", "ok", 200, 300, R"(,"found":false)");
  Result<History> parsed = parse_history_json_lines(text);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status();
  const CheckResult result = check_linearizable(*parsed);
  EXPECT_FALSE(result.linearizable);
  EXPECT_FALSE(result.budget_exhausted);
  EXPECT_EQ(result.key_that_failed, "k");
  EXPECT_EQ(result.failing_history.size(), 2u);
}

TEST(HistoryJson, TheSameMissIsNotJudgedWhenTheReadWasStale) {
  const std::string text = line("put", "ok", 0, 100, R"(,"value":"v1")") +
                           line("get", "ok", 200, 300, R"(,"found":false,"consistency":"stale")");
  Result<History> parsed = parse_history_json_lines(text);
  ASSERT_TRUE(parsed.is_ok()) << parsed.status();
  EXPECT_FALSE(parsed->operations()[1].checked);
  const CheckResult result = check_linearizable(*parsed);
  EXPECT_TRUE(result.linearizable) << result.explanation;
}

}  // namespace
}  // namespace keel::sim
