// core/membership.h — the configurations a server's log holds, and the rules
// for moving from one to the next (thesis chapter 4).
//
// A configuration is in force as soon as its entry is in the log, committed
// or not (§4.1), so a server must be able to go back to the previous one when
// a new leader truncates the entry away. ConfigurationLog keeps every
// configuration entry after the log's base, and the one in force at the base
// (from the bootstrap entry or the snapshot), so that it can answer "which
// configuration was in force at index i" for any i the log still holds: the
// latest (i = last index), the committed one (i = commit index) and the one
// a snapshot taken at i must record.
//
// Changes are computed here too: apply_changes() turns a list of requested
// changes into the configuration they lead to (refusing ones that make no
// sense), and transition() says which entry the leader appends to get there:
// the new configuration itself when at most one voter comes or goes (the
// single-server path, §4.2), otherwise the joint configuration C_old,new
// (§4.3), which the leader leaves for C_new once it commits.
//
// Thread safety: values; one object per thread.
#pragma once

#include <utility>
#include <vector>

#include "keel/status.h"
#include "keel/types.h"

namespace keel::core {

class ConfigurationLog {
 public:
  ConfigurationLog() = default;
  // `base` is in force from `base_index` on (0 and empty for a server that
  // was never bootstrapped).
  ConfigurationLog(Configuration base, Index base_index);

  // The log appended a configuration entry at `index` (after every other).
  void append(Index index, Configuration configuration);
  // The log dropped its entries from `index` on.
  void truncate_from(Index index);
  // The log's base moved to `through`: forget what no index after it needs.
  void compact(Index through);
  // An installed snapshot replaced the whole log; its configuration is
  // `configuration`, held by the entry at `index`.
  void reset(Configuration configuration, Index index);

  const Configuration& latest() const { return entries_.back().second; }
  Index latest_index() const { return entries_.back().first; }
  // The configuration in force at `index` and the index of its entry. For
  // an index before the oldest one kept, the oldest.
  const std::pair<Index, Configuration>& at(Index index) const;
  // Where the present membership of `id` began: the index of the newest
  // configuration that does not list it (its removal from an earlier life,
  // or 0 if none is kept), or the oldest one's if every one kept lists it.
  Index membership_start(ServerId id) const;

 private:
  std::vector<std::pair<Index, Configuration>> entries_{{Index{}, Configuration{}}};
};

// What `changes` make of `current` (which is not joint), applied in order.
// A change that is already true (adding a voter that is one, removing a
// server that is not there) changes nothing. InvalidArgument for a change
// that cannot be made: an id of 0, a new server without an address, a
// server given a second address, a voter added as a learner (demote it),
// the same server twice, a result without voters.
Result<Configuration> apply_changes(const Configuration& current,
                                    const std::vector<ConfigurationChange>& changes);

// The entry that takes the cluster from `current` to `next` (neither
// joint): `next` when at most one voter differs, else the joint
// configuration {servers: next's, outgoing: current's voters}.
Configuration transition(const Configuration& current, const Configuration& next);

// What a joint configuration leads to: its incoming half.
Configuration leave_joint(const Configuration& joint);

}  // namespace keel::core
