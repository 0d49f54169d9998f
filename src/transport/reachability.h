// transport/reachability.h — which server's frames reach which: the fault
// model of the in-memory network (one-way cuts, isolated servers, partitions).
//
// Rules, all of which must allow a frame for it to pass:
//   - a cut (from, to) loses frames in that direction only;
//   - an isolated server neither sends to nor hears from anyone else;
//   - while a partition is set, only servers in the same group reach each
//     other; a server listed in no group is alone in a group of its own.
// A server always reaches itself. heal() lifts every rule at once.
//
// Thread safety: a value; InMemoryNetwork guards it with its mutex.
#pragma once

#include <map>
#include <set>
#include <utility>
#include <vector>

#include "keel/types.h"

namespace keel::transport {

class Reachability {
 public:
  void cut(ServerId from, ServerId to) { cuts_.insert({from, to}); }
  void isolate(ServerId id) { isolated_.insert(id); }
  // Replaces any earlier partition; cuts and isolations stay.
  void partition(const std::vector<std::set<ServerId>>& groups);
  void heal();

  bool can_reach(ServerId from, ServerId to) const;

 private:
  bool same_group(ServerId from, ServerId to) const;

  std::set<std::pair<ServerId, ServerId>> cuts_;
  std::set<ServerId> isolated_;
  bool partitioned_ = false;
  std::map<ServerId, std::size_t> group_of_;
};

}  // namespace keel::transport
