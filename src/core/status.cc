// The out-of-line parts of <keel/status.h>.
#include "keel/status.h"

#include <cstdio>
#include <cstdlib>

namespace keel {

namespace detail {

void result_has_no_value(const Status& status) {
  std::fprintf(stderr, "keel: value() of a Result that holds an error: %s\n",
               status.to_string().c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace detail

const char* to_string(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "Ok";
    case StatusCode::kNotLeader:
      return "NotLeader";
    case StatusCode::kOutcomeUnknown:
      return "OutcomeUnknown";
    case StatusCode::kTimeout:
      return "Timeout";
    case StatusCode::kShutdown:
      return "Shutdown";
    case StatusCode::kLeadershipTransferInProgress:
      return "LeadershipTransferInProgress";
    case StatusCode::kConfigurationChangeInProgress:
      return "ConfigurationChangeInProgress";
    case StatusCode::kAbortedByRestore:
      return "AbortedByRestore";
    case StatusCode::kInvalidArgument:
      return "InvalidArgument";
    case StatusCode::kResourceExhausted:
      return "ResourceExhausted";
    case StatusCode::kUnavailable:
      return "Unavailable";
    case StatusCode::kCorruption:
      return "Corruption";
    case StatusCode::kIoError:
      return "IoError";
    case StatusCode::kNotFound:
      return "NotFound";
  }
  return "Unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "Ok";
  std::string text = keel::to_string(code_);
  if (!message_.empty()) text += ": " + message_;
  if (code_ == StatusCode::kNotLeader && !leader_.is_zero()) {
    text += " (leader " + std::to_string(leader_.value);
    if (!leader_address_.empty()) text += " at " + leader_address_;
    text += ")";
  }
  return text;
}

std::ostream& operator<<(std::ostream& out, const Status& status) {
  return out << status.to_string();
}

}  // namespace keel
