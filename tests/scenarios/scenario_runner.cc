// tests/scenarios/scenario_runner.cc — keel-scenario: runs one data-driven
// scenario script against a CoreCluster and compares what the cluster does
// with what the script expects.
//
// A script is a sequence of blocks separated by blank lines:
//
//   # comment lines between blocks: the rule and the pitfall
//   command args...
//   optional argument lines
//   ----
//   expected output lines
//   <blank line>
//
// Each command runs on the cluster and prints lines; they must equal the
// expected lines. On a mismatch the runner prints a diff (with the line
// number and the command) and exits 1. With KEEL_REWRITE=1 or --rewrite it
// writes the actual output into the file instead. After every command the
// cluster invariants are checked; a broken invariant aborts (KEEL_CHECK) and
// the runner names the step that broke it. tests/scenarios/README.md lists the
// commands.
//
// Exit codes: 0 all blocks match (or rewritten), 1 some output differs,
// 2 the script itself is malformed (unknown command, bad argument).
//
// Thread safety: a single-threaded program.
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <keel/status.h>
#include <keel/types.h>

#include "core/config.h"
#include "core/message.h"
#include "core/node.h"
#include "core/progress.h"
#include "core/ready.h"
#include "sim/core_cluster.h"

namespace keel::scenarios {
namespace {

// A mistake in the script (not in the protocol): reported with its line, exit 2.
class ScriptError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// --- the script file -----------------------------------------------------------

struct Block {
  std::size_t command_line = 0;  // 1-based line number of the command
  std::string command;
  std::vector<std::string> argument_lines;
  std::vector<std::string> expected;
  // Lines [output_begin, output_end) of the file hold the expected output.
  std::size_t output_begin = 0;
  std::size_t output_end = 0;
};

struct Script {
  std::string path;
  std::vector<std::string> lines;
  std::vector<Block> blocks;
};

constexpr const char* kSeparator = "----";

std::string location(const Script& script, std::size_t line) {
  return script.path + ":" + std::to_string(line);
}

Script read_script(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ScriptError("cannot open " + path);
  Script script{.path = path};
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    script.lines.push_back(line);
  }
  const std::vector<std::string>& lines = script.lines;
  std::size_t i = 0;
  while (i < lines.size()) {
    if (lines[i].empty() || lines[i][0] == '#') {  // between blocks
      ++i;
      continue;
    }
    Block block{.command_line = i + 1, .command = lines[i]};
    for (++i; i < lines.size() && lines[i] != kSeparator; ++i) {
      if (lines[i].empty()) {
        throw ScriptError(location(script, block.command_line) + ": block '" + block.command +
                          "' has no '----' line before the blank line");
      }
      block.argument_lines.push_back(lines[i]);
    }
    if (i == lines.size()) {
      throw ScriptError(location(script, block.command_line) + ": block '" + block.command +
                        "' has no '----' line");
    }
    block.output_begin = ++i;
    for (; i < lines.size() && !lines[i].empty(); ++i) block.expected.push_back(lines[i]);
    block.output_end = i;
    script.blocks.push_back(std::move(block));
  }
  return script;
}

void write_script(const Script& script, const std::vector<std::vector<std::string>>& actual) {
  std::string text;
  std::size_t next = 0;  // next file line to copy
  for (std::size_t b = 0; b < script.blocks.size(); ++b) {
    const Block& block = script.blocks[b];
    for (; next < block.output_begin; ++next) text += script.lines[next] + "\n";
    for (const std::string& line : actual[b]) text += line + "\n";
    next = block.output_end;
  }
  for (; next < script.lines.size(); ++next) text += script.lines[next] + "\n";
  const std::string temporary = script.path + ".rewrite";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << text;
    if (!out.flush()) throw ScriptError("cannot write " + temporary);
  }
  if (std::rename(temporary.c_str(), script.path.c_str()) != 0) {
    throw ScriptError("cannot replace " + script.path);
  }
}

// --- diff ------------------------------------------------------------------------

// A line diff (longest common subsequence): "  " same, "- " expected only,
// "+ " actual only. Outputs are a few hundred lines at most.
std::vector<std::string> diff_lines(const std::vector<std::string>& expected,
                                    const std::vector<std::string>& actual) {
  const std::size_t n = expected.size();
  const std::size_t m = actual.size();
  std::vector<std::vector<std::size_t>> common(n + 1, std::vector<std::size_t>(m + 1, 0));
  for (std::size_t i = n; i-- > 0;) {
    for (std::size_t j = m; j-- > 0;) {
      common[i][j] = expected[i] == actual[j] ? common[i + 1][j + 1] + 1
                                              : std::max(common[i + 1][j], common[i][j + 1]);
    }
  }
  std::vector<std::string> out;
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && expected[i] == actual[j]) {
      out.push_back("  " + expected[i++]);
      ++j;
    } else if (i < n && (j == m || common[i + 1][j] >= common[i][j + 1])) {
      out.push_back("- " + expected[i++]);
    } else {
      out.push_back("+ " + actual[j++]);
    }
  }
  return out;
}

