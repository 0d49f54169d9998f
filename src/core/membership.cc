#include "core/membership.h"

#include <algorithm>
#include <iterator>
#include <set>
#include <string>

#include "core/check.h"

namespace keel::core {

ConfigurationLog::ConfigurationLog(Configuration base, Index base_index)
    : entries_{{base_index, std::move(base)}} {}

void ConfigurationLog::append(Index index, Configuration configuration) {
  KEEL_CHECK("configuration entries are appended in order", index > latest_index());
  entries_.emplace_back(index, std::move(configuration));
}

void ConfigurationLog::truncate_from(Index index) {
  // The oldest one stays: it is in force at the log's base, which no
  // truncation reaches (only uncommitted entries are truncated).
  while (entries_.size() > 1 && entries_.back().first >= index) entries_.pop_back();
}

void ConfigurationLog::compact(Index through) {
  // Keep the newest configuration at or before `through` (in force at the
  // new base) and everything after it.
  std::size_t keep_from = 0;
  for (std::size_t i = 1; i < entries_.size(); ++i) {
    if (entries_[i].first <= through) keep_from = i;
  }
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(keep_from));
}

void ConfigurationLog::reset(Configuration configuration, Index index) {
  entries_.clear();
  entries_.emplace_back(index, std::move(configuration));
}

const std::pair<Index, Configuration>& ConfigurationLog::at(Index index) const {
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (it->first <= index) return *it;
  }
  return entries_.front();
}

Index ConfigurationLog::membership_start(ServerId id) const {
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (!it->second.contains(id)) return it->first;
  }
  return entries_.front().first;
}

namespace {

std::string server_text(ServerId id) { return "server " + std::to_string(id.value); }

Server* find_in(std::vector<Server>& servers, ServerId id) {
  for (Server& server : servers) {
    if (server.id == id) return &server;
  }
  return nullptr;
}

}  // namespace

Result<Configuration> apply_changes(const Configuration& current,
                                    const std::vector<ConfigurationChange>& changes) {
  KEEL_CHECK("changes start from a configuration outside a change", !current.joint());
  if (changes.empty()) return Status::invalid_argument("no membership change given");
  Configuration next = current;
  std::set<ServerId> seen;
  for (const ConfigurationChange& change : changes) {
    using Kind = ConfigurationChange::Kind;
    if (change.id.is_zero()) return Status::invalid_argument("server id 0 is reserved");
    if (!seen.insert(change.id).second) {
      return Status::invalid_argument(server_text(change.id) + " appears in two changes");
    }
    Server* existing = find_in(next.servers, change.id);
    const bool new_address =
        existing != nullptr && !change.address.empty() && change.address != existing->address;
    const bool adding = change.kind == Kind::kAddVoter || change.kind == Kind::kAddLearner;
    if (adding && existing == nullptr) {
      if (change.address.empty()) {
        return Status::invalid_argument("a new " + server_text(change.id) + " needs an address");
      }
      next.servers.push_back(
          Server{change.id, change.address,
                 change.kind == Kind::kAddVoter ? Suffrage::kVoter : Suffrage::kLearner});
      continue;
    }
    switch (change.kind) {
      case Kind::kAddVoter:
        if (new_address) {
          return Status::invalid_argument(server_text(change.id) + " is a member at " +
                                          existing->address + ", not " + change.address);
        }
        existing->suffrage = Suffrage::kVoter;  // a learner promoted, or already a voter
        break;
      case Kind::kAddLearner:
        if (existing->suffrage == Suffrage::kVoter) {
          return Status::invalid_argument(server_text(change.id) +
                                          " is a voter: demote it to make it a learner");
        } else if (new_address) {
          existing->address = change.address;  // a learner that moved
        }
        break;
      case Kind::kDemoteVoter:
        if (existing != nullptr) existing->suffrage = Suffrage::kLearner;
        break;
      case Kind::kRemoveServer:
        std::erase_if(next.servers, [&](const Server& server) { return server.id == change.id; });
        break;
    }
  }
  if (next.voter_count() == 0) {
    return Status::invalid_argument("the change would leave the cluster without a voter");
  }
  return next;
}

Configuration transition(const Configuration& current, const Configuration& next) {
  KEEL_CHECK("a transition starts outside a change", !current.joint() && !next.joint());
  const std::vector<ServerId> before = current.incoming_voters();
  const std::vector<ServerId> after = next.incoming_voters();
  std::vector<ServerId> differ;
  std::set_symmetric_difference(before.begin(), before.end(), after.begin(), after.end(),
                                std::back_inserter(differ));
  if (differ.size() <= 1) return next;
  Configuration joint = next;
  for (const Server& server : current.servers) {
    if (server.suffrage == Suffrage::kVoter) joint.outgoing.push_back(server);
  }
  return joint;
}

Configuration leave_joint(const Configuration& joint) {
  Configuration next = joint;
  next.outgoing.clear();
  return next;
}

}  // namespace keel::core
