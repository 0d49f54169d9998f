// runtime/membership_change.h — one membership call (Raft::add_learner,
// add_voter, demote_voter, remove_server, change_membership) from the call
// to its future, on the raft loop.
//
// Most calls are one step: the core appends the configuration entry (or
// the joint one, which it leaves by itself, core/membership.h) and the
// future resolves once the change is committed. add_voter of a server that
// is not a voter yet has three: the learner is added (committed), then it
// must catch up — its log within Config::promotion_max_lag_entries of the
// leader's at Config::promotion_rounds heartbeat intervals in a row — and
// then it is promoted. The RaftServer calls check() after every flush,
// on_round() every heartbeat interval while catching_up(), and
// on_deadline() at the call's deadline; whichever settles the call first
// resolves the future. A leader that has not yet committed an entry of its
// term holds the call back until it has (bounded by the deadline).
//
// Thread safety: loop only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "core/node.h"
#include "keel/config.h"
#include "keel/future.h"
#include "keel/types.h"

namespace keel::runtime {

class MembershipChange {
 public:
  struct Request {
    std::vector<ConfigurationChange> changes;
    Index prev_index;
    // add_voter: a server that is not a voter yet is made a learner, caught
    // up and then promoted (changes holds the one kAddVoter).
    bool promote_after_catch_up = false;
    Promise<Index> promise;
  };

  // `not_leader` gives the NotLeader status (with the leader's address) the
  // server answers with.
  MembershipChange(core::Node& node, const Config& config, std::function<Status()> not_leader)
      : node_(node), config_(config), not_leader_(std::move(not_leader)) {}

  // Whether a call is under way (another is refused).
  bool active() const { return pending_.has_value(); }
  bool catching_up() const { return active() && pending_->phase == Phase::kCatchingUp; }
  // Waiting for something on_round() checks: a new leader's first commit,
  // or a new voter's catch-up.
  bool waiting() const { return active() && pending_->phase != Phase::kCommitting; }
  // The call under way's number, for its deadline timer.
  std::uint64_t number() const { return active() ? pending_->number : 0; }

  // Starts a call; it may resolve at once (refused, or nothing to change).
  void start(Request request);
  void check();
  void on_round();
  void on_deadline(std::uint64_t number);
  // The server stops: the call resolves with `why` (Shutdown before its
  // entry is in the log, OutcomeUnknown after).
  void stop();

 private:
  // kWaitingForTermStart: this leader has not committed an entry of its
  // term yet (no change may start before, core/node.h); the request waits.
  enum class Phase : std::uint8_t { kWaitingForTermStart, kCommitting, kCatchingUp };
  struct Pending {
    Promise<Index> promise;
    std::uint64_t number = 0;
    Phase phase = Phase::kCommitting;
    // kCommitting: the entry appended and its term; whether the learner
    // stage of add_voter comes next.
    Index index;
    Term term;
    bool then_promote = false;
    // add_voter: the server, and the configuration index its promotion
    // expects (the learner's entry: nothing may have changed since).
    ServerId promote;
    Index promote_prev;
    std::uint32_t rounds_caught_up = 0;
    // kWaitingForTermStart: the request, to start once it may.
    std::optional<Request> waiting;
  };

  // Starts `request` now that this leader may change the configuration.
  void begin(Request request);
  // Only with core::Canary::kConfigChangeWithoutTermCommit (a build with
  // KEEL_CANARIES): a new leader's call goes to the core at once, which then
  // appends it too early, as the canary wants the simulator to catch.
  bool skips_term_start_wait() const;

  // Proposes `changes`; on success the call waits for the entry to commit.
  void propose(const std::vector<ConfigurationChange>& changes, Index prev_index,
               bool then_promote);
  void resolve(const Result<Index>& result);

  core::Node& node_;
  const Config& config_;
  std::function<Status()> not_leader_;
  std::optional<Pending> pending_;
  std::uint64_t calls_ = 0;
};

}  // namespace keel::runtime