// --- command arguments -------------------------------------------------------------

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator)) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

std::uint64_t parse_number(const std::string& text, const std::string& what) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
    throw ScriptError(what + ": '" + text + "' is not a number");
  }
  return std::stoull(text);
}

bool parse_bool(const std::string& text, const std::string& what) {
  if (text == "true" || text == "on") return true;
  if (text == "false" || text == "off") return false;
  throw ScriptError(what + ": '" + text + "' is not true/false (on/off)");
}

// I/T: a log position (index and term).
std::pair<Index, Term> parse_position(const std::string& text) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) throw ScriptError("expected INDEX/TERM, got '" + text + "'");
  return {Index{parse_number(text.substr(0, slash), "index")},
          Term{parse_number(text.substr(slash + 1), "term")}};
}

// A message type by the name core::to_string gives it (AppendRequest, ...).
core::MessageType parse_message_type(const std::string& text) {
  for (auto t = static_cast<int>(core::MessageType::kAppendRequest);
       t <= static_cast<int>(core::MessageType::kTimeoutNow); ++t) {
    const auto type = static_cast<core::MessageType>(t);
    if (text == core::to_string(type)) return type;
  }
  throw ScriptError("unknown message type '" + text + "'");
}

// The words after the command name: positional words, key=value options, and
// an optional repeat count written xN.
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;
  std::size_t repeat = 1;
  std::vector<std::string> words;  // as written, for commands whose data may contain '='
  std::vector<std::string> lines;  // argument lines under the command

  static Args parse(const std::vector<std::string>& words, std::vector<std::string> lines) {
    Args args;
    args.words = words;
    args.lines = std::move(lines);
    for (const std::string& word : words) {
      if (const auto eq = word.find('='); eq != std::string::npos) {
        args.options[word.substr(0, eq)] = word.substr(eq + 1);
      } else if (word.size() > 1 && word[0] == 'x' &&
                 word.find_first_not_of("0123456789", 1) == std::string::npos) {
        args.repeat = parse_number(word.substr(1), "repeat count");
      } else {
        args.positional.push_back(word);
      }
    }
    return args;
  }

  // Requires between min and max positional words and only the named options.
  void expect(std::size_t min, std::size_t max,
              const std::vector<std::string>& allowed = {}) const {
    if (positional.size() < min || positional.size() > max) {
      throw ScriptError("expected " + std::to_string(min) +
                        (min == max ? "" : ".." + std::to_string(max)) + " arguments, got " +
                        std::to_string(positional.size()));
    }
    for (const auto& [key, value] : options) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        throw ScriptError("unknown option '" + key + "'");
      }
    }
  }

  std::optional<std::string> option(const std::string& key) const {
    auto it = options.find(key);
    if (it == options.end()) return std::nullopt;
    return it->second;
  }
};

// A FROM->TO pattern ('*' on either side matches any node), optionally
// restricted to one message type.
struct LinkPattern {
  std::optional<ServerId> from;
  std::optional<ServerId> to;
  std::optional<core::MessageType> type;

  bool matches(const core::Message& m) const {
    return (!from || m.from == *from) && (!to || m.to == *to) && (!type || m.type == *type);
  }
};

// --- printing ----------------------------------------------------------------------

std::string id_or_none(ServerId id) { return id.is_zero() ? "none" : std::to_string(id.value); }

std::string format_event(ServerId node, const core::Event& event) {
  const std::string prefix = "[" + std::to_string(node.value) + "] ";
  switch (event.kind) {
    case core::EventKind::kRoleChanged:
      return prefix + "role=" + core::to_string(event.role) +
             " term=" + std::to_string(event.term.value);
    case core::EventKind::kLeaderChanged:
      return prefix + "leader=" + id_or_none(event.leader) +
             " term=" + std::to_string(event.term.value);
    case core::EventKind::kLeaderReady:
      return prefix + "leader-ready term=" + std::to_string(event.term.value) +
             " index=" + std::to_string(event.index.value);
  }
  return prefix + "unknown event";
}

std::string format_read(ServerId node, const core::ReadState& read) {
  return "[" + std::to_string(node.value) + "] read id=" + std::to_string(read.request_id) +
         " index=" + std::to_string(read.index.value) + " " + read.status.to_string();
}

