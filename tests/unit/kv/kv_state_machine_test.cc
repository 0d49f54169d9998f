// keel-kv's state machine: the commands a log carries (put, delete, cas,
// set_http_address) and the outcome each answers with; snapshots that
// restore the same state; listing in pages; and blocking reads that wake
// when their key changes.
#include "kv/kv_state_machine.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <future>
#include <latch>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "keel/fsm.h"
#include "keel/types.h"

namespace keel::kv {
namespace {

using Code = ApplyOutcome::Code;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

constexpr std::uint64_t kMaxSnapshotBytes = 64ULL << 20;

// Liveness bounds only: a correct wait returns long before these.
constexpr seconds kWaiterDeadline{60};
constexpr seconds kReturnsWithin{20};
constexpr milliseconds kShortDeadline{50};

// ApplyOutcome, comparable and printable for the assertions.
struct Outcome {
  Code code;
  std::uint64_t version;
  bool operator==(const Outcome&) const = default;
  friend std::ostream& operator<<(std::ostream& out, const Outcome& o) {
    return out << "{code " << static_cast<int>(o.code) << ", version " << o.version << "}";
  }
};

LogEntry command_at(std::uint64_t index, std::string_view command) {
  return LogEntry{Term(1), Index(index), EntryType::kCommand, Payload(command)};
}

Outcome apply_at(KvStateMachine& fsm, std::uint64_t index, std::string_view command) {
  Result<ApplyOutcome> outcome = decode_outcome(fsm.apply(command_at(index, command)));
  if (!outcome.is_ok()) {
    ADD_FAILURE() << "apply answered with bytes that are not an outcome: " << outcome.status();
    return {Code::kBadCommand, std::numeric_limits<std::uint64_t>::max()};
  }
  return {outcome->code, outcome->version};
}

// The whole visible state: key -> (value, version), and the addresses.
struct State {
  std::map<std::string, std::pair<std::string, std::uint64_t>> keys;
  std::map<std::uint64_t, std::string> addresses;
  bool operator==(const State&) const = default;
  friend std::ostream& operator<<(std::ostream& out, const State& s) {
    out << "{keys:";
    for (const auto& [key, kv] : s.keys) {
      out << " '" << key << "'='" << kv.first << "'@" << kv.second;
    }
    out << "; addresses:";
    for (const auto& [id, address] : s.addresses) out << " " << id << "=" << address;
    return out << "}";
  }
};

State state_of(const KvStateMachine& fsm) {
  State state;
  ListPage page = fsm.list("", "", 1'000'000);
  EXPECT_FALSE(page.next_after.has_value());
  for (const auto& [key, version] : page.keys) {
    std::optional<KeyValue> kv = fsm.get(key);
    EXPECT_TRUE(kv.has_value()) << "listed but not readable: " << key;
    if (!kv) continue;
    EXPECT_EQ(kv->version, version) << key;
    state.keys[key] = {kv->value, kv->version};
  }
  EXPECT_EQ(fsm.key_count(), state.keys.size());
  state.addresses = fsm.http_addresses();
  return state;
}

const std::string kNulKey("nul\0key", 7);
const std::string kBinaryValue("\x00\xff\x01", 3);

// A state with overwritten, deleted, empty and binary entries, and addresses.
void fill(KvStateMachine& fsm) {
  ASSERT_EQ(apply_at(fsm, 1, encode_put("alpha", "1", std::nullopt)), (Outcome{Code::kOk, 1}));
  ASSERT_EQ(apply_at(fsm, 2, encode_put("beta", "", std::nullopt)), (Outcome{Code::kOk, 2}));
  ASSERT_EQ(apply_at(fsm, 3, encode_put(kNulKey, kBinaryValue, std::nullopt)),
            (Outcome{Code::kOk, 3}));
  ASSERT_EQ(apply_at(fsm, 4, encode_set_http_address(1, "10.0.0.1:8001")), (Outcome{Code::kOk, 4}));
  ASSERT_EQ(apply_at(fsm, 5, encode_set_http_address(2, "10.0.0.2:8001")), (Outcome{Code::kOk, 5}));
  ASSERT_EQ(apply_at(fsm, 6, encode_put("alpha", "one", std::nullopt)), (Outcome{Code::kOk, 6}));
  ASSERT_EQ(apply_at(fsm, 7, encode_put("gone", "x", std::nullopt)), (Outcome{Code::kOk, 7}));
  ASSERT_EQ(apply_at(fsm, 8, encode_delete("gone", std::nullopt)), (Outcome{Code::kOk, 8}));
}

// What fill() leaves.
State filled_state() {
  State state;
  state.keys = {{"alpha", {"one", 6}}, {"beta", {"", 2}}, {kNulKey, {kBinaryValue, 3}}};
  state.addresses = {{1, "10.0.0.1:8001"}, {2, "10.0.0.2:8001"}};
  return state;
}

// ---------------------------------------------------------------------------
// Commands

TEST(KvStateMachineTest, put_answers_ok_with_the_entry_index_as_version) {
  KvStateMachine fsm(kMaxSnapshotBytes);
  EXPECT_EQ(apply_at(fsm, 17, encode_put("k", "v", std::nullopt)), (Outcome{Code::kOk, 17}));
  std::optional<KeyValue> kv = fsm.get("k");
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->value, "v");
  EXPECT_EQ(kv->version, 17u);
  EXPECT_EQ(fsm.key_count(), 1u);
}

TEST(KvStateMachineTest, get_returns_the_value_and_version_of_its_own_key_only) {
  KvStateMachine fsm(kMaxSnapshotBytes);
  fill(fsm);
  EXPECT_EQ(state_of(fsm), filled_state());
  EXPECT_FALSE(fsm.get("alph").has_value());
  EXPECT_FALSE(fsm.get("alphab").has_value());
  EXPECT_FALSE(fsm.get("nul").has_value());  // the key goes past its NUL byte
  EXPECT_FALSE(fsm.get("").has_value());
}

TEST(KvStateMachineTest, overwrite_replaces_the_value_and_moves_the_version) {
  KvStateMachine fsm(kMaxSnapshotBytes);
  apply_at(fsm, 3, encode_put("k", "first", std::nullopt));
  EXPECT_EQ(apply_at(fsm, 9, encode_put("k", "second", std::nullopt)), (Outcome{Code::kOk, 9}));
  std::optional<KeyValue> kv = fsm.get("k");
  ASSERT_TRUE(kv.has_value());
  EXPECT_EQ(kv->value, "second");
  EXPECT_EQ(kv->version, 9u);
  EXPECT_EQ(fsm.key_count(), 1u);
}

TEST(KvStateMachineTest, rewriting_the_same_value_still_moves_the_version) {
  KvStateMachine fsm(kMaxSnapshotBytes);
  apply_at(fsm, 3, encode_put("k", "v", std::nullopt));
  EXPECT_EQ(apply_at(fsm, 4, encode_put("k", "v", std::nullopt)), (Outcome{Code::kOk, 4}));
  EXPECT_EQ(fsm.get("k")->version, 4u);
}

TEST(KvStateMachineTest, cas_with_the_current_version_writes) {
  KvStateMachine fsm(kMaxSnapshotBytes);
  apply_at(fsm, 5, encode_put("k", "old", std::nullopt));
  EXPECT_EQ(apply_at(fsm, 6, encode_put("k", "new", 5)), (Outcome{Code::kOk, 6}));
  EXPECT_EQ(fsm.get("k")->value, "new");
  EXPECT_EQ(fsm.get("k")->version, 6u);
}

TEST(KvStateMachineTest, cas_with_another_version_fails_with_the_current_one_and_changes_nothing) {
  KvStateMachine fsm(kMaxSnapshotBytes);
  fill(fsm);
  for (std::uint64_t wrong : {std::uint64_t{1}, std::uint64_t{5}, std::uint64_t{7},
                              std::numeric_limits<std::uint64_t>::max()}) {
    EXPECT_EQ(apply_at(fsm, 20, encode_put("alpha", "changed", wrong)),
              (Outcome{Code::kCasFailed, 6}))
        << "cas=" << wrong;
  }
  EXPECT_EQ(state_of(fsm), filled_state());
}

TEST(KvStateMachineTest, cas_zero_writes_only_when_the_key_is_absent) {
  KvStateMachine fsm(kMaxSnapshotBytes);
  EXPECT_EQ(apply_at(fsm, 4, encode_put("k", "first", 0)), (Outcome{Code::kOk, 4}));
  EXPECT_EQ(apply_at(fsm, 5, encode_put("k", "second", 0)), (Outcome{Code::kCasFailed, 4}));
  EXPECT_EQ(fsm.get("k")->value, "first");
  EXPECT_EQ(fsm.get("k")->version, 4u);
  // Once deleted, the key is absent again.
  apply_at(fsm, 6, encode_delete("k", std::nullopt));
  EXPECT_EQ(apply_at(fsm, 7, encode_put("k", "third", 0)), (Outcome{Code::kOk, 7}));
  EXPECT_EQ(fsm.get("k")->value, "third");
}

TEST(KvStateMachineTest, cas_above_zero_on_an_absent_key_fails_with_version_zero) {
  KvStateMachine fsm(kMaxSnapshotBytes);
  EXPECT_EQ(apply_at(fsm, 4, encode_put("k", "v", 3)), (Outcome{Code::kCasFailed, 0}));
  EXPECT_FALSE(fsm.get("k").has_value());
  EXPECT_EQ(fsm.key_count(), 0u);
}

TEST(KvStateMachineTest, delete_removes_the_key_and_answers_with_its_own_index) {
  KvStateMachine fsm(kMaxSnapshotBytes);
  fill(fsm);
  EXPECT_EQ(apply_at(fsm, 30, encode_delete("alpha", std::nullopt)), (Outcome{Code::kOk, 30}));
  EXPECT_FALSE(fsm.get("alpha").has_value());
  State expected = filled_state();
  expected.keys.erase("alpha");
  EXPECT_EQ(state_of(fsm), expected);
}

TEST(KvStateMachineTest, delete_of_an_absent_key_is_ok_and_changes_nothing) {
  KvStateMachine fsm(kMaxSnapshotBytes);
  fill(fsm);
  EXPECT_EQ(apply_at(fsm, 30, encode_delete("never", std::nullopt)), (Outcome{Code::kOk, 30}));
  EXPECT_EQ(state_of(fsm), filled_state());
}

TEST(KvStateMachineTest, delete_with_cas_removes_only_at_that_version) {
  KvStateMachine fsm(kMaxSnapshotBytes);
  fill(fsm);
  EXPECT_EQ(apply_at(fsm, 30, encode_delete("alpha", 1)), (Outcome{Code::kCasFailed, 6}));
  EXPECT_EQ(apply_at(fsm, 31, encode_delete("alpha", 0)), (Outcome{Code::kCasFailed, 6}));
  EXPECT_EQ(state_of(fsm), filled_state());
  EXPECT_EQ(apply_at(fsm, 32, encode_delete("alpha", 6)), (Outcome{Code::kOk, 32}));
  EXPECT_FALSE(fsm.get("alpha").has_value());
  // And on an absent key: 0 matches, anything else reports version 0.
  EXPECT_EQ(apply_at(fsm, 33, encode_delete("alpha", 6)), (Outcome{Code::kCasFailed, 0}));
  EXPECT_EQ(apply_at(fsm, 34, encode_delete("alpha", 0)), (Outcome{Code::kOk, 34}));
}

TEST(KvStateMachineTest, set_http_address_records_the_latest_address_of_each_server) {
  KvStateMachine fsm(kMaxSnapshotBytes);
  EXPECT_FALSE(fsm.http_address(1).has_value());
  EXPECT_EQ(apply_at(fsm, 2, encode_set_http_address(1, "a:8001")), (Outcome{Code::kOk, 2}));
  EXPECT_EQ(apply_at(fsm, 3, encode_set_http_address(7, "b:8007")), (Outcome{Code::kOk, 3}));
  EXPECT_EQ(apply_at(fsm, 4, encode_set_http_address(1, "c:9001")), (Outcome{Code::kOk, 4}));
  EXPECT_EQ(fsm.http_address(1), std::optional<std::string>("c:9001"));
  EXPECT_EQ(fsm.http_address(7), std::optional<std::string>("b:8007"));
  EXPECT_FALSE(fsm.http_address(2).has_value());
  EXPECT_EQ(fsm.http_addresses(),
            (std::map<std::uint64_t, std::string>{{1, "c:9001"}, {7, "b:8007"}}));
  EXPECT_EQ(fsm.key_count(), 0u);  // addresses are not keys
}

// The log format is replayed by every future version: pin its bytes.
TEST(KvStateMachineTest, commands_encode_as_format_op_then_little_endian_fields) {
  const std::string put = encode_put("ab", "xyz", 0x0102030405060708ULL);
  const std::string expected_put =
      std::string("\x01\x01\x01", 3) + std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8) +
      std::string("\x02\0\0\0\0\0\0\0", 8) + "ab" + std::string("\x03\0\0\0\0\0\0\0", 8) + "xyz";
  EXPECT_EQ(put, expected_put);

