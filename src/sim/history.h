// sim/history.h — what clients of a simulated cluster asked for and what they
// were told: one Operation per client call on the key-value register, with the
// virtual times at which the call started and returned. The linearizability
// checker (sim/linearizability.h) judges a History; the simulator records it.
//
// A History has a text form, one operation per line, so that a failing history
// can be written to a file, read back and re-checked:
//
//   client=3 call=100 return=250 ok put key="k1" value="v7"
//   client=1 call=120 return=300 ok get key="k1" output="v7"
//   client=1 call=310 return=400 ok get key="k1" output=absent
//   client=2 call=130 return=900 unknown cas key="k1" expected="v7" value="v8" succeeded=false
//   client=4 call=500 return=600 failed delete key="k1"
//   client=5 call=700 return=800 ok get key="k1" output="v1" unchecked
//
// Fields are `name=value` (strings quoted, with \" \\ and \xHH escapes) or
// bare words: the outcome (ok, failed, unknown), the kind (put, get, cas,
// delete) and `unchecked`. Blank lines and lines starting with '#' are ignored.
// from_text(to_text(h)) reproduces h exactly.
//
// Thread safety: a plain value; one thread records into a History.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keel/status.h"

namespace keel::sim {

enum class OpKind : std::uint8_t { kPut, kGet, kCas, kDelete };

// What the client learned about its call.
enum class Outcome : std::uint8_t {
  // The call returned a result: the operation took effect exactly once,
  // somewhere between call_time and return_time.
  kOk,
  // The call certainly had no effect (NotLeader, Shutdown, a Timeout before
  // anything could commit). The checker ignores it.
  kFailed,
  // The call may or may not have taken effect, at any time after call_time
  // (OutcomeUnknown, a deadline, a client crash). Its output means nothing.
  kUnknown,
};

const char* to_string(OpKind kind);
const char* to_string(Outcome outcome);

struct Operation {
  std::uint64_t client = 0;
  std::string key;
  OpKind kind = OpKind::kGet;
  // kPut: the value written. kCas: the value written if the comparison holds.
  std::string value;
  // kCas: the value the key must hold for the swap to happen. A cas on an
  // absent key never swaps.
  std::string expected;
  // kGet with Outcome::kOk: the value read; nullopt means the key was absent.
  std::optional<std::string> output;
  // kCas with Outcome::kOk: true if the comparison held and `value` was
  // written, false if the key held something else (or nothing) and the cas
  // changed nothing. A cas that answered "compare failed" is kOk with
  // cas_succeeded = false, not kFailed: it still tells what the key did not hold.
  bool cas_succeeded = false;
  Outcome outcome = Outcome::kOk;
  // Virtual nanoseconds; call_time <= return_time. For kUnknown, return_time is
  // when the client gave up; the checker lets the operation take effect later.
  std::int64_t call_time = 0;
  std::int64_t return_time = 0;
  // False for reads that are allowed to be stale (ReadMode::kStale and the
  // like): they are recorded for the record but not checked.
  bool checked = true;

  friend bool operator==(const Operation&, const Operation&) = default;
};

// The one-line text form of an operation (a line of History::to_text, without
// the newline). Used in explanations as well.
std::string to_text(const Operation& operation);
// A string as the text form quotes it: "a \"b\"\x0a".
std::string quoted(std::string_view text);

class History {
 public:
  // Aborts if operation.return_time < operation.call_time: a simulator that
  // records time running backwards has a bug the checker must not paper over.
  void record(Operation operation);

  const std::vector<Operation>& operations() const { return operations_; }
  std::size_t size() const { return operations_.size(); }
  bool empty() const { return operations_.empty(); }

  std::string to_text() const;
  // Parses the text form; an error names the line and what is wrong with it.
  static Result<History> from_text(std::string_view text);
  // Reads a line-per-operation form (the text form, keel-kv's JSON lines):
  // blank lines and lines whose first non-blank character is '#' are
  // skipped, a trailing '\r' dropped, every other line handed to
  // `parse_line`; its error, prefixed with `where(line_number) + ": "`, ends
  // the reading.
  static Result<History> from_lines(
      std::string_view text, const std::function<Result<Operation>(std::string_view)>& parse_line,
      const std::function<std::string(std::size_t)>& where);

  friend bool operator==(const History&, const History&) = default;

 private:
  std::vector<Operation> operations_;
};

}  // namespace keel::sim