std::string format_status(const Result<Index>& result) {
  return result.is_ok() ? "index " + std::to_string(result.value().value)
                        : "error: " + result.status().to_string();
}

std::string format_status(const Status& status) {
  return status.is_ok() ? "ok" : "error: " + status.to_string();
}

// --- the runner ----------------------------------------------------------------------

class Runner {
 public:
  // Runs one block and returns the lines it printed.
  std::vector<std::string> run(const Block& block);

 private:
  using Handler = void (Runner::*)(const Args&);
  static const std::map<std::string, Handler>& commands();

  // Cluster set-up.
  void add_nodes(const Args& args);
  // Client calls.
  void campaign(const Args& args);
  void propose(const Args& args);
  void propose_barrier(const Args& args);
  void read_index(const Args& args);
  void lease_read(const Args& args);
  void transfer(const Args& args);
  void inject(const Args& args);
  // Time.
  void tick(const Args& args);
  void tick_all(const Args& args);
  void run_ticks(const Args& args);
  // Network.
  void deliver(const Args& args);
  void drop(const Args& args);
  void stabilize(const Args& args);
  void isolate(const Args& args);
  void partition(const Args& args);
  void cut(const Args& args);
  void heal(const Args& args);
  // Storage and crashes.
  void manual_persist(const Args& args);
  void persist(const Args& args);
  void crash(const Args& args);
  void restart(const Args& args);
  // Observation.
  void status(const Args& args);
  void log(const Args& args);
  void durable(const Args& args);
  void applied(const Args& args);
  void reads(const Args& args);
  void events(const Args& args);
  void in_flight(const Args& args);
  void leader(const Args& args);
  void progress(const Args& args);

  sim::CoreCluster& cluster();
  ServerId parse_id(const std::string& text) const;
  ServerId running(const std::string& text);
  LinkPattern parse_link(const std::string& text) const;
  LinkPattern parse_filter(const Args& args) const;
  std::string status_line(ServerId id) const;
  std::string loss_reason(const core::Message& m) const;

  // Delivers the first in-flight message matching `pattern` and prints it and
  // what it caused. Returns false if no message matches.
  bool deliver_one(const LinkPattern& pattern, bool print_messages);
  // One round: every message in flight now that matches (not those sent in
  // reply). Returns how many were taken from the network.
  std::size_t deliver_round(const LinkPattern& pattern, bool print_messages);
  // Prints the events and read states that nodes recorded since last time.
  void print_new_observations(const std::string& prefix);
  // Marks them as seen without printing; returns how many there were.
  std::size_t skip_observations();

  void print(std::string line) { out_.push_back(std::move(line)); }

  std::optional<sim::CoreCluster> cluster_;
  std::map<ServerId, std::size_t> events_printed_;
  std::map<ServerId, std::size_t> reads_printed_;
  std::vector<std::string> out_;
};

const std::map<std::string, Runner::Handler>& Runner::commands() {
  static const std::map<std::string, Handler> table = {
      {"add-nodes", &Runner::add_nodes},
      {"campaign", &Runner::campaign},
      {"propose", &Runner::propose},
      {"propose-barrier", &Runner::propose_barrier},
      {"read-index", &Runner::read_index},
      {"lease-read", &Runner::lease_read},
      {"transfer", &Runner::transfer},
      {"inject", &Runner::inject},
      {"tick", &Runner::tick},
      {"tick-all", &Runner::tick_all},
      {"run", &Runner::run_ticks},
      {"deliver", &Runner::deliver},
      {"drop", &Runner::drop},
      {"stabilize", &Runner::stabilize},
      {"isolate", &Runner::isolate},
      {"partition", &Runner::partition},
      {"cut", &Runner::cut},
      {"heal", &Runner::heal},
      {"manual-persist", &Runner::manual_persist},
      {"persist", &Runner::persist},
      {"crash", &Runner::crash},
      {"restart", &Runner::restart},
      {"status", &Runner::status},
      {"log", &Runner::log},
      {"durable", &Runner::durable},
      {"applied", &Runner::applied},
      {"reads", &Runner::reads},
      {"events", &Runner::events},
      {"in-flight", &Runner::in_flight},
      {"leader", &Runner::leader},
      {"progress", &Runner::progress},
  };
  return table;
}

