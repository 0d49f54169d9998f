#include "transport/reachability.h"

namespace keel::transport {

void Reachability::partition(const std::vector<std::set<ServerId>>& groups) {
  partitioned_ = true;
  group_of_.clear();
  for (std::size_t group = 0; group < groups.size(); ++group) {
    for (ServerId id : groups[group]) group_of_[id] = group;
  }
}

void Reachability::heal() {
  cuts_.clear();
  isolated_.clear();
  partitioned_ = false;
  group_of_.clear();
}

bool Reachability::can_reach(ServerId from, ServerId to) const {
  if (from == to) return true;
  if (cuts_.contains({from, to})) return false;
  if (isolated_.contains(from) || isolated_.contains(to)) return false;
  return !partitioned_ || same_group(from, to);
}

// A server named in no group reaches nobody: a test that forgets a server in
// its partition sees it cut off rather than silently bridging the groups.
bool Reachability::same_group(ServerId from, ServerId to) const {
  const auto from_group = group_of_.find(from);
  const auto to_group = group_of_.find(to);
  return from_group != group_of_.end() && to_group != group_of_.end() &&
         from_group->second == to_group->second;
}

}  // namespace keel::transport
