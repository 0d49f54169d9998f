// runtime/peer_contact.h — which servers a leader can hear from: the time of
// each one's last answer, and which have been silent for longer than
// Config::peer_contact_timeout (reported once when they go silent and once
// when they answer again: kPeerContactLost, kPeerContactResumed).
//
// Thread safety: none; the raft loop owns it.
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "keel/env.h"
#include "keel/types.h"

namespace keel::runtime {

class PeerContact {
 public:
  // A new term of leadership: every peer counts as heard from now.
  void start(const std::vector<ServerId>& peers, Duration now);
  // Leadership is lost: nothing is watched.
  void stop() { peers_.clear(); }
  bool watching() const { return !peers_.empty(); }

  // An answer from `peer`. If it had been reported silent, returns how long
  // it was silent (report it resumed).
  std::optional<Duration> heard_from(ServerId peer, Duration now);
  // Peers silent for longer than `timeout` not reported yet, with how long
  // each has been silent; they are reported from now on.
  std::vector<std::pair<ServerId, Duration>> newly_silent(Duration now, Duration timeout);

 private:
  struct Peer {
    Duration last{0};
    bool silent = false;  // reported lost, not yet resumed
  };
  std::map<ServerId, Peer> peers_;
};

}  // namespace keel::runtime