  const std::string del = encode_delete("ab", std::nullopt);
  const std::string expected_del = std::string("\x01\x02\x00", 3) + std::string(8, '\0') +
                                   std::string("\x02\0\0\0\0\0\0\0", 8) + "ab" +
                                   std::string(8, '\0');
  EXPECT_EQ(del, expected_del);

  const std::string address = encode_set_http_address(258, "h:1");
  const std::string expected_address = std::string("\x01\x03", 2) +
                                       std::string("\x02\x01\0\0\0\0\0\0", 8) +
                                       std::string("\x03\0\0\0\0\0\0\0", 8) + "h:1";
  EXPECT_EQ(address, expected_address);
}

// A command every server rejects the same way must leave every server's
// state the same: nothing may change.
TEST(KvStateMachineTest, malformed_commands_are_bad_commands_that_change_nothing) {
  const std::string put = encode_put("alpha", "evil", std::nullopt);
  const std::string put_cas = encode_put("alpha", "evil", 6);
  std::string wrong_format = put;
  wrong_format[0] = '\x02';
  std::string format_zero = put;
  format_zero[0] = '\x00';
  std::string unknown_op = put;
  unknown_op[1] = '\x09';
  std::string op_zero = put;
  op_zero[1] = '\x00';
  std::string cas_flag_two = put_cas;
  cas_flag_two[2] = '\x02';
  std::string key_longer_than_command = put;
  key_longer_than_command[11] = '\x7f';  // the key's length field
  std::string huge_key_length = put;
  for (int i = 11; i < 19; ++i) huge_key_length[i] = '\xff';

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"format byte only", std::string("\x01", 1)},
      {"wrong format byte", wrong_format},
      {"format byte zero", format_zero},
      {"unknown op", unknown_op},
      {"op zero", op_zero},
      {"cas flag neither 0 nor 1", cas_flag_two},
      {"key length past the end", key_longer_than_command},
      {"key length 2^64-1", huge_key_length},
      {"put with a trailing byte", put + "x"},
      {"put with a trailing NUL", put + std::string(1, '\0')},
      {"delete with a trailing byte", encode_delete("alpha", std::nullopt) + "x"},
      {"set_http_address with a trailing byte", encode_set_http_address(1, "evil:1") + "x"},
      {"text", "PUT alpha evil"},
  };
  KvStateMachine fsm(kMaxSnapshotBytes);
  fill(fsm);
  std::uint64_t index = 100;
  for (const auto& [name, command] : cases) {
    EXPECT_EQ(apply_at(fsm, ++index, command), (Outcome{Code::kBadCommand, 0})) << name;
    EXPECT_EQ(state_of(fsm), filled_state()) << name;
  }
}

