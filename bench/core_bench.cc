// bench/core_bench.cc — micro-benchmarks of the protocol core alone: no disk,
// no network, no threads. What a proposal costs in CPU when everything else
// is free; BENCHMARKS.md records the figures and how they were taken.
//
//   BM_ClusterCommit    3 nodes in a sim::CoreCluster (invariant checks off):
//                       propose `batch` commands on the leader, then deliver
//                       messages until all are committed and applied there.
//   BM_LeaderHotPath    one leader Node of a 3-voter configuration, driven by
//                       hand: propose `batch`, take its Ready, acknowledge the
//                       write, step one append acknowledgement per follower,
//                       take the Ready with the committed entries, apply.
//
// Both count committed proposals (items) and their payload bytes. No ticks
// pass while measuring, so no heartbeats are sent: this is the replication
// path only.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <benchmark/benchmark.h>

#include <keel/types.h>

#include "core/config.h"
#include "core/message.h"
#include "core/node.h"
#include "core/ready.h"
#include "sim/core_cluster.h"

namespace {

using keel::EntryType;
using keel::Index;
using keel::ServerId;
using keel::core::Message;
using keel::core::MessageType;
using keel::core::Node;
using keel::sim::CoreCluster;

// Neither the core nor CoreCluster compacts its log yet: every entry stays in
// memory. A fresh node or cluster is built, outside the timed region, once
// this many entries have been appended, so memory stays bounded however long
// the benchmark runs.
constexpr std::uint64_t kNodeEntriesMax = 1 << 16;
// CoreCluster's write path costs time linear in the length of each node's
// durable log (CoreCluster::write_durably scans all of it on every write), so
// its clusters are kept short-lived: the figure then measures the protocol
// and the harness, not the length of the run. Raising this lowers the figure.
constexpr std::uint64_t kClusterEntriesMax = 1 << 10;
// Bounds on loops that must end quickly; reaching one is reported as an error.
constexpr std::size_t kMaxTicksToElect = 1000;
constexpr std::size_t kMaxDeliveryRounds = 100;
constexpr std::size_t kMaxReadiesPerStep = 100;

// --- BM_ClusterCommit -------------------------------------------------------

struct ElectedCluster {
  std::unique_ptr<CoreCluster> cluster;
  ServerId leader;
};

// A 3-node cluster whose leader has committed its term-start entry, with
// nothing in flight; nullopt if no leader emerged.
std::optional<ElectedCluster> make_elected_cluster() {
  auto cluster = std::make_unique<CoreCluster>(
      CoreCluster::Options{.nodes = 3, .seed = 1, .check_invariants = false});
  for (std::size_t tick = 0; tick < kMaxTicksToElect && !cluster->leader(); ++tick) {
    cluster->tick_all();
    cluster->stabilize(kMaxDeliveryRounds);
  }
  if (!cluster->leader() || !cluster->stabilize(kMaxDeliveryRounds)) return std::nullopt;
  const ServerId leader = *cluster->leader();
  if (!cluster->node(leader).committed_in_current_term()) return std::nullopt;
  return ElectedCluster{std::move(cluster), leader};
}

void BM_ClusterCommit(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  const std::string payload(static_cast<std::size_t>(state.range(1)), 'x');
  std::optional<ElectedCluster> elected = make_elected_cluster();
  if (!elected) return state.SkipWithError("no leader elected");
  for (auto _ : state) {
    if (elected->cluster->node(elected->leader).last_index().value >= kClusterEntriesMax) {
      state.PauseTiming();
      elected = make_elected_cluster();
      state.ResumeTiming();
      if (!elected) return state.SkipWithError("no leader elected");
    }
    CoreCluster& cluster = *elected->cluster;
    Index last;
    // Propose the whole batch before the leader's output is collected, so it
    // leaves in as few appends as the per-append bounds allow (batching).
    for (std::size_t i = 0; i < batch; ++i) {
      keel::Result<Index> index =
          cluster.node(elected->leader).propose(EntryType::kCommand, payload);
      if (!index.is_ok()) return state.SkipWithError(index.status().to_string().c_str());
      last = *index;
    }
    cluster.process(elected->leader);
    const Node& leader = cluster.node(elected->leader);
    for (std::size_t round = 0; leader.applied_index() < last; ++round) {
      if (round == kMaxDeliveryRounds) return state.SkipWithError("proposals did not commit");
      cluster.deliver();
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(batch * payload.size()));
}

// --- BM_LeaderHotPath -------------------------------------------------------

const ServerId kLeaderId{1};
const ServerId kFollowerIds[] = {ServerId{2}, ServerId{3}};

// Carries out the node's Readies as a shell with an instant disk would:
// acknowledges every write and applies every committed entry. Messages are
// dropped; the caller answers for the followers.
bool drain(Node& node) {
  for (std::size_t i = 0; node.has_ready(); ++i) {
    if (i == kMaxReadiesPerStep) return false;
    keel::core::Ready ready = node.ready();
    benchmark::DoNotOptimize(ready.messages.data());
    if (!ready.entries.empty()) {
      node.on_persisted(ready.entries.back().index, ready.entries.back().term);
    }
    if (ready.hard_state) node.on_term_persisted(ready.hard_state->term);
    if (!ready.committed_entries.empty()) node.on_applied(ready.committed_entries.back().index);
  }
  return true;
}

// Follower `from` has the leader's log up to `match_index`.
void acknowledge(Node& leader, ServerId from, Index match_index) {
  leader.step(Message{.type = MessageType::kAppendResponse,
                      .from = from,
                      .to = leader.id(),
                      .term = leader.term(),
                      .match_index = match_index});
}

// Node 1 of a 3-voter configuration, elected by hand (pre-vote, then vote,
// granted by node 2), whose term-start entry both followers acknowledged.
std::unique_ptr<Node> make_leader() {
  keel::core::CoreConfig config;
  config.id = kLeaderId;
  keel::core::BootState boot;
  for (std::uint64_t id = 1; id <= 3; ++id) {
    boot.configuration.servers.push_back({ServerId{id}, "node-" + std::to_string(id)});
  }
  auto node = std::make_unique<Node>(config, std::move(boot));
  node->campaign();
  node->step(Message{.type = MessageType::kPreVoteResponse,
                     .from = kFollowerIds[0],
                     .to = kLeaderId,
                     .term = node->term().next()});
  if (!drain(*node)) return nullptr;  // persists the new term and vote
  node->step(Message{.type = MessageType::kVoteResponse,
                     .from = kFollowerIds[0],
                     .to = kLeaderId,
                     .term = node->term()});
  if (!drain(*node) || !node->is_leader()) return nullptr;
  for (ServerId follower : kFollowerIds) acknowledge(*node, follower, node->last_index());
  if (!drain(*node) || !node->committed_in_current_term()) return nullptr;
  return node;
}

void BM_LeaderHotPath(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  const std::string payload(static_cast<std::size_t>(state.range(1)), 'x');
  std::unique_ptr<Node> leader = make_leader();
  if (!leader) return state.SkipWithError("could not elect the leader");
  for (auto _ : state) {
    if (leader->last_index().value >= kNodeEntriesMax) {
      state.PauseTiming();
      leader = make_leader();
      state.ResumeTiming();
      if (!leader) return state.SkipWithError("could not elect the leader");
    }
    for (std::size_t i = 0; i < batch; ++i) {
      keel::Result<Index> index = leader->propose(EntryType::kCommand, payload);
      if (!index.is_ok()) return state.SkipWithError(index.status().to_string().c_str());
    }
    if (!drain(*leader)) return state.SkipWithError("the leader did not settle");
    for (ServerId follower : kFollowerIds) acknowledge(*leader, follower, leader->last_index());
    if (!drain(*leader)) return state.SkipWithError("the leader did not settle");
    if (leader->applied_index() != leader->last_index()) {
      return state.SkipWithError("proposals did not commit");
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(batch * payload.size()));
}

// Arguments: {batch (proposals per round), payload bytes}.
void batch_and_payload(benchmark::internal::Benchmark* benchmark) {
  benchmark->ArgNames({"batch", "payload"});
  for (std::int64_t payload : {16, 256}) {
    for (std::int64_t batch : {1, 16, 256}) benchmark->Args({batch, payload});
  }
}

BENCHMARK(BM_ClusterCommit)->Apply(batch_and_payload);
BENCHMARK(BM_LeaderHotPath)->Apply(batch_and_payload);

}  // namespace

BENCHMARK_MAIN();
