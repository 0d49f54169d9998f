// Quorum decisions (core/quorum.h).
#include "core/quorum.h"

#include <algorithm>

namespace keel::core {

const char* to_string(VoteResult result) {
  switch (result) {
    case VoteResult::kPending:
      return "pending";
    case VoteResult::kWon:
      return "won";
    case VoteResult::kLost:
      return "lost";
  }
  return "unknown";
}

MajorityConfig::MajorityConfig(std::vector<ServerId> voters) : voters_(std::move(voters)) {
  std::sort(voters_.begin(), voters_.end());
  voters_.erase(std::unique(voters_.begin(), voters_.end()), voters_.end());
}

bool MajorityConfig::contains(ServerId id) const {
  return std::binary_search(voters_.begin(), voters_.end(), id);
}

std::uint64_t MajorityConfig::kth_largest(std::vector<std::uint64_t>& values, std::size_t k) {
  // nth_element: no full sort on every acknowledgement.
  const auto kth = values.begin() + static_cast<std::ptrdiff_t>(k - 1);
  std::nth_element(values.begin(), kth, values.end(), std::greater<>());
  return *kth;
}

VoteResult MajorityConfig::vote_result(const std::map<ServerId, bool>& votes) const {
  if (voters_.empty()) return VoteResult::kWon;
  std::size_t granted = 0;
  std::size_t rejected = 0;
  for (ServerId id : voters_) {
    auto it = votes.find(id);
    if (it == votes.end()) continue;
    (it->second ? granted : rejected) += 1;
  }
  if (granted >= quorum()) return VoteResult::kWon;
  // Lost when a majority refused. (With an even number of voters a win is
  // out of reach one refusal earlier; the candidate then waits for its
  // election timeout, which costs nothing but that wait.)
  if (rejected >= quorum()) return VoteResult::kLost;
  return VoteResult::kPending;
}

VoteResult JointConfig::vote_result(const std::map<ServerId, bool>& votes) const {
  const VoteResult in = incoming_.vote_result(votes);
  const VoteResult out = outgoing_.vote_result(votes);
  if (in == VoteResult::kWon && out == VoteResult::kWon) return VoteResult::kWon;
  if (in == VoteResult::kLost || out == VoteResult::kLost) return VoteResult::kLost;
  return VoteResult::kPending;
}

}  // namespace keel::core