TEST(KvStateMachineTest, every_truncation_of_a_command_is_a_bad_command) {
  const std::vector<std::string> commands = {
      encode_put("alpha", "evil", std::nullopt), encode_put("alpha", "evil", 6),
      encode_delete("alpha", std::nullopt), encode_delete("alpha", 6),
      encode_set_http_address(1, "evil:1")};
  KvStateMachine fsm(kMaxSnapshotBytes);
  fill(fsm);
  std::uint64_t index = 100;
  for (const std::string& command : commands) {
    for (std::size_t size = 0; size < command.size(); ++size) {
      EXPECT_EQ(apply_at(fsm, ++index, command.substr(0, size)), (Outcome{Code::kBadCommand, 0}))
          << "command cut to " << size << " of " << command.size() << " bytes";
    }
  }
  EXPECT_EQ(state_of(fsm), filled_state());
  // The whole commands are good (so the loop above cut real commands).
  ++index;
  EXPECT_EQ(apply_at(fsm, index, commands[1]), (Outcome{Code::kOk, index}));
}

TEST(KvStateMachineTest, decode_outcome_round_trips_every_code_and_version) {
  for (Code code : {Code::kOk, Code::kCasFailed, Code::kBadCommand}) {
    for (std::uint64_t version :
         {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{0x0102030405060708ULL},
          std::numeric_limits<std::uint64_t>::max()}) {
      Result<ApplyOutcome> decoded = decode_outcome(encode_outcome({code, version}));
      ASSERT_TRUE(decoded.is_ok()) << decoded.status();
      EXPECT_EQ(decoded->code, code);
      EXPECT_EQ(decoded->version, version);
    }
  }
  EXPECT_EQ(encode_outcome({Code::kCasFailed, 258}), std::string("\x01\x02\x01\0\0\0\0\0\0", 9));
}

