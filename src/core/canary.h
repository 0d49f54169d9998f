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
};

inline constexpr Canary kAllCanaries[] = {
    Canary::kFigure8Commit,         Canary::kReadWithoutTermStart, Canary::kAckBeforePersist,
    Canary::kNoFollowerCommitClamp, Canary::kVoteBeforePersist,    Canary::kNoCheckQuorumStepDown,
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
