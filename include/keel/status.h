// keel/status.h — errors as values. Every fallible keel call returns a Status
// or a Result<T>; the code says what happened, and, for writes, whether the
// command may still take effect (kOutcomeUnknown) or certainly did not.
//
// Thread safety: plain values, like std::string.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <variant>

#include "keel/types.h"

namespace keel {

enum class StatusCode : std::uint8_t {
  kOk = 0,
  // This server is not the leader. The command certainly did not commit
  // through this call; Status::leader_hint() names the leader if known.
  kNotLeader,
  // The command was handed to the log but its fate is not known (leadership
  // was lost, the deadline passed, the server shut down): it may still commit.
  kOutcomeUnknown,
  // The deadline passed before the operation could start or finish; nothing
  // that could commit was started.
  kTimeout,
  // The server is shutting down; the operation certainly did not take effect.
  kShutdown,
  kLeadershipTransferInProgress,
  kConfigurationChangeInProgress,
  // The command was applied, then undone by a Raft::restore that entered
  // the log after it: its effect is certainly gone.
  kAbortedByRestore,
  kInvalidArgument,
  // A bound was reached (queue full, too many bytes in flight); retry later.
  kResourceExhausted,
  // The operation cannot be served yet (for example a read on a leader whose
  // term-start entry has not committed); retrying later may succeed.
  kUnavailable,
  kCorruption,
  kIoError,
  kNotFound,
};

const char* to_string(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;

  static Status ok() { return Status(); }
  static Status not_leader(ServerId leader = kNoServer, std::string leader_address = {}) {
    Status s(StatusCode::kNotLeader, "not the leader");
    s.leader_ = leader;
    s.leader_address_ = std::move(leader_address);
    return s;
  }
  static Status outcome_unknown(std::string message) {
    return Status(StatusCode::kOutcomeUnknown, std::move(message));
  }
  static Status timeout(std::string message) {
    return Status(StatusCode::kTimeout, std::move(message));
  }
  static Status shutdown() { return Status(StatusCode::kShutdown, "shut down"); }
  static Status invalid_argument(std::string message) {
    return Status(StatusCode::kInvalidArgument, std::move(message));
  }
  static Status resource_exhausted(std::string message) {
    return Status(StatusCode::kResourceExhausted, std::move(message));
  }
  static Status unavailable(std::string message) {
    return Status(StatusCode::kUnavailable, std::move(message));
  }
  static Status corruption(std::string message) {
    return Status(StatusCode::kCorruption, std::move(message));
  }
  static Status io_error(std::string message) {
    return Status(StatusCode::kIoError, std::move(message));
  }
  static Status not_found(std::string message) {
    return Status(StatusCode::kNotFound, std::move(message));
  }
  static Status with_code(StatusCode code, std::string message) {
    return Status(code, std::move(message));
  }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  ServerId leader_hint() const { return leader_; }
  const std::string& leader_address_hint() const { return leader_address_; }

  // "NotLeader: not the leader (leader 3)" and the like.
  std::string to_string() const;

  // Compares the codes only: two statuses are equal when they say the same
  // thing happened, whatever their messages and hints.
  bool operator==(const Status& other) const { return code_ == other.code_; }

 private:
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  ServerId leader_ = kNoServer;
  std::string leader_address_;
};

std::ostream& operator<<(std::ostream& out, const Status& status);

namespace detail {
// value() on an error Result is a programming error: keel stops the process
// and says which error was ignored (no exception to lose the message in).
[[noreturn]] void result_has_no_value(const Status& status);
}  // namespace detail

// Either a value or a non-ok Status. value(), operator* and operator-> on a
// Result that holds an error abort the process with the error's text: check
// is_ok() (or status()) first wherever an error is possible.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : state_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(state_).is_ok()) {
      std::abort();  // a Result built from an ok Status has no value: programming error
    }
  }

  bool is_ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return is_ok(); }

  const Status& status() const {
    static const Status kOk;  // NOLINT: immutable
    return is_ok() ? kOk : std::get<Status>(state_);
  }
  T& value() & {
    check_has_value();
    return std::get<T>(state_);
  }
  const T& value() const& {
    check_has_value();
    return std::get<T>(state_);
  }
  T&& value() && {
    check_has_value();
    return std::get<T>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  void check_has_value() const {
    if (!is_ok()) detail::result_has_no_value(std::get<Status>(state_));
  }

  std::variant<T, Status> state_;
};

}  // namespace keel