std::vector<std::string> Runner::run(const Block& block) {
  out_.clear();
  std::vector<std::string> words = split(block.command, ' ');
  const std::string name = words.front();
  words.erase(words.begin());
  auto it = commands().find(name);
  if (it == commands().end()) throw ScriptError("unknown command '" + name + "'");
  if (name != "add-nodes" && !cluster_) throw ScriptError("the first command must be add-nodes");
  const Args args = Args::parse(words, block.argument_lines);
  if (!args.lines.empty() && name != "propose") {
    throw ScriptError("'" + name + "' takes no argument lines");
  }
  (this->*(it->second))(args);
  print_new_observations("");
  // Every command ends with the cross-node safety check (election safety, log
  // matching, leader completeness, state machine safety); it aborts on failure.
  cluster().check_invariants();
  for (const std::string& line : out_) {
    if (line.empty()) throw std::logic_error("runner bug: a command printed an empty line");
  }
  return out_;
}

sim::CoreCluster& Runner::cluster() {
  if (!cluster_) throw ScriptError("no cluster yet: start with add-nodes");
  return *cluster_;
}

ServerId Runner::parse_id(const std::string& text) const {
  const ServerId id{parse_number(text, "node id")};
  if (id.is_zero() || id.value > cluster_->ids().size()) {
    throw ScriptError("no node " + text + " in this cluster");
  }
  return id;
}

ServerId Runner::running(const std::string& text) {
  const ServerId id = parse_id(text);
  if (!cluster().is_up(id)) throw ScriptError("node " + text + " is down");
  return id;
}

LinkPattern Runner::parse_link(const std::string& text) const {
  const auto arrow = text.find("->");
  if (arrow == std::string::npos) throw ScriptError("expected FROM->TO, got '" + text + "'");
  auto side = [&](const std::string& part) -> std::optional<ServerId> {
    if (part == "*") return std::nullopt;
    return parse_id(part);
  };
  return LinkPattern{side(text.substr(0, arrow)), side(text.substr(arrow + 2))};
}

std::size_t Runner::skip_observations() {
  std::size_t skipped = 0;
  for (ServerId id : cluster().ids()) {
    const std::size_t events = cluster().events(id).size();
    const std::size_t reads = cluster().read_states(id).size();
    std::size_t& e = events_printed_[id];
    std::size_t& r = reads_printed_[id];
    if (r > reads) r = 0;  // the node crashed and its reads were cleared
    skipped += (events - e) + (reads - r);
    e = events;
    r = reads;
  }
  return skipped;
}

void Runner::print_new_observations(const std::string& prefix) {
  if (!cluster_) return;
  for (ServerId id : cluster_->ids()) {
    const auto& events = cluster_->events(id);
    for (std::size_t& i = events_printed_[id]; i < events.size(); ++i) {
      print(prefix + format_event(id, events[i]));
    }
    const auto& reads = cluster_->read_states(id);
    std::size_t& r = reads_printed_[id];
    if (r > reads.size()) r = 0;  // the node crashed and its reads were cleared
    for (; r < reads.size(); ++r) print(prefix + format_read(id, reads[r]));
  }
}

std::string Runner::status_line(ServerId id) const {
  std::string text = std::to_string(id.value) + " ";
  if (!cluster_->is_up(id)) return text + "down";
  const core::Node& node = cluster_->node(id);
  std::string role = core::to_string(node.role());
  role.resize(13, ' ');  // as wide as "pre-candidate"
  return text + role + " term=" + std::to_string(node.term().value) +
         " vote=" + id_or_none(node.vote()) + " leader=" + id_or_none(node.leader()) +
         " commit=" + std::to_string(node.commit_index().value) +
         " applied=" + std::to_string(node.applied_index().value) +
         " last=" + std::to_string(node.last_index().value) +
         " persisted=" + std::to_string(node.persisted_index().value);
}

std::string Runner::loss_reason(const core::Message& m) const {
  if (!cluster_->link_up(m.from, m.to)) return "link cut";
  if (!cluster_->is_up(m.to)) return "node down";
  return "lost";
}

// --- set-up and client calls -----------------------------------------------------------

