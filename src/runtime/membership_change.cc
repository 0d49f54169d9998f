#include "runtime/membership_change.h"

#include <string>
#include <utility>

#ifdef KEEL_CANARIES
#include "core/canary.h"
#endif

namespace keel::runtime {

namespace {

std::string server_text(ServerId id) { return "server " + std::to_string(id.value); }

}  // namespace

void MembershipChange::start(Request request) {
  if (active()) {
    request.promise.resolve(Status::with_code(StatusCode::kConfigurationChangeInProgress,
                                              "another membership call is in progress"));
    return;
  }
  if (!node_.is_leader()) {
    request.promise.resolve(not_leader_());
    return;
  }
  pending_ = Pending{request.promise, ++calls_};
  if (!node_.committed_in_current_term() && !skips_term_start_wait()) {
    pending_->phase = Phase::kWaitingForTermStart;
    pending_->waiting = std::move(request);
    return;
  }
  begin(std::move(request));
}

bool MembershipChange::skips_term_start_wait() const {
#ifdef KEEL_CANARIES
  return config_.canary == static_cast<std::uint8_t>(core::Canary::kConfigChangeWithoutTermCommit);
#else
  return false;
#endif
}

void MembershipChange::begin(Request request) {
  if (!request.promote_after_catch_up) {
    propose(request.changes, request.prev_index, /*then_promote=*/false);
    return;
  }
  const ConfigurationChange& change = request.changes.front();
  const Server* existing = node_.configuration().find(change.id);
  if (existing == nullptr || node_.configuration().joint()) {
    // Not a member: a learner first. (In a joint configuration the core
    // refuses the change with the reason.)
    ConfigurationChange learner{ConfigurationChange::Kind::kAddLearner, change.id, change.address};
    pending_->promote = change.id;
    propose({learner}, request.prev_index, /*then_promote=*/true);
  } else if (existing->suffrage == Suffrage::kVoter) {
    propose(request.changes, request.prev_index, /*then_promote=*/false);  // nothing to do
  } else {
    // A learner already: the catch-up, once the same checks as a change
    // hold (an address that differs, a stale prev_index, another change).
    const ConfigurationState state = node_.configuration_state();
    if (!change.address.empty() && change.address != existing->address) {
      resolve(Status::invalid_argument(server_text(change.id) + " is a learner at " +
                                       existing->address + ", not " + change.address));
    } else if (state.latest_index > state.committed_index) {
      resolve(Status::with_code(StatusCode::kConfigurationChangeInProgress,
                                "the configuration change at index " +
                                    std::to_string(state.latest_index.value) +
                                    " is still in progress"));
    } else if (!request.prev_index.is_zero() && request.prev_index != state.latest_index) {
      resolve(Status::with_code(
          StatusCode::kConfigurationChangeInProgress,
          "the configuration changed since index " + std::to_string(request.prev_index.value) +
              " (it is now at index " + std::to_string(state.latest_index.value) + ")"));
    } else {
      pending_->phase = Phase::kCatchingUp;
      pending_->promote = change.id;
      pending_->promote_prev = state.latest_index;
    }
  }
}

void MembershipChange::propose(const std::vector<ConfigurationChange>& changes, Index prev_index,
                               bool then_promote) {
  const Index committed_before = node_.configuration_state().committed_index;
  Result<Index> appended = node_.propose_configuration_change(changes, prev_index);
  if (!appended.is_ok()) {
    resolve(appended.status().code() == StatusCode::kNotLeader ? not_leader_() : appended.status());
    return;
  }
  pending_->phase = Phase::kCommitting;
  pending_->index = *appended;
  pending_->term = node_.term();
  pending_->then_promote = then_promote;
  if (*appended <= committed_before) {
    // Nothing to change: already the configuration asked for.
    if (then_promote) {
      pending_->phase = Phase::kCatchingUp;
      pending_->promote_prev = *appended;
    } else {
      resolve(*appended);
    }
  }
}

void MembershipChange::check() {
  if (!pending_) return;
  if (pending_->phase == Phase::kWaitingForTermStart) {
    if (!node_.is_leader()) {
      resolve(not_leader_());
    } else if (node_.committed_in_current_term()) {
      Request request = std::move(*pending_->waiting);
      pending_->waiting.reset();
      pending_->phase = Phase::kCommitting;
      begin(std::move(request));
    }
    return;
  }
  if (pending_->phase == Phase::kCatchingUp) {
    // Leadership lost while it caught up: not promoted, it stays a learner.
    if (!node_.is_leader()) resolve(not_leader_());
    return;
  }
  const ConfigurationState state = node_.configuration_state();
  const bool ours = (node_.is_leader() && node_.term() == pending_->term) ||
                    node_.log().term_at(pending_->index) == pending_->term;
  if (ours && state.committed_index >= pending_->index && !state.committed.joint()) {
    if (pending_->then_promote) {
      pending_->phase = Phase::kCatchingUp;
      pending_->promote_prev = pending_->index;
      pending_->rounds_caught_up = 0;
      return;
    }
    resolve(state.committed_index);
    return;
  }
  if (!node_.is_leader() || node_.term() != pending_->term) {
    resolve(Status::outcome_unknown(
        "leadership was lost before the configuration change committed; it may still take "
        "effect"));
  }
}

void MembershipChange::on_round() {
  if (!catching_up()) return;
  // Caught up: it answers (heard from in this check-quorum window), its log
  // matches ours (replicating, not probing or taking a snapshot), and it is
  // no further behind than the bound.
  const core::Progress* progress = node_.progress(pending_->promote);
  const bool caught_up =
      progress != nullptr && progress->recent_active &&
      progress->state == core::ProgressState::kReplicate &&
      progress->match_index.value + config_.promotion_max_lag_entries >= node_.last_index().value;
  pending_->rounds_caught_up = caught_up ? pending_->rounds_caught_up + 1 : 0;
  if (pending_->rounds_caught_up < config_.promotion_rounds) return;
  ConfigurationChange promote{ConfigurationChange::Kind::kAddVoter, pending_->promote, {}};
  propose({promote}, pending_->promote_prev, /*then_promote=*/false);
}

void MembershipChange::on_deadline(std::uint64_t number) {
  if (!pending_ || pending_->number != number) return;
  if (pending_->phase == Phase::kWaitingForTermStart) {
    resolve(Status::timeout(
        "this new leader had not committed an entry of its term by the deadline; nothing "
        "changed"));
  } else if (pending_->phase == Phase::kCatchingUp) {
    resolve(Status::timeout(server_text(pending_->promote) +
                            " did not catch up before the deadline; it stays a learner"));
  } else {
    resolve(Status::outcome_unknown(
        "the deadline passed before the configuration change committed; it may still take "
        "effect"));
  }
}

void MembershipChange::stop() {
  if (!pending_) return;
  if (pending_->phase != Phase::kCommitting) {
    resolve(Status::shutdown());
  } else {
    resolve(Status::outcome_unknown(
        "shut down before the configuration change committed; it may still take effect"));
  }
}

void MembershipChange::resolve(const Result<Index>& result) {
  pending_->promise.resolve(result);
  pending_.reset();
}

}  // namespace keel::runtime
