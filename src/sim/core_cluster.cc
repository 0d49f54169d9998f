#include "sim/core_cluster.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "core/check.h"

namespace keel::sim {

CoreCluster::CoreCluster(Options options) : options_(std::move(options)) {
  KEEL_CHECK("a core cluster keeps at least one voter", options_.learners < options_.nodes);
  for (std::size_t i = 1; i <= options_.nodes; ++i) {
    const bool learner = i > options_.nodes - options_.learners;
    configuration_.servers.push_back(Server{ServerId{i}, "node-" + std::to_string(i),
                                            learner ? Suffrage::kLearner : Suffrage::kVoter});
  }
  for (const Server& server : configuration_.servers) {
    const ServerId id = server.id;
    Member m;
    m.config = options_.config;
    m.config.id = id;
    m.config.random_seed = options_.seed * 1000003 + id.value;
    members_.emplace(id, std::move(m));
    restart(id);
  }
}

std::vector<ServerId> CoreCluster::ids() const {
  std::vector<ServerId> out;
  for (const auto& [id, m] : members_) out.push_back(id);
  return out;
}

void CoreCluster::add_server(ServerId id) {
  KEEL_CHECK("a new server has a new id", members_.find(id) == members_.end());
  Member m;
  m.config = options_.config;
  m.config.id = id;
  m.config.random_seed = options_.seed * 1000003 + id.value;
  m.founding = false;
  members_.emplace(id, std::move(m));
  restart(id);
}

void CoreCluster::wipe(ServerId id) {
  crash(id);
  Member& m = member(id);
  m.durable_hard_state = core::HardState{};
  m.durable_log_base = Index{};
  m.durable_log_base_term = Term{};
  m.durable_log.clear();
  m.snapshots.clear();
  m.founding = false;
  restart(id);
}

Result<Index> CoreCluster::change_configuration(ServerId id,
                                                const std::vector<ConfigurationChange>& changes,
                                                Index prev_index) {
  Result<Index> result = node(id).propose_configuration_change(changes, prev_index);
  process(id);
  return result;
}

CoreCluster::Member& CoreCluster::member(ServerId id) {
  auto it = members_.find(id);
  KEEL_CHECK("cluster member exists", it != members_.end());
  return it->second;
}

const CoreCluster::Member& CoreCluster::member(ServerId id) const {
  auto it = members_.find(id);
  KEEL_CHECK("cluster member exists", it != members_.end());
  return it->second;
}

core::Node& CoreCluster::node(ServerId id) {
  Member& m = member(id);
  KEEL_CHECK("node is running", m.node != nullptr);
  return *m.node;
}

const core::Node& CoreCluster::node(ServerId id) const {
  const Member& m = member(id);
  KEEL_CHECK("node is running", m.node != nullptr);
  return *m.node;
}

bool CoreCluster::is_up(ServerId id) const { return member(id).node != nullptr; }

Result<Index> CoreCluster::propose(ServerId id, Payload data, EntryType type) {
  Result<Index> result = node(id).propose(type, std::move(data));
  process(id);
  return result;
}

Status CoreCluster::read_index(ServerId id, std::uint64_t request_id) {
  Status status = node(id).read_index(request_id);
  process(id);
  return status;
}

void CoreCluster::campaign(ServerId id) {
  node(id).campaign();
  process(id);
}

Status CoreCluster::transfer_leadership(ServerId from, ServerId to) {
  Status status = node(from).transfer_leadership(to);
  process(from);
  return status;
}

void CoreCluster::tick(ServerId id, std::size_t times) {
  for (std::size_t i = 0; i < times; ++i) {
    node(id).tick();
    process(id);
  }
}

void CoreCluster::tick_all(std::size_t times) {
  for (std::size_t i = 0; i < times; ++i) {
    for (ServerId id : ids()) {
      if (is_up(id)) tick(id);
    }
  }
}

// --- network -------------------------------------------------------------------

bool CoreCluster::link_up(ServerId from, ServerId to) const {
  return !cut_links_.contains({from, to});
}

void CoreCluster::send_all(std::vector<core::Message>& messages) {
  for (core::Message& message : messages) in_flight_.push_back(std::move(message));
  messages.clear();
}

std::vector<core::Message> CoreCluster::deliver(const MessageFilter& filter) {
  std::vector<core::Message> batch;
  std::vector<core::Message> kept;
  for (core::Message& message : in_flight_) {
    if (!filter || filter(message)) {
      batch.push_back(std::move(message));
    } else {
      kept.push_back(std::move(message));
    }
  }
  in_flight_ = std::move(kept);
  std::vector<core::Message> delivered;
  for (core::Message& message : batch) {
    if (!link_up(message.from, message.to) || !is_up(message.to)) continue;  // lost
    if (message.type == core::MessageType::kSnapshotRequest) {
      // The shell's transfer, in one go: the receiver holds the sender's
      // snapshot durably before its core hears of it.
      const Member& sender = member(message.from);
      auto snapshot = sender.snapshots.find(message.prev_log_index);
      KEEL_CHECK("a leader sends a snapshot it holds", snapshot != sender.snapshots.end());
      member(message.to).snapshots[snapshot->first] = snapshot->second;
    }
    node(message.to).step(message);
    process(message.to);
    delivered.push_back(std::move(message));
  }
  maybe_check();
  return delivered;
}

std::size_t CoreCluster::drop(const MessageFilter& filter) {
  const std::size_t before = in_flight_.size();
  std::erase_if(in_flight_, filter);
  return before - in_flight_.size();
}

bool CoreCluster::stabilize(std::size_t max_rounds) {
  for (std::size_t round = 0; round < max_rounds && !in_flight_.empty(); ++round) deliver();
  return in_flight_.empty();
}

void CoreCluster::cut(ServerId from, ServerId to) { cut_links_.insert({from, to}); }

void CoreCluster::isolate(ServerId id) {
  for (ServerId other : ids()) {
    if (other == id) continue;
    cut(id, other);
    cut(other, id);
  }
}

void CoreCluster::partition(const std::vector<std::vector<ServerId>>& groups) {
  heal();
  auto group_of = [&](ServerId id) -> std::size_t {
    for (std::size_t g = 0; g < groups.size(); ++g) {
      if (std::find(groups[g].begin(), groups[g].end(), id) != groups[g].end()) return g;
    }
    return groups.size();  // unlisted nodes form a group of their own each
  };
  for (ServerId a : ids()) {
    for (ServerId b : ids()) {
      const std::size_t ga = group_of(a);
      if (a != b && (ga != group_of(b) || ga == groups.size())) cut(a, b);
    }
  }
}

void CoreCluster::heal() { cut_links_.clear(); }

// --- storage and crashes ---------------------------------------------------------

void CoreCluster::set_manual_persist(ServerId id, bool manual) {
  member(id).manual_persist = manual;
  if (!manual) persist(id);
}

void CoreCluster::write_durably(Member& m, const core::Ready& ready) {
  if (ready.hard_state) m.durable_hard_state = *ready.hard_state;
  if (ready.snapshot) {
    m.durable_log.clear();
    m.durable_log_base = ready.snapshot->index;
    m.durable_log_base_term = ready.snapshot->term;
  }
  if (!ready.entries.empty()) {
    // The durable log holds the indices after its base in order: cut by
    // position, not by scanning (a scan made every write cost the whole
    // log's length).
    const Index first = ready.entries.front().index;
    KEEL_CHECK("writes follow the durable log base", first > m.durable_log_base);
    const auto keep = static_cast<std::size_t>(first.value - m.durable_log_base.value - 1);
    if (keep < m.durable_log.size()) m.durable_log.resize(keep);
    m.durable_log.insert(m.durable_log.end(), ready.entries.begin(), ready.entries.end());
  }
}

void CoreCluster::finish_persist(Member& m, core::Ready& ready) {
  write_durably(m, ready);
  send_all(ready.messages_after_persist);
  if (!ready.entries.empty()) {
    m.node->on_persisted(ready.entries.back().index, ready.entries.back().term);
  } else if (ready.snapshot) {
    m.node->on_persisted(ready.snapshot->index, ready.snapshot->term);
  }
  if (ready.hard_state) m.node->on_term_persisted(ready.hard_state->term);
}

void CoreCluster::persist(ServerId id) {
  Member& m = member(id);
  if (m.node == nullptr) return;
  std::vector<core::Ready> pending = std::move(m.unpersisted);
  m.unpersisted.clear();
  for (core::Ready& ready : pending) finish_persist(m, ready);
  process(id);
}

void CoreCluster::crash(ServerId id) {
  Member& m = member(id);
  m.node.reset();
  m.unpersisted.clear();
  m.applied.clear();
  m.read_states.clear();
  std::erase_if(in_flight_, [id](const core::Message& msg) { return msg.to == id; });
}

void CoreCluster::restart(ServerId id) {
  Member& m = member(id);
  m.node.reset();
  m.unpersisted.clear();
  m.applied.clear();
  core::CoreConfig config = m.config;
  config.random_seed = m.config.random_seed + 7919 * m.restarts++;
  core::BootState boot{
      m.durable_hard_state, m.durable_log_base, m.durable_log_base_term,
      m.durable_log,        Index{0},           m.founding ? configuration_ : Configuration{}};
  if (!m.snapshots.empty()) {
    const Snapshot& newest = m.snapshots.rbegin()->second;
    boot.configuration = newest.configuration;
    boot.configuration_index = newest.configuration_index;
    boot.snapshot_index = newest.index;
    boot.snapshot_term = newest.term;
    boot.applied = newest.index;
    m.applied = newest.state;
    // The log must hold the snapshot's last entry to be kept (a crash can
    // fall between receiving a snapshot and dropping the log it replaces).
    const bool holds =
        newest.index == m.durable_log_base
            ? newest.term == m.durable_log_base_term
            : newest.index > m.durable_log_base &&
                  newest.index.value - m.durable_log_base.value <= m.durable_log.size() &&
                  m.durable_log[newest.index.value - m.durable_log_base.value - 1].term ==
                      newest.term;
    if (!holds) {
      m.durable_log.clear();
      m.durable_log_base = newest.index;
      m.durable_log_base_term = newest.term;
      boot.log_base_index = newest.index;
      boot.log_base_term = newest.term;
      boot.entries.clear();
    }
  }
  m.node = std::make_unique<core::Node>(config, std::move(boot));
  process(id);
}

Status CoreCluster::snapshot(ServerId id) {
  Member& m = member(id);
  core::Node& n = node(id);
  const Index index = n.applied_index();
  if (index.is_zero()) return Status::invalid_argument("nothing applied to snapshot");
  const auto& [configuration_index, configuration] = n.configuration_at(index);
  m.snapshots[index] =
      Snapshot{index, *n.log().term_at(index), m.applied, configuration, configuration_index};
  n.on_snapshot(index, *n.log().term_at(index));
  process(id);
  return Status::ok();
}

Status CoreCluster::compact(ServerId id, Index through) {
  Member& m = member(id);
  const Index base_before = node(id).log().base_index();
  Status status = node(id).compact(through);
  if (!status.is_ok() || through <= base_before) return status;
  // The durable log follows: it never holds less than the node's log, and
  // `through` is applied, so durable.
  const auto drop = static_cast<std::size_t>(through.value - m.durable_log_base.value);
  KEEL_CHECK("compaction stays within the durable log", drop <= m.durable_log.size());
  m.durable_log_base_term = m.durable_log[drop - 1].term;
  m.durable_log.erase(m.durable_log.begin(),
                      m.durable_log.begin() + static_cast<std::ptrdiff_t>(drop));
  m.durable_log_base = through;
  process(id);
  return status;
}

// --- driving ---------------------------------------------------------------------

void CoreCluster::process(ServerId id) {
  Member& m = member(id);
  if (m.node == nullptr) return;
  for (int guard = 0; m.node->has_ready(); ++guard) {
    KEEL_CHECK("a node settles after a bounded number of readies", guard < 100000);
    core::Ready ready = m.node->ready();
    send_all(ready.messages);
    if (m.manual_persist && (ready.must_persist() || !m.unpersisted.empty())) {
      // Held back: after-persist messages wait with the write they depend on.
      core::Ready held;
      held.hard_state = ready.hard_state;
      held.snapshot = ready.snapshot;
      held.entries = std::move(ready.entries);
      held.messages_after_persist = std::move(ready.messages_after_persist);
      m.unpersisted.push_back(std::move(held));
    } else {
      finish_persist(m, ready);
    }
    if (ready.snapshot) {
      // The state machine becomes the snapshot's (it is durable here: the
      // transfer stored it before the core heard of it).
      m.applied = m.snapshots.at(ready.snapshot->index).state;
      ++m.installs;
      m.node->on_applied(ready.snapshot->index);
    }
    if (!ready.committed_entries.empty()) {
      m.applied.insert(m.applied.end(), ready.committed_entries.begin(),
                       ready.committed_entries.end());
      m.node->on_applied(ready.committed_entries.back().index);
    }
    m.read_states.insert(m.read_states.end(), ready.read_states.begin(), ready.read_states.end());
    m.events.insert(m.events.end(), ready.events.begin(), ready.events.end());
  }
}

void CoreCluster::process_all() {
  for (ServerId id : ids()) process(id);
  maybe_check();
}

std::optional<ServerId> CoreCluster::leader() const {
  std::optional<ServerId> best;
  Term best_term;
  for (const auto& [id, m] : members_) {
    if (m.node != nullptr && m.node->is_leader() && (!best || m.node->term() > best_term)) {
      best = id;
      best_term = m.node->term();
    }
  }
  return best;
}

const std::vector<LogEntry>& CoreCluster::applied(ServerId id) const { return member(id).applied; }

std::vector<std::string> CoreCluster::applied_commands(ServerId id) const {
  std::vector<std::string> out;
  for (const LogEntry& entry : member(id).applied) {
    if (entry.type == EntryType::kCommand) out.push_back(entry.data.str());
  }
  return out;
}

const std::vector<core::ReadState>& CoreCluster::read_states(ServerId id) const {
  return member(id).read_states;
}

const std::vector<core::Event>& CoreCluster::events(ServerId id) const { return member(id).events; }

const core::HardState& CoreCluster::durable_hard_state(ServerId id) const {
  return member(id).durable_hard_state;
}

const std::vector<LogEntry>& CoreCluster::durable_log(ServerId id) const {
  return member(id).durable_log;
}

void CoreCluster::check_invariants() {
  std::vector<const core::Node*> running;
  for (const auto& [id, m] : members_) {
    if (m.node != nullptr) running.push_back(m.node.get());
  }
  invariants_.check(running);
}

void CoreCluster::maybe_check() {
  if (options_.check_invariants) check_invariants();
}

}  // namespace keel::sim