void Runner::add_nodes(const Args& args) {
  if (cluster_) throw ScriptError("add-nodes may appear only once");
  args.expect(1, 1,
              {"pre-vote", "check-quorum", "election", "heartbeat", "lease", "seed", "max-inflight",
               "max-entries", "learners"});
  sim::CoreCluster::Options options;
  options.nodes = parse_number(args.positional[0], "node count");
  if (options.nodes == 0) throw ScriptError("a cluster needs at least one node");
  if (auto v = args.option("learners")) options.learners = parse_number(*v, "learners");
  if (options.learners >= options.nodes) throw ScriptError("a cluster needs at least one voter");
  core::CoreConfig& config = options.config;
  auto number = [&](const char* key, auto& field) {
    if (auto v = args.option(key)) {
      field = static_cast<std::remove_reference_t<decltype(field)>>(parse_number(*v, key));
    }
  };
  if (auto v = args.option("pre-vote")) config.pre_vote = parse_bool(*v, "pre-vote");
  if (auto v = args.option("check-quorum")) config.check_quorum = parse_bool(*v, "check-quorum");
  number("election", config.election_timeout_ticks);
  number("heartbeat", config.heartbeat_interval_ticks);
  number("lease", config.lease_ticks);
  number("max-inflight", config.max_inflight_appends);
  number("max-entries", config.max_append_entries);
  number("seed", options.seed);
  config.id = ServerId{1};  // validate() wants an id; the cluster sets each node's own
  if (Status valid = config.validate(); !valid.is_ok()) {
    throw ScriptError("invalid configuration: " + valid.to_string());
  }
  auto flag = [](bool on) { return on ? std::string("true") : std::string("false"); };
  print(std::to_string(options.nodes) + (options.nodes == 1 ? " node" : " nodes") +
        (options.learners > 0 ? " (" + std::to_string(options.learners) + " learners)" : "") +
        ": pre-vote=" + flag(config.pre_vote) + " check-quorum=" + flag(config.check_quorum) +
        " election=" + std::to_string(config.election_timeout_ticks) +
        " heartbeat=" + std::to_string(config.heartbeat_interval_ticks) +
        " lease=" + std::to_string(config.lease_ticks));
  print("max-inflight=" + std::to_string(config.max_inflight_appends) + " max-entries=" +
        std::to_string(config.max_append_entries) + " seed=" + std::to_string(options.seed));
  cluster_.emplace(options);
}

void Runner::campaign(const Args& args) {
  args.expect(1, 1);
  const ServerId id = running(args.positional[0]);
  cluster().campaign(id);
  print(status_line(id));  // a candidate campaigning again changes no role: show its term
}

void Runner::propose(const Args& args) {
  // propose ID DATA: DATA is taken as written (it may contain '=' or 'xN').
  if (args.words.empty() || args.words.size() > 2) throw ScriptError("expected ID [DATA]");
  const ServerId id = running(args.words[0]);
  if (args.words.size() == 2) {
    if (!args.lines.empty()) throw ScriptError("give DATA on the command line or below, not both");
    print(format_status(cluster().propose(id, args.words[1])));
    return;
  }
  // One DATA per argument line, all proposed before the node's output is
  // collected: what a shell does with proposals that arrive together.
  if (args.lines.empty()) throw ScriptError("propose needs DATA");
  for (const std::string& data : args.lines) {
    print(format_status(cluster().node(id).propose(EntryType::kCommand, data)));
  }
  cluster().process(id);
}

void Runner::propose_barrier(const Args& args) {
  args.expect(1, 1);
  print(format_status(cluster().propose(running(args.positional[0]), "", EntryType::kBarrier)));
}

void Runner::read_index(const Args& args) {
  args.expect(2, 2);
  const ServerId id = running(args.positional[0]);
  print(format_status(cluster().read_index(id, parse_number(args.positional[1], "request id"))));
}

void Runner::lease_read(const Args& args) {
  args.expect(1, 1);
  print(format_status(cluster().node(running(args.positional[0])).lease_read_index()));
}

void Runner::transfer(const Args& args) {
  args.expect(2, 2);
  const ServerId from = running(args.positional[0]);
  print(format_status(cluster().transfer_leadership(from, parse_id(args.positional[1]))));
}

