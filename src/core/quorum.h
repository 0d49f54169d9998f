// core/quorum.h — the one place where "a majority agrees" is decided: for
// commits (which index has a majority of voters reached), elections (did
// the votes win, lose, or is it open) and every other quorum the protocol
// asks about (read rounds confirmed, voters recently heard from). The node
// asks these questions; it never counts by itself.
//
// A MajorityConfig is one set of voters; a JointConfig is the pair a joint
// configuration has during a membership change (thesis §4.3): the incoming
// and outgoing sets, each of which must agree. A JointConfig with an empty
// outgoing set is a plain majority, so the node always asks a JointConfig.
// By convention an empty set of voters agrees to everything (it is the
// neutral element of "both must agree"); a configuration with no voters at
// all never reaches the node.
//
// Thread safety: values; one object per thread.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <vector>

#include "keel/types.h"

namespace keel::core {

enum class VoteResult : std::uint8_t {
  kPending,  // neither a majority for nor a majority against yet
  kWon,
  kLost,
};
const char* to_string(VoteResult result);

class MajorityConfig {
 public:
  MajorityConfig() = default;
  // Duplicates are ignored.
  explicit MajorityConfig(std::vector<ServerId> voters);

  const std::vector<ServerId>& voters() const { return voters_; }  // sorted
  bool contains(ServerId id) const;
  bool empty() const { return voters_.empty(); }
  // How many voters form a majority (0 when empty).
  std::size_t quorum() const { return voters_.empty() ? 0 : voters_.size() / 2 + 1; }

  // The largest value that a majority of voters has reached, where
  // `value(id)` is what voter `id` has reached (an index, a round). The
  // largest uint64 when there are no voters. `scratch` is a buffer the
  // caller keeps across calls, so that this allocates nothing.
  template <typename ValueOf>
  std::uint64_t committed(ValueOf&& value, std::vector<std::uint64_t>& scratch) const {
    if (voters_.empty()) return std::numeric_limits<std::uint64_t>::max();
    scratch.clear();
    for (ServerId id : voters_) scratch.push_back(value(id));
    return kth_largest(scratch, quorum());
  }
  // Whether a majority of voters satisfy `yes(id)`; true when there are none.
  template <typename Predicate>
  bool agrees(Predicate&& yes) const {
    std::size_t count = 0;
    for (ServerId id : voters_) count += yes(id) ? 1 : 0;
    return count >= quorum();
  }
  // The outcome of an election given the answers so far (voter -> granted);
  // answers from servers that are not voters here are ignored.
  VoteResult vote_result(const std::map<ServerId, bool>& votes) const;

 private:
  static std::uint64_t kth_largest(std::vector<std::uint64_t>& values, std::size_t k);

  std::vector<ServerId> voters_;
};

class JointConfig {
 public:
  JointConfig() = default;
  explicit JointConfig(MajorityConfig incoming, MajorityConfig outgoing = {})
      : incoming_(std::move(incoming)), outgoing_(std::move(outgoing)) {}

  const MajorityConfig& incoming() const { return incoming_; }
  const MajorityConfig& outgoing() const { return outgoing_; }
  bool joint() const { return !outgoing_.empty(); }
  // A voter of either half.
  bool contains(ServerId id) const { return incoming_.contains(id) || outgoing_.contains(id); }

  // Reached by a majority of each half: the smaller of the two.
  template <typename ValueOf>
  std::uint64_t committed(ValueOf&& value, std::vector<std::uint64_t>& scratch) const {
    const std::uint64_t in = incoming_.committed(value, scratch);
    const std::uint64_t out = outgoing_.committed(value, scratch);
    return in < out ? in : out;
  }
  template <typename Predicate>
  bool agrees(Predicate&& yes) const {
    return incoming_.agrees(yes) && outgoing_.agrees(yes);
  }
  // Won when both halves won, lost when either lost.
  VoteResult vote_result(const std::map<ServerId, bool>& votes) const;

 private:
  MajorityConfig incoming_;
  MajorityConfig outgoing_;
};

}  // namespace keel::core
