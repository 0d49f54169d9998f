// sim/core_cluster.h — a whole cluster of protocol cores in one process,
// driven step by step: a network whose messages wait until delivered (and can
// be dropped, filtered, partitioned), and per-node storage that separates
// durable from unsynced state so that a crash loses exactly what a real crash
// would. Unit tests, scenario scripts, the demo and the core benchmark use it.
//
// It is deterministic: node PRNGs are seeded from Options::seed, messages are
// delivered in the order they were sent, nodes are visited in id order.
//
// Thread safety: none; one thread drives a cluster.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/cluster_invariants.h"
#include "core/config.h"
#include "core/message.h"
#include "core/node.h"
#include "core/ready.h"
#include "keel/status.h"
#include "keel/types.h"

namespace keel::sim {

class CoreCluster {
 public:
  struct Options {
    std::size_t nodes = 3;
    // The last `learners` of the nodes are learners (they receive the log
    // but never vote or campaign); the others are voters.
    std::size_t learners = 0;
    // Template for every node; id and random_seed are set per node.
    core::CoreConfig config;
    std::uint64_t seed = 1;
    // Check the cluster invariants after every process() and delivery.
    bool check_invariants = true;
  };

  using MessageFilter = std::function<bool(const core::Message&)>;

  explicit CoreCluster(Options options);

  std::vector<ServerId> ids() const;
  core::Node& node(ServerId id);
  const core::Node& node(ServerId id) const;
  bool is_up(ServerId id) const;

  // --- client calls (each followed by process(id)) ---------------------------
  Result<Index> propose(ServerId id, Payload data, EntryType type = EntryType::kCommand);
  Status read_index(ServerId id, std::uint64_t request_id);
  void campaign(ServerId id);
  Status transfer_leadership(ServerId from, ServerId to);
  // Node::propose_configuration_change on `id`.
  Result<Index> change_configuration(ServerId id, const std::vector<ConfigurationChange>& changes,
                                     Index prev_index = Index{});
  void tick(ServerId id, std::size_t times = 1);
  void tick_all(std::size_t times = 1);

  // --- network -----------------------------------------------------------------
  const std::vector<core::Message>& in_flight() const { return in_flight_; }
  // Delivers every message in flight that matches `filter` (all by default),
  // in order, processing each receiver's output as it goes. Messages sent in
  // response wait for the next call. Returns the messages delivered.
  std::vector<core::Message> deliver(const MessageFilter& filter = {});
  // Drops the matching messages in flight. Returns how many.
  std::size_t drop(const MessageFilter& filter);
  // Alternates deliver() until nothing is in flight, at most max_rounds times.
  // Returns false if messages were still in flight at the end.
  bool stabilize(std::size_t max_rounds = 1000);
  // Links that lose every message sent over them, one direction each.
  void cut(ServerId from, ServerId to);
  void isolate(ServerId id);
  // Only nodes in the same group can talk.
  void partition(const std::vector<std::vector<ServerId>>& groups);
  void heal();
  bool link_up(ServerId from, ServerId to) const;

  // --- storage and crashes ---------------------------------------------------
  // In manual mode a node's output is persisted only when persist() is called;
  // until then its after-persist messages are held back.
  void set_manual_persist(ServerId id, bool manual);
  void persist(ServerId id);
  // Drops the node and everything it had not persisted; messages to it are lost.
  void crash(ServerId id);
  // Rebuilds the node from its durable state: its state machine starts from
  // its newest snapshot (or empty) and re-applies the committed log after it.
  void restart(ServerId id);
  // A new server with empty stores (never bootstrapped: it waits for a
  // leader to add it); its address is "node-<id>".
  void add_server(ServerId id);
  // Crashes the node and loses its stores: it restarts empty, like a new
  // server under the old id.
  void wipe(ServerId id);

  // --- snapshots -------------------------------------------------------------
  // Takes a durable snapshot of the node's state machine at its applied
  // index (the state is the list of entries applied, see applied()).
  // InvalidArgument if nothing is applied yet.
  Status snapshot(ServerId id);
  // Compacts the node's log (and its durable log) through `through`.
  Status compact(ServerId id, Index through);
  // Snapshots installed from a leader so far.
  std::uint64_t installs(ServerId id) const { return member(id).installs; }

  // --- driving and observing -------------------------------------------------
  // Carries out every Ready the node has (send, persist, apply) until quiet.
  void process(ServerId id);
  void process_all();
  // The leader with the highest term among running nodes, if any.
  std::optional<ServerId> leader() const;
  // The node's state machine: every entry it reflects, from index 1 (those
  // of a snapshot it restored included).
  const std::vector<LogEntry>& applied(ServerId id) const;
  // Commands (data of kCommand entries) applied, in order.
  std::vector<std::string> applied_commands(ServerId id) const;
  const std::vector<core::ReadState>& read_states(ServerId id) const;
  const std::vector<core::Event>& events(ServerId id) const;
  // Durable hard state and log of a node (what survives a crash); the log
  // holds the entries after durable_log_base(id).
  const core::HardState& durable_hard_state(ServerId id) const;
  const std::vector<LogEntry>& durable_log(ServerId id) const;
  Index durable_log_base(ServerId id) const { return member(id).durable_log_base; }
  const core::ClusterInvariants& invariants() const { return invariants_; }
  void check_invariants();

 private:
  struct Snapshot {
    Index index;
    Term term;
    std::vector<LogEntry> state;  // the state machine: entries 1..index
    Configuration configuration;  // in force at index, and its entry's index
    Index configuration_index;
  };
  struct Member {
    core::CoreConfig config;
    std::unique_ptr<core::Node> node;  // null while crashed
    core::HardState durable_hard_state;
    Index durable_log_base;
    Term durable_log_base_term;
    std::vector<LogEntry> durable_log;    // entries after durable_log_base
    std::map<Index, Snapshot> snapshots;  // durable, by index (tests are short: all kept)
    std::uint64_t installs = 0;
    bool manual_persist = false;
    std::vector<core::Ready> unpersisted;  // manual mode: waiting for persist()
    std::vector<LogEntry> applied;
    std::vector<core::ReadState> read_states;
    std::vector<core::Event> events;
    std::uint64_t restarts = 0;
    // Bootstrapped with the cluster's first configuration (false for
    // servers added later and wiped ones: they start without one).
    bool founding = true;
  };

  Member& member(ServerId id);
  const Member& member(ServerId id) const;
  void write_durably(Member& m, const core::Ready& ready);
  void finish_persist(Member& m, core::Ready& ready);
  void send_all(std::vector<core::Message>& messages);
  void maybe_check();

  Options options_;
  Configuration configuration_;
  std::map<ServerId, Member> members_;
  std::vector<core::Message> in_flight_;
  std::set<std::pair<ServerId, ServerId>> cut_links_;
  core::ClusterInvariants invariants_;
};

}  // namespace keel::sim