void Runner::inject(const Args& args) {
  // inject FROM->TO TYPE field=value...: TO receives, now, a message crafted
  // by the script as if FROM had sent it. For messages the cluster's own
  // nodes do not send in that state: a paper-style heartbeat append, a
  // duplicate from long ago.
  args.expect(2, 2,
              {"term", "prev", "commit", "entries", "reject", "match", "hint", "last", "round",
               "id", "index", "transfer"});
  const LinkPattern link = parse_link(args.positional[0]);
  if (!link.from || !link.to) throw ScriptError("inject needs FROM->TO with two node ids");
  running(std::to_string(link.to->value));
  core::Message m{
      .type = parse_message_type(args.positional[1]), .from = *link.from, .to = *link.to};
  auto number = [&](const char* key) {
    auto v = args.option(key);
    return v ? parse_number(*v, key) : 0;
  };
  m.term = Term{number("term")};
  m.commit = Index{number("commit")};
  m.match_index = Index{number("match")};
  m.read_round = number("round");
  m.request_id = number("id");
  m.read_index = Index{number("index")};
  if (auto v = args.option("reject")) m.reject = parse_bool(*v, "reject");
  if (auto v = args.option("transfer")) m.leadership_transfer = parse_bool(*v, "transfer");
  if (auto v = args.option("prev"))
    std::tie(m.prev_log_index, m.prev_log_term) = parse_position(*v);
  if (auto v = args.option("hint")) std::tie(m.hint_index, m.hint_term) = parse_position(*v);
  if (auto v = args.option("last"))
    std::tie(m.last_log_index, m.last_log_term) = parse_position(*v);
  if (auto v = args.option("entries")) {
    for (const std::string& text : split(*v, ',')) {  // I/T or I/T:DATA
      const auto colon = text.find(':');
      const auto [index, term] = parse_position(text.substr(0, colon));
      m.entries.push_back(LogEntry{term, index, EntryType::kCommand,
                                   colon == std::string::npos ? "" : text.substr(colon + 1)});
    }
  }
  print(core::to_string(m));
  cluster().node(m.to).step(m);
  cluster().process(m.to);
  print_new_observations("  ");
}

// --- time ---------------------------------------------------------------------------------

void Runner::tick(const Args& args) {
  args.expect(1, 1);
  const ServerId id = running(args.positional[0]);
  for (std::size_t i = 1; i <= args.repeat; ++i) {
    cluster().tick(id);
    print_new_observations(args.repeat > 1 ? "tick " + std::to_string(i) + ": " : "");
  }
}

void Runner::tick_all(const Args& args) {
  args.expect(0, 0);
  for (std::size_t i = 1; i <= args.repeat; ++i) {
    cluster().tick_all();
    print_new_observations(args.repeat > 1 ? "tick " + std::to_string(i) + ": " : "");
  }
}

void Runner::run_ticks(const Args& args) {
  // Time passing on a working network: each tick, every running node ticks,
  // then messages are delivered until none is in flight. Prints events only,
  // so long stretches of heartbeats stay readable; `quiet` prints only how
  // many events there were (for churn the script then shows with status).
  args.expect(0, 1);
  const bool quiet = !args.positional.empty();
  if (quiet && args.positional[0] != "quiet") throw ScriptError("run takes xN and 'quiet'");
  std::size_t hidden = 0;
  auto observe = [&](std::size_t tick) {
    if (quiet) {
      hidden += skip_observations();
    } else {
      print_new_observations("tick " + std::to_string(tick) + ": ");
    }
  };
  for (std::size_t i = 1; i <= args.repeat; ++i) {
    cluster().tick_all();
    observe(i);
    for (std::size_t round = 0; !cluster().in_flight().empty(); ++round) {
      if (round == 1000) throw ScriptError("messages still in flight after 1000 rounds");
      deliver_round(LinkPattern{}, /*print_messages=*/false);
      observe(i);
    }
  }
  if (quiet) print(std::to_string(hidden) + " events not shown");
}

// --- network ------------------------------------------------------------------------------

bool Runner::deliver_one(const LinkPattern& pattern, bool print_messages) {
  const auto& in_flight = cluster().in_flight();
  auto it = std::find_if(in_flight.begin(), in_flight.end(),
                         [&](const core::Message& m) { return pattern.matches(m); });
  if (it == in_flight.end()) return false;
  // A copy: delivering rewrites the in-flight list.
  const core::Message message = *it;  // NOLINT(performance-unnecessary-copy-initialization)
  const std::string reason = loss_reason(message);
  bool taken = false;
  const std::vector<core::Message> delivered = cluster().deliver([&](const core::Message& m) {
    if (taken || !pattern.matches(m)) return false;
    taken = true;
    return true;
  });
  if (!print_messages) return true;
  if (delivered.empty()) {
    print("dropped (" + reason + "): " + core::to_string(message));
  } else {
    print(core::to_string(message));
    print_new_observations("  ");
  }
  return true;
}

std::size_t Runner::deliver_round(const LinkPattern& pattern, bool print_messages) {
  std::size_t waiting = 0;
  for (const core::Message& m : cluster().in_flight()) waiting += pattern.matches(m) ? 1 : 0;
  // Replies are appended behind the messages waiting now, so taking the first
  // match `waiting` times delivers exactly this round's messages, in order.
  for (std::size_t i = 0; i < waiting; ++i) deliver_one(pattern, print_messages);
  return waiting;
}

LinkPattern Runner::parse_filter(const Args& args) const {
  // [FROM->TO [TYPE]] or all
  args.expect(0, 2);
  LinkPattern pattern;
  if (!args.positional.empty() && args.positional[0] != "all") {
    pattern = parse_link(args.positional[0]);
  }
  if (args.positional.size() == 2) pattern.type = parse_message_type(args.positional[1]);
  return pattern;
}

