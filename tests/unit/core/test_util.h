// tests/unit/core/test_util.h — small helpers shared by the core unit tests:
// building single Nodes with a given log, crafting messages, draining Ready
// batches as an obedient shell would, and a few CoreCluster schedules.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <keel/types.h>

#include "core/config.h"
#include "core/message.h"
#include "core/node.h"
#include "core/ready.h"
#include "sim/core_cluster.h"

// Readable gtest output for the values tests compare.
namespace keel {
inline void PrintTo(const LogEntry& entry, std::ostream* out) { *out << core::to_string(entry); }
}  // namespace keel
namespace keel::core {
inline void PrintTo(const Message& message, std::ostream* out) { *out << to_string(message); }
}  // namespace keel::core

namespace keel::core::testutil {

inline ServerId S(std::uint64_t id) { return ServerId{id}; }
inline Term T(std::uint64_t term) { return Term{term}; }
inline Index I(std::uint64_t index) { return Index{index}; }

// Voters 1..n.
inline Configuration voters(std::size_t n) {
  Configuration configuration;
  for (std::size_t i = 1; i <= n; ++i) {
    configuration.servers.push_back(Server{ServerId{i}, "node-" + std::to_string(i)});
  }
  return configuration;
}

// Entries at indices 1..n with the given terms; the data names index and term,
// so two entries are equal exactly when index and term are.
inline std::vector<LogEntry> log_with_terms(const std::vector<std::uint64_t>& terms) {
  std::vector<LogEntry> entries;
  for (std::size_t i = 0; i < terms.size(); ++i) {
    entries.push_back(LogEntry{Term{terms[i]}, Index{i + 1}, EntryType::kCommand,
                               std::to_string(i + 1) + "/" + std::to_string(terms[i])});
  }
  return entries;
}

inline std::vector<LogEntry> entries_of(const RaftLog& log) {
  std::vector<LogEntry> out;
  for (Index i = log.first_index(); i <= log.last_index(); i = i.next()) out.push_back(log.at(i));
  return out;
}

// A config with pre-vote off: most hand-driven tests want one message round
// per election. Tests about pre-vote turn it back on.
inline CoreConfig plain_config() {
  CoreConfig config;
  config.pre_vote = false;
  return config;
}

// A node `id` in a cluster of `cluster_size` voters, booted with `log`, at
// `term` (default: the log's last term).
inline Node make_node(std::uint64_t id, std::size_t cluster_size,
                      CoreConfig config = plain_config(), std::vector<LogEntry> log = {},
                      std::uint64_t term = 0) {
  config.id = ServerId{id};
  BootState boot;
  boot.hard_state.term = Term{term != 0 || log.empty() ? term : log.back().term.value};
  boot.entries = std::move(log);
  boot.configuration = voters(cluster_size);
  return Node(config, std::move(boot));
}

// --- messages ------------------------------------------------------------------

inline Message vote_request(std::uint64_t from, std::uint64_t to, std::uint64_t term,
                            std::uint64_t last_index, std::uint64_t last_term,
                            bool transfer = false) {
  return Message{.type = MessageType::kVoteRequest,
                 .from = S(from),
                 .to = S(to),
                 .term = T(term),
                 .last_log_index = I(last_index),
                 .last_log_term = T(last_term),
                 .leadership_transfer = transfer};
}

inline Message vote_response(std::uint64_t from, std::uint64_t to, std::uint64_t term,
                             bool granted) {
  return Message{.type = MessageType::kVoteResponse,
                 .from = S(from),
                 .to = S(to),
                 .term = T(term),
                 .reject = !granted};
}

inline Message append(std::uint64_t from, std::uint64_t to, std::uint64_t term,
                      std::uint64_t prev_index, std::uint64_t prev_term,
                      std::vector<LogEntry> entries = {}, std::uint64_t commit = 0) {
  return Message{.type = MessageType::kAppendRequest,
                 .from = S(from),
                 .to = S(to),
                 .term = T(term),
                 .prev_log_index = I(prev_index),
                 .prev_log_term = T(prev_term),
                 .entries = std::move(entries),
                 .commit = I(commit)};
}

inline Message append_ack(std::uint64_t from, std::uint64_t to, std::uint64_t term,
                          std::uint64_t match) {
  return Message{.type = MessageType::kAppendResponse,
                 .from = S(from),
                 .to = S(to),
                 .term = T(term),
                 .match_index = I(match)};
}

inline Message heartbeat(std::uint64_t from, std::uint64_t to, std::uint64_t term,
                         std::uint64_t commit = 0, std::uint64_t round = 0) {
  return Message{.type = MessageType::kHeartbeatRequest,
                 .from = S(from),
                 .to = S(to),
                 .term = T(term),
                 .commit = I(commit),
                 .read_round = round};
}

inline LogEntry entry(std::uint64_t index, std::uint64_t term, std::string data = "") {
  return LogEntry{Term{term}, Index{index}, EntryType::kCommand, std::move(data)};
}

// Every message of the Ready, in the order a shell sends them.
inline std::vector<Message> all_messages(const Ready& ready) {
  std::vector<Message> out = ready.messages;
  out.insert(out.end(), ready.messages_after_persist.begin(), ready.messages_after_persist.end());
  return out;
}

inline std::vector<Message> only(const std::vector<Message>& messages, MessageType type,
                                 ServerId to = kNoServer) {
  std::vector<Message> out;
  for (const Message& m : messages) {
    if (m.type == type && (to.is_zero() || m.to == to)) out.push_back(m);
  }
  return out;
}

inline bool has_event(const std::vector<Event>& events, EventKind kind) {
  for (const Event& event : events) {
    if (event.kind == kind) return true;
  }
  return false;
}

// Takes the node's Ready and carries it out as a shell with an instant disk
// would: persist, apply. Returns the Ready (its messages are for the caller).
inline Ready drain(Node& node) {
  Ready ready = node.ready();
  if (!ready.entries.empty()) {
    node.on_persisted(ready.entries.back().index, ready.entries.back().term);
  } else if (ready.snapshot) {
    node.on_persisted(ready.snapshot->index, ready.snapshot->term);
  }
  if (ready.hard_state) node.on_term_persisted(ready.hard_state->term);
  if (ready.snapshot) node.on_applied(ready.snapshot->index);
  if (!ready.committed_entries.empty()) node.on_applied(ready.committed_entries.back().index);
  return ready;
}

// Makes a hand-driven node (pre-vote off) leader of the next term by feeding it
// granted votes from the lowest-numbered other voters, then drains its Ready.
// Returns that Ready: it holds the term-start entry and the first appends.
inline Ready make_leader(Node& node) {
  node.campaign();
  drain(node);
  const std::uint64_t term = node.term().value;
  for (ServerId voter : node.configuration().voters()) {
    if (node.is_leader()) break;
    if (voter != node.id()) node.step(vote_response(voter.value, node.id().value, term, true));
  }
  EXPECT_TRUE(node.is_leader());
  return drain(node);
}

// --- CoreCluster ---------------------------------------------------------------

inline sim::CoreCluster::Options cluster_options(std::size_t nodes, CoreConfig config = {},
                                                 std::uint64_t seed = 1) {
  sim::CoreCluster::Options options;
  options.nodes = nodes;
  options.config = config;
  options.seed = seed;
  return options;
}

inline bool is_vote_traffic(const Message& m) {
  return m.type == MessageType::kVoteRequest || m.type == MessageType::kVoteResponse ||
         m.type == MessageType::kPreVoteRequest || m.type == MessageType::kPreVoteResponse;
}

inline std::function<bool(const Message&)> of_type(MessageType type) {
  return [type](const Message& m) { return m.type == type; };
}

inline std::function<bool(const Message&)> of_type_to(MessageType type, std::uint64_t to) {
  return [type, to](const Message& m) { return m.type == type && m.to == ServerId{to}; };
}

inline bool any_message(const Message& /*m*/) { return true; }

// Campaigns on `id` and delivers only election traffic, retrying (each retry
// a new term) until `id` leads. Whatever the new leader sends stays in flight.
inline bool win_election(sim::CoreCluster& cluster, ServerId id, int max_attempts = 3) {
  for (int attempt = 0; attempt < max_attempts && !cluster.node(id).is_leader(); ++attempt) {
    cluster.campaign(id);
    for (int round = 0; round < 8 && !cluster.node(id).is_leader(); ++round) {
      cluster.deliver(is_vote_traffic);
    }
  }
  return cluster.node(id).is_leader();
}

// With lease reads on, a node that just started refuses votes for one
// election timeout (Node::in_leader_lease). Lets that window pass on every
// node, losing whatever they send meanwhile, so a test can then elect whom it
// wants.
inline void pass_startup_vote_protection(sim::CoreCluster& cluster, std::uint32_t ticks) {
  for (std::uint32_t i = 0; i < ticks; ++i) {
    cluster.tick_all();
    cluster.drop(any_message);
  }
}

// Elects `id` and lets the cluster settle: every node holds the committed
// term-start entry.
inline void elect_and_settle(sim::CoreCluster& cluster, ServerId id) {
  cluster.campaign(id);
  ASSERT_TRUE(cluster.stabilize());
  ASSERT_TRUE(cluster.node(id).is_leader());
  ASSERT_TRUE(cluster.node(id).committed_in_current_term());
}

}  // namespace keel::core::testutil