TEST(KvStateMachineTest, decode_outcome_rejects_bytes_that_are_not_an_outcome) {
  const std::string good = encode_outcome({Code::kOk, 5});
  std::string code_three = good;
  code_three[0] = '\x03';
  std::string code_ff = good;
  code_ff[0] = '\xff';
  for (const std::string& bad :
       {std::string(), good.substr(0, 1), good.substr(0, 8), good + "x", code_three, code_ff}) {
    Result<ApplyOutcome> decoded = decode_outcome(bad);
    ASSERT_FALSE(decoded.is_ok()) << "accepted " << bad.size() << " bytes";
    EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption);
  }
}

// ---------------------------------------------------------------------------
// Snapshots

class StringSnapshotWriter final : public SnapshotWriter {
 public:
  Status write(std::string_view bytes) override {
    bytes_.append(bytes);
    ++writes_;
    return Status();
  }
  const std::string& bytes() const { return bytes_; }
  int writes() const { return writes_; }

 private:
  std::string bytes_;
  int writes_ = 0;
};

class FailingSnapshotWriter final : public SnapshotWriter {
 public:
  Status write(std::string_view /*bytes*/) override { return Status::io_error("disk gone"); }
};

// Hands out `bytes` at most `piece_bytes` per read(), as a store's reader
// may; at the end answers `end_status` if it is an error (a checksum that
// no longer matches), else 0.
class PiecewiseSnapshotReader final : public SnapshotReader {
 public:
  PiecewiseSnapshotReader(std::string bytes, std::size_t piece_bytes, Status end_status = Status())
      : bytes_(std::move(bytes)), piece_bytes_(piece_bytes), end_status_(std::move(end_status)) {}

  Result<std::size_t> read(std::span<char> out) override {
    const std::size_t n = std::min({out.size(), piece_bytes_, bytes_.size() - offset_});
    if (n == 0 && !end_status_.is_ok()) return end_status_;
    std::copy_n(bytes_.data() + offset_, n, out.data());
    offset_ += n;
    return n;
  }

 private:
  std::string bytes_;
  std::size_t piece_bytes_;
  Status end_status_;
  std::size_t offset_ = 0;
};

std::string persisted(KvStateMachine& fsm) {
  Result<std::unique_ptr<FsmSnapshot>> snapshot = fsm.snapshot();
  EXPECT_TRUE(snapshot.is_ok()) << snapshot.status();
  if (!snapshot.is_ok()) return {};
  StringSnapshotWriter writer;
  Status persisted = (*snapshot)->persist(writer);
  EXPECT_TRUE(persisted.is_ok()) << persisted;
  (*snapshot)->release();
  return writer.bytes();
}

Status restore_from(KvStateMachine& fsm, std::string bytes, std::size_t piece_bytes = 64 << 10) {
  PiecewiseSnapshotReader reader(std::move(bytes), piece_bytes);
  return fsm.restore(SnapshotMeta{}, reader);
}

// A machine in some other state, to see that a failed restore keeps it.
void fill_other(KvStateMachine& fsm) {
  ASSERT_EQ(apply_at(fsm, 1, encode_put("zulu", "z", std::nullopt)), (Outcome{Code::kOk, 1}));
  ASSERT_EQ(apply_at(fsm, 2, encode_set_http_address(9, "z:9")), (Outcome{Code::kOk, 2}));
}

State other_state() {
  State state;
  state.keys = {{"zulu", {"z", 1}}};
  state.addresses = {{9, "z:9"}};
  return state;
}