void Runner::deliver(const Args& args) {
  const LinkPattern pattern = parse_filter(args);
  for (std::size_t i = 0; i < args.repeat; ++i) deliver_round(pattern, /*print_messages=*/true);
}

void Runner::drop(const Args& args) {
  if (args.positional.empty()) throw ScriptError("drop needs FROM->TO [TYPE] or all");
  const LinkPattern pattern = parse_filter(args);
  for (const core::Message& m : cluster().in_flight()) {
    if (pattern.matches(m)) print("dropped: " + core::to_string(m));
  }
  cluster().drop([&](const core::Message& m) { return pattern.matches(m); });
}

void Runner::stabilize(const Args& args) {
  args.expect(0, 0);
  for (std::size_t round = 0; !cluster().in_flight().empty(); ++round) {
    if (round == 1000) throw ScriptError("messages still in flight after 1000 rounds");
    deliver_round(LinkPattern{}, /*print_messages=*/true);
  }
}

void Runner::isolate(const Args& args) {
  args.expect(1, 1);
  cluster().isolate(parse_id(args.positional[0]));
}

void Runner::partition(const Args& args) {
  args.expect(1, SIZE_MAX);
  std::vector<std::vector<ServerId>> groups;
  for (const std::string& group : args.positional) {
    groups.emplace_back();
    for (const std::string& id : split(group, ',')) groups.back().push_back(parse_id(id));
  }
  cluster().partition(groups);
}

void Runner::cut(const Args& args) {
  args.expect(1, 1);
  const LinkPattern link = parse_link(args.positional[0]);
  if (!link.from || !link.to) throw ScriptError("cut needs two node ids");
  cluster().cut(*link.from, *link.to);
}

void Runner::heal(const Args& args) {
  args.expect(0, 0);
  cluster().heal();
}

// --- storage and crashes ------------------------------------------------------------------

void Runner::manual_persist(const Args& args) {
  args.expect(2, 2);
  cluster().set_manual_persist(running(args.positional[0]),
                               parse_bool(args.positional[1], "manual-persist"));
}

void Runner::persist(const Args& args) {
  args.expect(1, 1);
  cluster().persist(running(args.positional[0]));
}

void Runner::crash(const Args& args) {
  args.expect(1, 1);
  cluster().crash(running(args.positional[0]));
}

void Runner::restart(const Args& args) {
  args.expect(1, 1);
  const ServerId id = parse_id(args.positional[0]);
  cluster().restart(id);
  print(status_line(id));
}

// --- observation --------------------------------------------------------------------------

void Runner::status(const Args& args) {
  args.expect(0, 0);
  for (ServerId id : cluster().ids()) print(status_line(id));
}

void Runner::log(const Args& args) {
  args.expect(1, 1);
  const core::RaftLog& log = cluster().node(running(args.positional[0])).log();
  if (log.empty()) print("(empty)");
  for (Index i = log.first_index(); i <= log.last_index(); i = i.next()) {
    print(core::to_string(log.at(i)));
  }
}

void Runner::durable(const Args& args) {
  args.expect(1, 1);
  const ServerId id = parse_id(args.positional[0]);
  const core::HardState& hard = cluster().durable_hard_state(id);
  print("hard-state term=" + std::to_string(hard.term.value) + " vote=" + id_or_none(hard.vote) +
        " commit=" + std::to_string(hard.commit.value));
  for (const LogEntry& entry : cluster().durable_log(id)) print(core::to_string(entry));
}

void Runner::applied(const Args& args) {
  args.expect(1, 1);
  const auto& entries = cluster().applied(parse_id(args.positional[0]));
  if (entries.empty()) print("(none)");
  for (const LogEntry& entry : entries) print(core::to_string(entry));
}

void Runner::reads(const Args& args) {
  args.expect(1, 1);
  const ServerId id = parse_id(args.positional[0]);
  const auto& reads = cluster().read_states(id);
  if (reads.empty()) print("(none)");
  for (const core::ReadState& read : reads) print(format_read(id, read));
}

void Runner::events(const Args& args) {
  args.expect(1, 1);
  const ServerId id = parse_id(args.positional[0]);
  const auto& events = cluster().events(id);
  if (events.empty()) print("(none)");
  for (const core::Event& event : events) print(format_event(id, event));
}

