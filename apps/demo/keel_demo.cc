// apps/demo/keel_demo.cc — `make run`: a 3-node cluster of protocol cores on a
// simulated network (sim::CoreCluster), walked through an election, a
// partition of the leader and the heal, checking at the end that no
// committed entry was lost. Every value printed is read from the nodes.
//
// Deterministic: the same --seed gives the same run. Exits 1 if a check of
// the story fails; a broken cluster invariant aborts, naming it.
#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <keel/types.h>

#include "core/node.h"
#include "core/ready.h"
#include "sim/core_cluster.h"

namespace {

using keel::EntryType;
using keel::LogEntry;
using keel::ServerId;
using keel::Term;
using keel::core::EventKind;
using keel::core::Role;
using keel::sim::CoreCluster;

// Bounds on how long each act may take: far above what it needs, so that
// hitting one means something is wrong rather than slow.
constexpr std::size_t kMaxTicksPerAct = 200;
constexpr std::size_t kMaxDeliveryRounds = 100;

[[noreturn]] void fail(const std::string& why) {
  std::cerr << "FAILED: " << why << "\n";
  std::exit(1);
}

void expect(bool condition, const std::string& why) {
  if (!condition) fail(why);
}

// Delivers every message, then ticks every node (delivering again after each
// tick) until done(ticks) holds. Returns the ticks it took.
std::size_t run_until(CoreCluster& cluster, const std::string& what,
                      const std::function<bool(std::size_t)>& done) {
  for (std::size_t ticks = 0; ticks <= kMaxTicksPerAct; ++ticks) {
    if (ticks > 0) cluster.tick_all();
    expect(cluster.stabilize(kMaxDeliveryRounds), "the network did not settle");
    if (done(ticks)) return ticks;
  }
  fail(what + " did not happen within " + std::to_string(kMaxTicksPerAct) + " ticks");
}

std::string ticks_text(std::size_t ticks) {
  return std::to_string(ticks) + (ticks == 1 ? " tick" : " ticks");
}

std::string join(const std::vector<std::string>& commands) {
  std::string out = "[";
  for (const std::string& command : commands) out += (out.size() > 1 ? ", " : "") + command;
  return out + "]";
}

void print_nodes(const CoreCluster& cluster) {
  for (ServerId id : cluster.ids()) {
    const keel::core::Node& node = cluster.node(id);
    std::cout << "    node " << id << ": " << to_string(node.role()) << ", term " << node.term()
              << ", commit index " << node.commit_index() << ", applied "
              << join(cluster.applied_commands(id)) << "\n";
  }
}

// Tells how `id` came to lead, from the role changes it reported since its
// event number `from`.
void describe_election(const CoreCluster& cluster, ServerId id, std::size_t from) {
  const auto& events = cluster.events(id);
  for (std::size_t i = from; i < events.size(); ++i) {
    if (events[i].kind != EventKind::kRoleChanged) continue;
    std::cout << "    node " << id << " became " << to_string(events[i].role) << " in term "
              << events[i].term << "\n";
  }
  const keel::core::Node& leader = cluster.node(id);
  const LogEntry& first = leader.log().at(leader.log().last_index());
  expect(first.type == EntryType::kTermStart && first.term == leader.term(),
         "a new leader's last entry is its term-start entry");
  std::cout << "  node " << id << " won the election of term " << leader.term()
            << " and appended its term-start entry at index " << first.index << "\n";
}

// The story, one act per method; each act reads what it reports from the nodes.
class Demo {
 public:
  explicit Demo(std::uint64_t seed)
      // Cluster invariants (election safety, log matching, ...) are checked
      // after every delivery.
      : cluster_(CoreCluster::Options{.nodes = 3, .config = config_, .seed = seed}),
        everyone_(cluster_.ids()) {
    std::cout << "keel demo (seed " << seed << "): 3 Raft cores on a simulated network.\n"
              << "Election timeout " << config_.election_timeout_ticks
              << " ticks (randomized up to twice that), heartbeat every "
              << config_.heartbeat_interval_ticks << " tick.\n\n"
              << "1. Every node starts as a follower:\n";
    print_nodes(cluster_);
  }

  void elect_first_leader() {
    std::cout << "\n2. Ticks pass until a node's election timer fires. It first runs pre-vote\n"
                 "   (asks whether it could win, without raising its term), then the election:\n";
    const std::size_t ticks = run_until(cluster_, "the first election",
                                        [&](std::size_t) { return cluster_.leader().has_value(); });
    leader_ = *cluster_.leader();
    std::cout << "  after " << ticks_text(ticks) << ":\n";
    describe_election(cluster_, leader_, 0);
  }

  void replicate(const std::vector<std::string>& commands, const std::vector<ServerId>& nodes) {
    for (const std::string& command : commands) {
      keel::Result<keel::Index> index = cluster_.propose(leader_, command);
      expect(index.is_ok(), "proposal refused: " + index.status().to_string());
      std::cout << "  node " << leader_ << " appends \"" << command << "\" at index " << *index
                << "\n";
      commands_.push_back(command);
    }
    run_until(cluster_, "replication", [&](std::size_t) {
      return std::all_of(nodes.begin(), nodes.end(),
                         [&](ServerId id) { return cluster_.applied_commands(id) == commands_; });
    });
    print_nodes(cluster_);
  }