TEST(KvSnapshotTest, restore_of_a_persisted_snapshot_gives_the_same_keys_versions_and_addresses) {
  KvStateMachine source(kMaxSnapshotBytes);
  fill(source);
  const std::string bytes = persisted(source);
  for (std::size_t piece_bytes : {std::size_t{1}, std::size_t{3}, std::size_t{64 << 10}}) {
    KvStateMachine fresh(kMaxSnapshotBytes);
    Status restored = restore_from(fresh, bytes, piece_bytes);
    ASSERT_TRUE(restored.is_ok()) << restored << " (pieces of " << piece_bytes << ")";
    EXPECT_EQ(state_of(fresh), filled_state()) << "pieces of " << piece_bytes;
  }
}

TEST(KvSnapshotTest, restore_replaces_the_whole_previous_state) {
  KvStateMachine source(kMaxSnapshotBytes);
  fill(source);
  KvStateMachine target(kMaxSnapshotBytes);
  fill_other(target);
  ASSERT_TRUE(restore_from(target, persisted(source)).is_ok());
  EXPECT_EQ(state_of(target), filled_state());
  EXPECT_FALSE(target.get("zulu").has_value());
  EXPECT_FALSE(target.http_address(9).has_value());
}

TEST(KvSnapshotTest, an_empty_state_round_trips_to_an_empty_state) {
  KvStateMachine empty(kMaxSnapshotBytes);
  KvStateMachine target(kMaxSnapshotBytes);
  fill_other(target);
  ASSERT_TRUE(restore_from(target, persisted(empty)).is_ok());
  EXPECT_EQ(state_of(target), State{});
}

TEST(KvSnapshotTest, values_larger_than_one_persist_piece_survive) {
  KvStateMachine source(kMaxSnapshotBytes);
  std::string big(3 * (1 << 20) + 12345, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 % 251);
  ASSERT_EQ(apply_at(source, 1, encode_put("big", big, std::nullopt)), (Outcome{Code::kOk, 1}));
  Result<std::unique_ptr<FsmSnapshot>> snapshot = source.snapshot();
  ASSERT_TRUE(snapshot.is_ok());
  StringSnapshotWriter writer;
  ASSERT_TRUE((*snapshot)->persist(writer).is_ok());
  EXPECT_GT(writer.writes(), 1);  // written in pieces, not one huge write
  KvStateMachine target(kMaxSnapshotBytes);
  ASSERT_TRUE(restore_from(target, writer.bytes()).is_ok());
  ASSERT_TRUE(target.get("big").has_value());
  EXPECT_TRUE(target.get("big")->value == big);
  EXPECT_EQ(target.get("big")->version, 1u);
}

// keel persists on a thread of its own while apply goes on (keel/fsm.h).
TEST(KvSnapshotTest, snapshot_is_a_point_in_time_copy_that_later_applies_do_not_change) {
  KvStateMachine source(kMaxSnapshotBytes);
  fill(source);
  Result<std::unique_ptr<FsmSnapshot>> snapshot = source.snapshot();
  ASSERT_TRUE(snapshot.is_ok());
  apply_at(source, 9, encode_put("alpha", "changed", std::nullopt));
  apply_at(source, 10, encode_put("new", "n", std::nullopt));
  apply_at(source, 11, encode_delete("beta", std::nullopt));
  apply_at(source, 12, encode_set_http_address(1, "moved:1"));
  apply_at(source, 13, encode_set_http_address(3, "new:3"));
  StringSnapshotWriter writer;
  ASSERT_TRUE((*snapshot)->persist(writer).is_ok());
  KvStateMachine target(kMaxSnapshotBytes);
  ASSERT_TRUE(restore_from(target, writer.bytes()).is_ok());
  EXPECT_EQ(state_of(target), filled_state());
}

TEST(KvSnapshotTest, persist_returns_the_writers_error) {
  KvStateMachine source(kMaxSnapshotBytes);
  fill(source);
  Result<std::unique_ptr<FsmSnapshot>> snapshot = source.snapshot();
  ASSERT_TRUE(snapshot.is_ok());
  FailingSnapshotWriter writer;
  EXPECT_EQ((*snapshot)->persist(writer).code(), StatusCode::kIoError);
}

TEST(KvSnapshotTest, restore_of_any_truncation_is_corruption_and_keeps_the_previous_state) {
  KvStateMachine source(kMaxSnapshotBytes);
  fill(source);
  const std::string bytes = persisted(source);
  KvStateMachine target(kMaxSnapshotBytes);
  fill_other(target);
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    Status restored = restore_from(target, bytes.substr(0, size));
    EXPECT_EQ(restored.code(), StatusCode::kCorruption)
        << "cut to " << size << " of " << bytes.size() << ": " << restored;
  }
  EXPECT_EQ(state_of(target), other_state());
}

TEST(KvSnapshotTest, restore_of_another_format_is_corruption_and_keeps_the_previous_state) {
  KvStateMachine source(kMaxSnapshotBytes);
  fill(source);
  std::string bytes = persisted(source);
  ASSERT_EQ(bytes[0], '\x01');
  KvStateMachine target(kMaxSnapshotBytes);
  fill_other(target);
  for (char format : {'\x00', '\x02', '\xff'}) {
    bytes[0] = format;
    EXPECT_EQ(restore_from(target, bytes).code(), StatusCode::kCorruption)
        << "format " << static_cast<int>(format);
  }
  EXPECT_EQ(state_of(target), other_state());
}