void Runner::in_flight(const Args& args) {
  args.expect(0, 0);
  const auto& messages = cluster().in_flight();
  if (messages.empty()) print("(none)");
  for (const core::Message& m : messages) {
    std::string line = core::to_string(m);
    if (!cluster().link_up(m.from, m.to) || !cluster().is_up(m.to)) {
      line += "  (will be dropped: " + loss_reason(m) + ")";
    }
    print(line);
  }
}

void Runner::leader(const Args& args) {
  args.expect(0, 0);
  const std::optional<ServerId> leader = cluster().leader();
  print(leader ? std::to_string(leader->value) : "none");
}

void Runner::progress(const Args& args) {
  args.expect(1, 1);
  const core::Node& node = cluster().node(running(args.positional[0]));
  if (!node.is_leader()) {
    print("not leader");
    return;
  }
  for (ServerId peer : cluster().ids()) {
    const core::Progress* pr = node.progress(peer);
    if (pr == nullptr) continue;
    print(std::to_string(peer.value) + " " + core::to_string(pr->state) + " match=" +
          std::to_string(pr->match_index.value) + " next=" + std::to_string(pr->next_index.value) +
          " inflight=" + std::to_string(pr->inflights.count()) +
          (pr->probe_sent ? " probe-sent" : "") + (pr->recent_active ? " active" : ""));
  }
}

// --- main -----------------------------------------------------------------------------------

// The step being run, for the SIGABRT handler: a broken invariant aborts
// inside the core (KEEL_CHECK), and the reader needs to know which step of
// which script broke it. A signal handler can only reach static storage.
char current_step[512];  // NOLINT: written before each step, read only by the handler

extern "C" void report_abort(int /*signal*/) {
  const char* head = "keel-scenario: aborted while running ";
  ssize_t ignored = ::write(STDERR_FILENO, head, std::strlen(head));
  ignored = ::write(STDERR_FILENO, current_step, std::strlen(current_step));
  ignored = ::write(STDERR_FILENO, "\n", 1);
  (void)ignored;
  std::signal(SIGABRT, SIG_DFL);
  std::raise(SIGABRT);
}

void set_current_step(const Script& script, const Block& block) {
  std::snprintf(current_step, sizeof current_step, "%s: %s",
                location(script, block.command_line).c_str(), block.command.c_str());
}

void print_mismatch(const Script& script, const Block& block,
                    const std::vector<std::string>& actual) {
  std::cout << location(script, block.command_line) << ": output differs for '" << block.command
            << "'\n--- expected\n+++ actual\n";
  for (const std::string& line : diff_lines(block.expected, actual)) std::cout << line << "\n";
  // Flushed now: a later step may abort on a broken invariant.
  std::cout << std::endl;
}

int run_script(const std::string& path, bool rewrite) {
  const Script script = read_script(path);
  Runner runner;
  std::vector<std::vector<std::string>> actual;
  std::size_t mismatches = 0;
  for (const Block& block : script.blocks) {
    set_current_step(script, block);
    try {
      actual.push_back(runner.run(block));
    } catch (const ScriptError& error) {
      throw ScriptError(location(script, block.command_line) + ": '" + block.command +
                        "': " + error.what());
    }
    if (!rewrite && actual.back() != block.expected) {
      print_mismatch(script, block, actual.back());
      ++mismatches;
    }
  }
  if (rewrite) {
    write_script(script, actual);
    std::cout << "rewrote " << path << " (" << script.blocks.size() << " blocks)\n";
    return 0;
  }
  if (mismatches > 0) {
    std::cout << path << ": " << mismatches << " of " << script.blocks.size()
              << " blocks differ. If the new output is right, accept it with\n  KEEL_REWRITE=1 "
                 "keel-scenario "
              << path << "\nand read the diff before committing.\n";
    return 1;
  }
  std::cout << path << ": " << script.blocks.size() << " blocks ok\n";
  return 0;
}

}  // namespace
}  // namespace keel::scenarios

int main(int argc, char** argv) {
  std::vector<std::string> paths;
  const char* env = std::getenv("KEEL_REWRITE");
  bool rewrite = env != nullptr && std::string(env) == "1";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--rewrite") {
      rewrite = true;
    } else {
      paths.push_back(arg);
    }
  }
  if (paths.size() != 1) {
    std::cerr << "usage: keel-scenario [--rewrite] SCRIPT\n"
                 "  KEEL_REWRITE=1 has the same effect as --rewrite\n";
    return 2;
  }
  std::signal(SIGABRT, keel::scenarios::report_abort);
  try {
    return keel::scenarios::run_script(paths[0], rewrite);
  } catch (const keel::scenarios::ScriptError& error) {
    std::cerr << "keel-scenario: " << error.what() << "\n";
    return 2;
  }
}
