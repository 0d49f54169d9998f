#include "runtime/peer_contact.h"

namespace keel::runtime {

void PeerContact::start(const std::vector<ServerId>& peers, Duration now) {
  peers_.clear();
  for (ServerId peer : peers) peers_[peer] = Peer{now, false};
  watching_ = true;
}

void PeerContact::follow(const std::vector<ServerId>& peers, Duration now) {
  if (!watching_) return;
  std::map<ServerId, Peer> next;
  for (ServerId peer : peers) {
    auto it = peers_.find(peer);
    next[peer] = it == peers_.end() ? Peer{now, false} : it->second;
  }
  peers_ = std::move(next);
}

std::optional<Duration> PeerContact::heard_from(ServerId peer, Duration now) {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return std::nullopt;
  const Duration silent_for = now - it->second.last;
  it->second.last = now;
  if (!it->second.silent) return std::nullopt;
  it->second.silent = false;
  return silent_for;
}

std::vector<std::pair<ServerId, Duration>> PeerContact::newly_silent(Duration now,
                                                                     Duration timeout) {
  std::vector<std::pair<ServerId, Duration>> out;
  for (auto& [id, peer] : peers_) {
    if (peer.silent || now - peer.last <= timeout) continue;
    peer.silent = true;
    out.emplace_back(id, now - peer.last);
  }
  return out;
}

}  // namespace keel::runtime