TEST(KvSnapshotTest, restore_with_bytes_after_the_end_is_corruption_and_keeps_the_previous_state) {
  KvStateMachine source(kMaxSnapshotBytes);
  fill(source);
  const std::string bytes = persisted(source);
  KvStateMachine target(kMaxSnapshotBytes);
  fill_other(target);
  for (const std::string& tail : {std::string(1, '\0'), std::string("x"), bytes}) {
    EXPECT_EQ(restore_from(target, bytes + tail).code(), StatusCode::kCorruption)
        << tail.size() << " bytes after the end";
  }
  EXPECT_EQ(state_of(target), other_state());
}

TEST(KvSnapshotTest, restore_returns_the_readers_error_and_keeps_the_previous_state) {
  KvStateMachine source(kMaxSnapshotBytes);
  fill(source);
  KvStateMachine target(kMaxSnapshotBytes);
  fill_other(target);
  // A good snapshot whose checksum fails at the end: everything read is void.
  PiecewiseSnapshotReader reader(persisted(source), 7, Status::corruption("checksum mismatch"));
  EXPECT_EQ(target.restore(SnapshotMeta{}, reader).code(), StatusCode::kCorruption);
  EXPECT_EQ(state_of(target), other_state());
}

TEST(KvSnapshotTest, restore_reads_no_more_than_max_snapshot_bytes) {
  KvStateMachine source(kMaxSnapshotBytes);
  fill(source);
  const std::string bytes = persisted(source);

  KvStateMachine too_small(bytes.size() - 1);
  fill_other(too_small);
  Status refused = restore_from(too_small, bytes);
  EXPECT_FALSE(refused.is_ok());
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument) << refused;
  EXPECT_EQ(state_of(too_small), other_state());

  KvStateMachine just_enough(bytes.size());
  ASSERT_TRUE(restore_from(just_enough, bytes).is_ok());
  EXPECT_EQ(state_of(just_enough), filled_state());
}

// ---------------------------------------------------------------------------
// Listing

class KvListTest : public testing::Test {
 protected:
  void SetUp() override {
    std::uint64_t index = 0;
    for (const char* key : {"app/3", "a", "app/1", "apple", "b", "app/2", "ap", "app/10"}) {
      ASSERT_EQ(apply_at(fsm_, ++index, encode_put(key, "v", std::nullopt)).code, Code::kOk);
    }
  }
  std::vector<std::string> keys(const ListPage& page) {
    std::vector<std::string> out;
    for (const auto& [key, version] : page.keys) out.push_back(key);
    return out;
  }

  KvStateMachine fsm_{kMaxSnapshotBytes};
};

using testing::ElementsAre;
using testing::IsEmpty;

TEST_F(KvListTest, lists_the_keys_with_the_prefix_in_order_with_their_versions) {
  ListPage page = fsm_.list("app/", "", 100);
  EXPECT_THAT(page.keys, ElementsAre(std::pair<std::string, std::uint64_t>("app/1", 3),
                                     std::pair<std::string, std::uint64_t>("app/10", 8),
                                     std::pair<std::string, std::uint64_t>("app/2", 6),
                                     std::pair<std::string, std::uint64_t>("app/3", 1)));
  EXPECT_FALSE(page.next_after.has_value());
}

TEST_F(KvListTest, an_empty_prefix_lists_every_key_in_byte_order) {
  EXPECT_THAT(keys(fsm_.list("", "", 100)),
              ElementsAre("a", "ap", "app/1", "app/10", "app/2", "app/3", "apple", "b"));
}

TEST_F(KvListTest, a_prefix_matches_the_key_equal_to_it_and_nothing_outside) {
  EXPECT_THAT(keys(fsm_.list("ap", "", 100)),
              ElementsAre("ap", "app/1", "app/10", "app/2", "app/3", "apple"));
  EXPECT_THAT(keys(fsm_.list("apple", "", 100)), ElementsAre("apple"));
  EXPECT_THAT(keys(fsm_.list("c", "", 100)), IsEmpty());
  EXPECT_THAT(keys(fsm_.list("apples", "", 100)), IsEmpty());
}

TEST_F(KvListTest, limit_cuts_the_page_and_next_after_names_its_last_key) {
  ListPage page = fsm_.list("app/", "", 2);
  EXPECT_THAT(keys(page), ElementsAre("app/1", "app/10"));
  EXPECT_EQ(page.next_after, std::optional<std::string>("app/10"));
  page = fsm_.list("app/", *page.next_after, 2);
  EXPECT_THAT(keys(page), ElementsAre("app/2", "app/3"));
  // Exactly `limit` keys were left: nothing more follows.
  EXPECT_FALSE(page.next_after.has_value());
}

TEST_F(KvListTest, paging_with_next_after_visits_every_key_once_in_order) {
  const std::vector<std::string> all = keys(fsm_.list("", "", 100));
  ASSERT_EQ(all.size(), 8u);
  for (std::size_t limit = 1; limit <= all.size() + 1; ++limit) {
    std::vector<std::string> seen;
    std::string after;
    for (int pages = 0; pages < 20; ++pages) {
      ListPage page = fsm_.list("", after, limit);
      EXPECT_LE(page.keys.size(), limit);
      for (const auto& [key, version] : page.keys) seen.push_back(key);
      if (!page.next_after) break;
      EXPECT_EQ(*page.next_after, page.keys.back().first);
      after = *page.next_after;
    }
    EXPECT_EQ(seen, all) << "limit " << limit;
  }
}