  void isolate_leader() {
    // Everything committed now must survive whatever happens next.
    const keel::core::Node& leader = cluster_.node(leader_);
    for (keel::Index i{1}; i <= leader.commit_index(); i = i.next()) {
      committed_before_.push_back(leader.log().at(i));
    }
    commands_before_ = commands_;
    old_leader_ = leader_;
    old_term_ = leader.term();
    std::cout << "\n4. The network isolates leader node " << old_leader_ << ".\n";
    cluster_.isolate(old_leader_);
    for (ServerId id : everyone_) events_before_[id] = cluster_.events(id).size();
    bool stepped_down = false;
    run_until(cluster_, "a new election and the old leader's step-down", [&](std::size_t tick) {
      if (!stepped_down && !cluster_.node(old_leader_).is_leader()) {
        stepped_down = true;
        expect(cluster_.node(old_leader_).term() == old_term_, "a cut-off node keeps its term");
        std::cout << "  tick " << tick << ": node " << old_leader_ << " steps down, still in term "
                  << old_term_ << ": check-quorum, it heard from no majority for an election "
                  << "timeout\n";
      }
      const std::optional<ServerId> found = cluster_.leader();
      if (leader_ == old_leader_ && found && *found != old_leader_) {
        leader_ = *found;
        std::cout << "  tick " << tick << ": the other two elect a new leader:\n";
        describe_election(cluster_, leader_, events_before_[leader_]);
      }
      return stepped_down && leader_ != old_leader_;
    });
    expect(cluster_.node(leader_).term() > old_term_, "the new leader's term is higher");
    keel::Result<keel::Index> refused = cluster_.propose(old_leader_, "set x=99");
    expect(!refused.is_ok(), "a deposed leader accepts no writes");
    std::cout << "  a write sent to node " << old_leader_ << " is refused: " << refused.status()
              << "\n";
  }

  void commit_without_old_leader() {
    std::cout << "\n5. The new leader commits more commands; node " << old_leader_
              << " cannot see them:\n";
    std::vector<ServerId> majority = everyone_;
    std::erase(majority, old_leader_);
    replicate({"set w=4", "set x=5"}, majority);
    // Pre-vote (thesis §9.6) at work: the cut-off node times out again and
    // again, but never wins a pre-vote, so it never raises its term.
    const std::size_t ticks = run_until(cluster_, "time passing", [&](std::size_t tick) {
      return tick == 3 * config_.election_timeout_ticks;
    });
    const keel::core::Node& cut_off = cluster_.node(old_leader_);
    expect(cut_off.role() == Role::kPreCandidate && cut_off.term() == old_term_,
           "the cut-off node is trying pre-vote and has kept its term");
    std::cout << "  " << ticks_text(ticks) << " later, node " << old_leader_
              << " has timed out and is trying pre-vote, which reaches nobody;\n"
              << "  pre-vote never raises a term, so it is still in term " << old_term_
              << " and its return will not disrupt the new leader.\n";
  }

  void heal() {
    std::cout << "\n6. The partition heals; node " << old_leader_
              << " hears the new leader and catches up:\n";
    cluster_.heal();
    const std::size_t ticks = run_until(cluster_, "catch-up", [&](std::size_t) {
      return cluster_.node(old_leader_).leader() == leader_ &&
             cluster_.applied_commands(old_leader_) == commands_;
    });
    std::cout << "  after " << ticks_text(ticks) << ":\n";
    print_nodes(cluster_);
  }

  void check_nothing_lost() {
    std::cout << "\n7. Checking the " << committed_before_.size() << " entries committed before "
              << "the partition on every node (new leader " << leader_ << " included)...\n";
    for (ServerId id : everyone_) {
      const std::string name = "node " + std::to_string(id.value);
      const keel::core::Node& node = cluster_.node(id);
      for (const LogEntry& entry : committed_before_) {
        expect(node.commit_index() >= entry.index && node.log().at(entry.index) == entry,
               name + " lost committed entry " + keel::core::to_string(entry));
      }
      const std::vector<std::string> applied = cluster_.applied_commands(id);
      expect(applied.size() >= commands_before_.size() &&
                 std::equal(commands_before_.begin(), commands_before_.end(), applied.begin()),
             name + " applied " + join(applied) + ", not starting with " + join(commands_before_));
    }
    std::cout << "OK: no committed entry was lost\n";
  }

  const std::vector<ServerId>& everyone() const { return everyone_; }

 private:
  const keel::core::CoreConfig config_;  // the defaults; CoreCluster sets ids and seeds
  CoreCluster cluster_;
  const std::vector<ServerId> everyone_;
  ServerId leader_;
  std::vector<std::string> commands_;  // every command proposed, in order
  // Taken when the leader is isolated.
  ServerId old_leader_;
  Term old_term_;
  std::vector<LogEntry> committed_before_;
  std::vector<std::string> commands_before_;
  std::map<ServerId, std::size_t> events_before_;
};

bool parse_seed(std::string_view text, std::uint64_t& seed) {
  const char* end = text.data() + text.size();
  const auto [ptr, error] = std::from_chars(text.data(), end, seed);
  return error == std::errc() && ptr == end;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t seed = 1;
  if (argc != 1 &&
      !(argc == 3 && std::string_view(argv[1]) == "--seed" && parse_seed(argv[2], seed))) {
    std::cerr << "usage: keel-demo [--seed N]\n";
    return 2;
  }
  Demo demo(seed);
  demo.elect_first_leader();
  std::cout << "\n3. The leader replicates client commands:\n";
  demo.replicate({"set x=1", "set y=2", "set z=3"}, demo.everyone());
  demo.isolate_leader();
  demo.commit_without_old_leader();
  demo.heal();
  demo.check_nothing_lost();
  return 0;
}
