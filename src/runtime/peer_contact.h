// runtime/peer_contact.h — which servers a leader can hear from: the time of
// each one's last answer, and which have been silent for longer than
// Config::peer_contact_timeout (reported once when they go silent and once
// when they answer again: kPeerContactLost, kPeerContactResumed).
//
// The peers watched follow the configuration: a server added while this
// server leads is watched from when it is first seen, one removed is
// forgotten.
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
  void stop() {
    peers_.clear();
    watching_ = false;
  }
  bool watching() const { return watching_; }
  // The configuration's other servers now: new ones count as heard from
  // now, ones no longer listed are forgotten.
  void follow(const std::vector<ServerId>& peers, Duration now);

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
  bool watching_ = false;  // between start() and stop()
};

}  // namespace keel::runtime