TEST_F(KvListTest, after_starts_past_that_key_whether_or_not_it_exists) {
  EXPECT_THAT(keys(fsm_.list("app/", "app/2", 100)), ElementsAre("app/3"));
  EXPECT_THAT(keys(fsm_.list("app/", "app/15", 100)), ElementsAre("app/2", "app/3"));
  EXPECT_THAT(keys(fsm_.list("app/", "app/3", 100)), IsEmpty());
}

TEST_F(KvListTest, after_before_the_prefix_starts_at_the_prefix) {
  EXPECT_THAT(keys(fsm_.list("app/", "a", 100)), ElementsAre("app/1", "app/10", "app/2", "app/3"));
}

TEST_F(KvListTest, after_beyond_the_prefix_lists_nothing) {
  ListPage page = fsm_.list("app/", "b", 100);
  EXPECT_THAT(keys(page), IsEmpty());
  EXPECT_FALSE(page.next_after.has_value());
  page = fsm_.list("app/", "app0", 100);  // '0' sorts right after '/'
  EXPECT_THAT(keys(page), IsEmpty());
  EXPECT_FALSE(page.next_after.has_value());
}

TEST_F(KvListTest, limit_zero_lists_nothing) {
  ListPage page = fsm_.list("app/", "", 0);
  EXPECT_THAT(keys(page), IsEmpty());
}

// ---------------------------------------------------------------------------
// Blocking reads

class KvWaitTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(apply_at(fsm_, 1, encode_put("k", "v1", std::nullopt)), (Outcome{Code::kOk, 1}));
  }
  // A reader on another thread, waiting for `key` to leave `observed`.
  std::future<bool> wait_in_background(std::uint64_t observed, steady_clock::time_point deadline,
                                       std::string key = "k") {
    // Shared: count_down() may still touch the latch after wait() returns.
    auto started = std::make_shared<std::latch>(1);
    std::future<bool> waiter =
        std::async(std::launch::async, [started, this, observed, deadline, key] {
          started->count_down();
          return fsm_.wait_for_change(key, observed, deadline);
        });
    started->wait();
    return waiter;
  }

  KvStateMachine fsm_{kMaxSnapshotBytes};
};

// Whether the change lands before the waiter looks or while it sleeps, it
// must return true. Nothing shows from outside when the waiter sleeps, so
// each test repeats the race: in the rounds where the waiter sleeps first,
// a lost wake-up leaves it asleep until its deadline, far past
// kReturnsWithin.
constexpr int kRaceRounds = 8;

TEST_F(KvWaitTest, a_write_to_the_key_wakes_the_waiter_as_changed) {
  std::uint64_t index = 1;  // "k" holds version 1
  for (int round = 0; round < kRaceRounds; ++round) {
    std::future<bool> waiter = wait_in_background(index, steady_clock::now() + kWaiterDeadline);
    ++index;
    ASSERT_EQ(apply_at(fsm_, index, encode_put("k", "v", std::nullopt)).code, Code::kOk);
    ASSERT_EQ(waiter.wait_for(kReturnsWithin), std::future_status::ready) << "round " << round;
    EXPECT_TRUE(waiter.get()) << "round " << round;
  }
}

TEST_F(KvWaitTest, a_delete_of_the_key_wakes_the_waiter_as_changed) {
  std::uint64_t index = 1;  // "k" holds version 1
  for (int round = 0; round < kRaceRounds; ++round) {
    std::future<bool> waiter = wait_in_background(index, steady_clock::now() + kWaiterDeadline);
    ASSERT_EQ(apply_at(fsm_, ++index, encode_delete("k", std::nullopt)).code, Code::kOk);
    ASSERT_EQ(waiter.wait_for(kReturnsWithin), std::future_status::ready) << "round " << round;
    EXPECT_TRUE(waiter.get()) << "round " << round;
    ASSERT_EQ(apply_at(fsm_, ++index, encode_put("k", "again", std::nullopt)).code, Code::kOk);
  }
}

TEST_F(KvWaitTest, creating_an_absent_key_wakes_a_waiter_that_saw_it_absent) {
  std::uint64_t index = 1;
  for (int round = 0; round < kRaceRounds; ++round) {
    const std::string key = "new" + std::to_string(round);
    std::future<bool> waiter = wait_in_background(0, steady_clock::now() + kWaiterDeadline, key);
    ASSERT_EQ(apply_at(fsm_, ++index, encode_put(key, "n", std::nullopt)).code, Code::kOk);
    ASSERT_EQ(waiter.wait_for(kReturnsWithin), std::future_status::ready) << "round " << round;
    EXPECT_TRUE(waiter.get()) << "round " << round;
  }
}

TEST_F(KvWaitTest, a_version_already_gone_returns_changed_at_once) {
  apply_at(fsm_, 2, encode_put("k", "v2", std::nullopt));
  const auto start = steady_clock::now();
  EXPECT_TRUE(fsm_.wait_for_change("k", 1, start + kWaiterDeadline));
  EXPECT_LT(steady_clock::now() - start, kReturnsWithin);
}

