// core/canary.h — deliberately broken protocol rules, to prove that the
// simulator (keel-sim) catches each one.
//
// Compiled in only when the build is configured with -DKEEL_CANARIES=ON
// (which defines KEEL_CANARIES for every target that links keel_core, so the
// field CoreConfig::canary exists everywhere or nowhere). A canary is chosen
// at run time through CoreConfig::canary (keel::Config::canary in the
// runtime); the default, kNone, keeps every rule. Release builds never
// contain these switches.
//
// Thread safety: constants and pure functions.
#pragma once

#ifdef KEEL_CANARIES

#include <cstdint>
#include <optional>
#include <string_view>

namespace keel::core {

enum class Canary : std::uint8_t {
  kNone = 0,
  // Commit an entry of an earlier term by counting its replicas (breaks the
  // rule of Figure 8, §5.4.2).
  kFigure8Commit = 1,
  // Serve ReadIndex and lease reads before the leader's term-start entry has
  // committed (breaks thesis §6.4: its commit index may still be behind).
  kReadWithoutTermStart = 2,
  // Acknowledge appended entries before they are durable (sent with the
  // messages that may leave at once instead of after persisting).
  kAckBeforePersist = 3,
  // A follower trusts the leader's commit index beyond the entries the
  // append verified (no clamp, and heartbeats carry the unclamped commit).
  kNoFollowerCommitClamp = 4,
  // Grant a vote before the vote is durable.
  kVoteBeforePersist = 5,
  // A leader that has not heard from a quorum for an election timeout keeps
  // leading (no check-quorum step-down, thesis §6.2).
  kNoCheckQuorumStepDown = 6,
  // A leader sends appends and heartbeats of a term before that term (and
  // its vote) is durable: a single voter elected in one step.
  kSendBeforeTermDurable = 7,
  // The runtime numbers forwarded reads from 1 in every run, so a restarted
  // follower takes the answer meant for its previous run (runtime canary).
  kReadIdReuseAfterRestart = 8,
  // The runtime steps a frame (or any other input) before catching up the
  // ticks that fell due while its loop stalled (runtime canary).
  kStepBeforeTickCatchUp = 9,
  // A leader releases ReadIndex reads without a quorum round (thesis §6.4,
  // step 3: it must confirm it is still leader).
  kReadWithoutConfirmation = 10,
  // A read joins the oldest round still waiting for its quorum, whose
  // heartbeats went out before the read arrived: the round proves
  // leadership only as of an earlier moment.
  kReadConfirmedByEarlierRound = 11,
  // The lease runs from when a quorum's acknowledgement arrived instead of
  // from when the acknowledged heartbeats were sent.
  kLeaseFromAckTime = 12,
  // The lease lasts the followers' whole election timeout as the leader's
  // clock measures it: no margin for a follower's clock running fast (nor
  // for tick rounding).
  kLeaseWithoutDriftMargin = 13,
  // A follower does not restart its election timer when a heartbeat arrives
  // (only appends with entries do): in a quiet cluster it campaigns though
  // its leader is fine (a liveness rule: caught as term churn).
  kElectionTimerNotReset = 14,
  // The log writer stores the hard state before a write's entries with a
  // commit index that covers them: a crash (or failed append) between the
  // two leaves a replaced stale suffix counted as committed (runtime canary).
  kStoredCommitCoversEntries = 15,
  // A follower sent a snapshot keeps its log whenever it holds any entry at
  // the snapshot's index, of whatever term (Figure 13, rule 7 without the
  // term check): a conflicting entry is then taken as committed.
  kInstallKeepsConflictingLog = 16,
  // The runtime cuts the log as soon as it starts a snapshot, before the
  // snapshot is durable: a crash during persist (or a failed one) loses the
  // entries nothing covers (runtime canary).
  kCompactPastSnapshot = 17,
  // The applier captures snapshots between the entries of a restore's run:
  // a server restarted from one meets the rest of the run without its start
  // (runtime canary).
  kSnapshotInsideRestore = 18,
  // The four membership canaries below are caught by the schedules of
  // tests/unit/core/membership_canary_test.cc, and those the simulator's
  // membership churn reaches by the default swarm too (budgets in
  // tests/sim/keel_sim_seeds.cmake).
  // A leader appends a configuration change before an entry of its own
  // term has committed (the single-server change bug of 2015).
  kConfigChangeWithoutTermCommit = 19,
  // A joint configuration decides with the incoming majority alone: the
  // outgoing voters' majority is not asked (thesis §4.3).
  kJointSingleMajority = 20,
  // Vote requests from servers that are not voters of the latest
  // configuration are answered: a removed server can raise terms.
  kRemovedServerVotes = 21,
  // A leader accepts responses to an earlier life of a follower's progress
  // (a server removed, wiped and added back under its id).
  kStaleEpochAccepted = 22,
};

inline constexpr Canary kAllCanaries[] = {
    Canary::kFigure8Commit,
    Canary::kReadWithoutTermStart,
    Canary::kAckBeforePersist,
    Canary::kNoFollowerCommitClamp,
    Canary::kVoteBeforePersist,
    Canary::kNoCheckQuorumStepDown,
    Canary::kSendBeforeTermDurable,
    Canary::kReadIdReuseAfterRestart,
    Canary::kStepBeforeTickCatchUp,
    Canary::kReadWithoutConfirmation,
    Canary::kReadConfirmedByEarlierRound,
    Canary::kLeaseFromAckTime,
    Canary::kLeaseWithoutDriftMargin,
    Canary::kElectionTimerNotReset,
    Canary::kStoredCommitCoversEntries,
    Canary::kInstallKeepsConflictingLog,
    Canary::kCompactPastSnapshot,
    Canary::kSnapshotInsideRestore,
    Canary::kConfigChangeWithoutTermCommit,
    Canary::kJointSingleMajority,
    Canary::kRemovedServerVotes,
    Canary::kStaleEpochAccepted,
};

// The names keel-sim --canary accepts.
constexpr std::string_view canary_name(Canary canary) {
  switch (canary) {
    case Canary::kNone:
      return "none";
    case Canary::kFigure8Commit:
      return "figure8-commit";
    case Canary::kReadWithoutTermStart:
      return "read-without-term-start";
    case Canary::kAckBeforePersist:
      return "ack-before-persist";
    case Canary::kNoFollowerCommitClamp:
      return "no-follower-commit-clamp";
    case Canary::kVoteBeforePersist:
      return "vote-before-persist";
    case Canary::kNoCheckQuorumStepDown:
      return "no-check-quorum-step-down";
    case Canary::kSendBeforeTermDurable:
      return "send-before-term-durable";
    case Canary::kReadIdReuseAfterRestart:
      return "read-id-reuse-after-restart";
    case Canary::kStepBeforeTickCatchUp:
      return "step-before-tick-catch-up";
    case Canary::kReadWithoutConfirmation:
      return "read-without-confirmation";
    case Canary::kReadConfirmedByEarlierRound:
      return "read-confirmed-by-earlier-round";
    case Canary::kLeaseFromAckTime:
      return "lease-from-ack-time";
    case Canary::kLeaseWithoutDriftMargin:
      return "lease-without-drift-margin";
    case Canary::kElectionTimerNotReset:
      return "election-timer-not-reset";
    case Canary::kStoredCommitCoversEntries:
      return "stored-commit-covers-entries";
    case Canary::kInstallKeepsConflictingLog:
      return "install-keeps-conflicting-log";
    case Canary::kCompactPastSnapshot:
      return "compact-past-snapshot";
    case Canary::kSnapshotInsideRestore:
      return "snapshot-inside-restore";
    case Canary::kConfigChangeWithoutTermCommit:
      return "config-change-without-term-commit";
    case Canary::kJointSingleMajority:
      return "joint-single-majority";
    case Canary::kRemovedServerVotes:
      return "removed-server-votes";
    case Canary::kStaleEpochAccepted:
      return "stale-epoch-accepted";
  }
  return "unknown";
}

constexpr std::optional<Canary> canary_from_name(std::string_view name) {
  if (name == canary_name(Canary::kNone)) return Canary::kNone;
  for (Canary canary : kAllCanaries) {
    if (canary_name(canary) == name) return canary;
  }
  return std::nullopt;
}

}  // namespace keel::core

#endif  // KEEL_CANARIES