TEST_F(KvWaitTest, without_a_change_the_wait_returns_false_at_its_deadline) {
  const auto start = steady_clock::now();
  EXPECT_FALSE(fsm_.wait_for_change("k", 1, start + kShortDeadline));
  EXPECT_GE(steady_clock::now() - start, kShortDeadline);
}

TEST_F(KvWaitTest, writes_to_other_keys_do_not_count_as_a_change) {
  const auto start = steady_clock::now();
  std::future<bool> waiter = wait_in_background(1, start + kShortDeadline);
  std::uint64_t index = 1;
  while (waiter.wait_for(milliseconds(1)) != std::future_status::ready) {
    apply_at(fsm_, ++index, encode_put("k2", "other", std::nullopt));
    apply_at(fsm_, ++index, encode_put("", "other", std::nullopt));
    ASSERT_LT(steady_clock::now() - start, kReturnsWithin) << "the waiter never returned";
  }
  EXPECT_FALSE(waiter.get());
  EXPECT_GE(steady_clock::now() - start, kShortDeadline);
  EXPECT_GT(index, 1u);  // some writes did happen while it waited
}

TEST_F(KvWaitTest, a_rejected_cas_is_not_a_change) {
  const auto start = steady_clock::now();
  std::future<bool> waiter = wait_in_background(1, start + kShortDeadline);
  std::uint64_t index = 1;
  while (waiter.wait_for(milliseconds(1)) != std::future_status::ready) {
    ASSERT_EQ(apply_at(fsm_, ++index, encode_put("k", "x", 99)).code, Code::kCasFailed);
    ASSERT_LT(steady_clock::now() - start, kReturnsWithin) << "the waiter never returned";
  }
  EXPECT_FALSE(waiter.get());
}

// The release may come before the waiter starts (and then must not count
// for it): keep releasing until the waiter has returned.
TEST_F(KvWaitTest, release_waiters_wakes_a_waiter_as_unchanged) {
  const auto start = steady_clock::now();
  std::future<bool> waiter = wait_in_background(1, start + kWaiterDeadline);
  while (waiter.wait_for(milliseconds(1)) != std::future_status::ready) {
    fsm_.release_waiters();
    ASSERT_LT(steady_clock::now() - start, kReturnsWithin) << "release_waiters did not wake it";
  }
  EXPECT_FALSE(waiter.get());
}

TEST_F(KvWaitTest, a_release_before_the_wait_does_not_end_it) {
  fsm_.release_waiters();
  const auto start = steady_clock::now();
  EXPECT_FALSE(fsm_.wait_for_change("k", 1, start + kShortDeadline));
  EXPECT_GE(steady_clock::now() - start, kShortDeadline);
}

TEST_F(KvWaitTest, close_waiters_wakes_waiters_and_later_waits_return_at_once) {
  const auto start = steady_clock::now();
  std::future<bool> waiter = wait_in_background(1, start + kWaiterDeadline);
  fsm_.close_waiters();
  ASSERT_EQ(waiter.wait_for(kReturnsWithin), std::future_status::ready);
  EXPECT_FALSE(waiter.get());

  const auto later = steady_clock::now();
  EXPECT_FALSE(fsm_.wait_for_change("k", 1, later + kWaiterDeadline));
  EXPECT_FALSE(fsm_.wait_for_change("absent", 0, later + kWaiterDeadline));
  EXPECT_LT(steady_clock::now() - later, kReturnsWithin);
  // A key that did change still says so.
  apply_at(fsm_, 2, encode_put("k", "v2", std::nullopt));
  EXPECT_TRUE(fsm_.wait_for_change("k", 1, steady_clock::now() + kWaiterDeadline));
}

TEST_F(KvWaitTest, a_restore_that_changes_the_key_wakes_the_waiter_as_changed) {
  KvStateMachine source(kMaxSnapshotBytes);
  apply_at(source, 7, encode_put("k", "restored", std::nullopt));
  const std::string bytes = persisted(source);
  std::future<bool> waiter = wait_in_background(1, steady_clock::now() + kWaiterDeadline);
  ASSERT_TRUE(restore_from(fsm_, bytes).is_ok());
  ASSERT_EQ(waiter.wait_for(kReturnsWithin), std::future_status::ready);
  EXPECT_TRUE(waiter.get());
}

TEST_F(KvWaitTest, try_begin_wait_admits_at_most_max_waiters_at_once) {
  EXPECT_EQ(fsm_.waiters(), 0u);
  EXPECT_TRUE(fsm_.try_begin_wait(2));
  EXPECT_TRUE(fsm_.try_begin_wait(2));
  EXPECT_FALSE(fsm_.try_begin_wait(2));
  EXPECT_EQ(fsm_.waiters(), 2u);
  fsm_.end_wait();
  EXPECT_EQ(fsm_.waiters(), 1u);
  EXPECT_TRUE(fsm_.try_begin_wait(2));
  EXPECT_FALSE(fsm_.try_begin_wait(2));
  EXPECT_TRUE(fsm_.try_begin_wait(3));  // a higher bound admits one more
  EXPECT_EQ(fsm_.waiters(), 3u);
  fsm_.end_wait();
  fsm_.end_wait();
  fsm_.end_wait();
  EXPECT_EQ(fsm_.waiters(), 0u);
  EXPECT_FALSE(fsm_.try_begin_wait(0));  // --max-waiters 0: no blocking reads
  EXPECT_EQ(fsm_.waiters(), 0u);
}

}  // namespace
}  // namespace keel::kv
