#include "sim/safety_checker.h"

#include <algorithm>

#include "core/codec.h"
#include "runtime/log_writer.h"
#include "sim/history.h"
#include "sim/trace.h"

namespace keel::sim {

namespace {

std::string server(ServerId id) { return "server " + std::to_string(id.value); }

}  // namespace

std::string describe(const LogEntry& entry) {
  std::string out = "(index " + std::to_string(entry.index.value) + ", term " +
                    std::to_string(entry.term.value) + ", " + to_string(entry.type);
  if (entry.type == EntryType::kCommand) out += " " + quoted(entry.data);
  return out + ")";
}

void SafetyChecker::violation(const std::string& what) {
  if (report_) report_(what);
}

void SafetyChecker::set_voters(const std::set<ServerId>& voters) {
  default_configuration_ = Configuration{};
  for (ServerId id : voters)
    default_configuration_.servers.push_back(Server{id, "", Suffrage::kVoter});
}

void SafetyChecker::set_configuration(ServerId id, Configuration latest, Duration now) {
  Configuration& mine = configurations_[id];
  for (const Server& server : mine.members()) {
    if (!latest.contains(server.id)) last_listed_[id][server.id] = now;
  }
  for (const Server& server : latest.members()) last_listed_[id].erase(server.id);
  mine = std::move(latest);
}

const Configuration& SafetyChecker::configuration_of(ServerId id) const {
  auto it = configurations_.find(id);
  return it == configurations_.end() || it->second.empty() ? default_configuration_ : it->second;
}

bool SafetyChecker::quorum(const Configuration& configuration, const std::set<ServerId>& servers) {
  auto majority_of = [&](const std::vector<ServerId>& voters) {
    std::size_t count = 0;
    for (ServerId voter : voters) count += servers.contains(voter) ? 1 : 0;
    return count >= voters.size() / 2 + 1;
  };
  if (configuration.voters().empty()) return false;
  return majority_of(configuration.incoming_voters()) &&
         (!configuration.joint() || majority_of(configuration.outgoing_voters()));
}

void SafetyChecker::settle_vote_answers(ServerId id, Duration now, Duration grace) {
  auto pending = unlisted_answers_.find(id);
  if (pending == unlisted_answers_.end()) return;
  // Judged at a later instant than the answer: the configuration the server
  // answered under (a change its step truncated, say) reaches the checker
  // only once its step is over.
  std::vector<UnlistedAnswer> answers;
  std::vector<UnlistedAnswer> later;
  for (UnlistedAnswer& answer : pending->second) {
    (answer.sent < now ? answers : later).push_back(std::move(answer));
  }
  if (later.empty()) {
    unlisted_answers_.erase(pending);
  } else {
    pending->second = std::move(later);
  }
  auto mine = configurations_.find(id);
  if (mine == configurations_.end() || mine->second.empty()) return;
  const auto& dropped = last_listed_[id];
  for (const UnlistedAnswer& answer : answers) {
    if (mine->second.contains(answer.to)) continue;
    auto listed = dropped.find(answer.to);
    if (listed != dropped.end() && now - listed->second <= grace) continue;
    violation("removed servers: " + answer.what + ", though its configuration has not listed " +
              server(answer.to) + " for " +
              (listed == dropped.end() ? std::string("ever") : format_time(now - listed->second)) +
              " (a removed server's requests must be dropped)");
    return;
  }
}

void SafetyChecker::on_wipe(ServerId id) {
  durable_votes_.erase(id);
  promises_.erase(id);
  configurations_.erase(id);
  last_listed_.erase(id);
  unlisted_answers_.erase(id);
  log_positions_.erase(id);
  unconfirmed_reads_.erase(id);
}

void SafetyChecker::on_start(ServerId id) {
  NodeState& node = nodes_[id];
  node.applied.clear();
  node.unseen_through = Index{0};
  node.seen_stats = false;
  node.completeness_checked.clear();
}

void SafetyChecker::on_apply(ServerId id, const LogEntry& entry, const LogStore& store) {
  NodeState& node = nodes_[id];
  const Index last = node.applied.empty() ? Index{0} : node.applied.back().first;
  if (entry.index <= last) {
    violation("contiguous apply: " + server(id) + " applies " + describe(entry) + " after index " +
              std::to_string(last.value));
    return;
  }
  // The FSM sees commands only; what lies between must be keel's own entries,
  // and the applied entry itself must be the one in the store. Those of
  // them that compaction already removed were applied (compaction never
  // passes the applied index), and were no commands (the FSM would have
  // shown them): only the rest can be read back.
  const Index from = std::max(last.next(), store.first_index());
  if (from > entry.index) {
    // The store moved past it already (a snapshot installed after this
    // entry was handed to the FSM reset the log): nothing to compare with
    // but what others applied.
    node.unseen_through = std::max(node.unseen_through, entry.index.prev());
    record_applied(id, entry);
    return;
  }
  if (from > last.next()) node.unseen_through = std::max(node.unseen_through, from.prev());
  Result<std::vector<LogEntry>> stored = store.read(from, entry.index);
  if (!stored.is_ok() || stored->size() != entry.index - from + 1) {
    violation("contiguous apply: " + server(id) + " applies " + describe(entry) +
              " but its log store cannot produce indices " + std::to_string(from.value) + ".." +
              std::to_string(entry.index.value) + ": " + stored.status().to_string());
    return;
  }
  for (const LogEntry& between : *stored) {
    if (between.index == entry.index) break;
    if (between.type == EntryType::kCommand) {
      violation("contiguous apply: " + server(id) + " applies " + describe(entry) +
                " but skipped the command " + describe(between));
      return;
    }
    record_applied(id, between);
  }
  if (stored->back() != entry) {
    violation("state-machine safety: " + server(id) + " applies " + describe(entry) +
              " but its log store holds " + describe(stored->back()));
    return;
  }
  record_applied(id, entry);
}

void SafetyChecker::on_restore(ServerId id, Index index, Term term) {
  NodeState& node = nodes_[id];
  const std::size_t position = index.value - 1;
  if (index.is_zero()) {
    violation("snapshot safety: " + server(id) + " restores a snapshot at index 0");
    return;
  }
  if (position < committed_.size() && committed_[position].known &&
      committed_[position].entry.term != term) {
    violation("state-machine safety: " + server(id) + " restores a snapshot ending at " +
              std::to_string(index.value) + "/" + std::to_string(term.value) + " where " +
              server(committed_[position].first_applied_by) + " applied " +
              describe(committed_[position].entry));
    return;
  }
  if (position >= committed_.size() || !committed_[position].known) {
    // Ends after the last command anyone applied: at keel's own entries,
    // which the checker records only once a command follows them. Checked
    // when that entry is recorded.
    unverified_snapshots_.emplace(index, std::make_pair(term, id));
  }
  node.applied.clear();
  node.unseen_through = index;
  node.applied.emplace_back(index, term);
}

void SafetyChecker::record_applied(ServerId id, const LogEntry& entry) {
  NodeState& node = nodes_[id];
  node.applied.emplace_back(entry.index, entry.term);
  const std::size_t position = entry.index.value - 1;
  if (position > committed_.size() && node.unseen_through.value >= position) {
    // This server restored a snapshot past what the checker knows: the
    // entries before this one are in that snapshot, unseen one by one.
    while (committed_.size() < position) {
      LogEntry unknown;
      unknown.index = Index{committed_.size() + 1};
      committed_.push_back(Committed{unknown, id, highest_term_, /*known=*/false});
    }
  }
  if (position < committed_.size()) {
    Committed& known = committed_[position];
    if (!known.known) {
      known = Committed{entry, id, known.bound, true};
      check_unverified_snapshots(entry, id);
      return;
    }
    if (known.entry != entry) {
      violation("state-machine safety: " + server(id) + " applies " + describe(entry) + " where " +
                server(known.first_applied_by) + " applied " + describe(known.entry));
    }
    return;
  }
  if (position != committed_.size()) {
    violation("contiguous apply: " + server(id) + " applies " + describe(entry) +
              " but only indices up to " + std::to_string(committed_.size()) +
              " were ever applied");
    return;
  }
  committed_.push_back(Committed{entry, id, highest_term_});
  check_unverified_snapshots(entry, id);
}

void SafetyChecker::check_unverified_snapshots(const LogEntry& entry, ServerId id) {
  auto [first, last] = unverified_snapshots_.equal_range(entry.index);
  for (auto it = first; it != last; ++it) {
    if (it->second.first != entry.term) {
      violation("state-machine safety: " + server(it->second.second) +
                " restored a snapshot ending at " + std::to_string(entry.index.value) + "/" +
                std::to_string(it->second.first.value) + " where " + server(id) + " applied " +
                describe(entry));
    }
  }
  unverified_snapshots_.erase(first, last);
}

void SafetyChecker::record_leader(ServerId id, Term term, const char* source) {
  if (id.is_zero() || term.is_zero()) return;
  highest_term_ = std::max(highest_term_, term);
  auto [it, inserted] = leaders_.emplace(term, id);
  if (!inserted && it->second != id) {
    violation("election safety: two leaders in term " + std::to_string(term.value) + ": " +
              server(it->second) + " and " + server(id) + " (seen in " + source + ")");
  }
}

void SafetyChecker::on_observation(ServerId id, const Observation& observation) {
  highest_term_ = std::max(highest_term_, observation.term);
  switch (observation.kind) {
    case Observation::Kind::kStateChanged:
      if (observation.state == RaftState::kLeader) {
        record_leader(id, observation.term, "a state observation");
      }
      break;
    case Observation::Kind::kLeaderChanged:
      record_leader(observation.leader.id, observation.term,
                    ("a leader observation of " + server(id)).c_str());
      break;
    case Observation::Kind::kLeaderReady:
      record_leader(id, observation.term, "a leader-ready observation");
      break;
    // Nothing to check in the rest: restores are checked as the FSM sees
    // them (on_restore); the others are about membership and other servers.
    case Observation::Kind::kSnapshotTaken:
    case Observation::Kind::kSnapshotInstalled:
    case Observation::Kind::kRestored:
    case Observation::Kind::kPeerContactLost:
    case Observation::Kind::kPeerContactResumed:
    case Observation::Kind::kVoteRequested:
    case Observation::Kind::kPeerAdded:
    case Observation::Kind::kPeerPromoted:
    case Observation::Kind::kPeerDemoted:
    case Observation::Kind::kPeerRemoved:
    case Observation::Kind::kRemoved:
      break;
  }
}

void SafetyChecker::on_stats(ServerId id, const RaftStats& stats, const LogStore& store) {
  NodeState& node = nodes_[id];
  highest_term_ = std::max(highest_term_, stats.term);
  highest_commit_ = std::max(highest_commit_, stats.commit_index);
  check_monotonic(id, node, stats);
  if (stats.failure.code() == StatusCode::kCorruption && !node.reported_corruption) {
    // No fault of the simulator damages bytes a store made durable (a crash
    // tears only unsynced writes, which keel must expect): keel stopping on
    // Corruption means it broke its own log or snapshot rules.
    node.reported_corruption = true;
    violation("fail-stop without damage: " + server(id) + " stopped on " +
              stats.failure.to_string());
  }
  node.last = stats;
  node.seen_stats = true;
  record_own_entries(id, node, stats.applied_index, store);
  if (stats.state != RaftState::kLeader) return;
  record_leader(id, stats.term, "stats");
  if (stats.ready_term == stats.term && node.completeness_checked.insert(stats.term).second) {
    check_leader_completeness(id, stats.term, store);
  }
}

void SafetyChecker::record_own_entries(ServerId id, NodeState& node, Index applied,
                                       const LogStore& store) {
  // Applied entries are durable here (keel applies nothing else), so the
  // store holds them unless compaction removed them. A command among them
  // is on_apply's to record: stop at it. One entry at a time: usually the
  // next one is a command, and a read of the whole applied range would be
  // repeated at every step until on_apply records it.
  const Index last = node.applied.empty() ? Index{0} : node.applied.back().first;
  if (applied <= last || last.next() < store.first_index() || applied > store.last_index()) {
    return;
  }
  for (Index index = last.next(); index <= applied; index = index.next()) {
    Result<std::vector<LogEntry>> stored = store.read(index, index);
    if (!stored.is_ok() || stored->empty() || stored->front().type == EntryType::kCommand) return;
    record_applied(id, stored->front());
  }
}

void SafetyChecker::check_monotonic(ServerId id, NodeState& node, const RaftStats& stats) {
  if (stats.applied_index > stats.commit_index) {
    violation("applied <= committed: " + server(id) + " applied " +
              std::to_string(stats.applied_index.value) + " but committed only " +
              std::to_string(stats.commit_index.value));
  }
  if (stats.commit_index > stats.last_index) {
    violation("committed <= last index: " + server(id) + " committed " +
              std::to_string(stats.commit_index.value) + " of a log ending at " +
              std::to_string(stats.last_index.value));
  }
  if (!node.seen_stats || stats.state == RaftState::kShutdown) return;
  const RaftStats& before = node.last;
  if (stats.term < before.term) {
    violation("monotonic term: " + server(id) + " went from term " +
              std::to_string(before.term.value) + " to " + std::to_string(stats.term.value));
  }
  if (stats.commit_index < before.commit_index) {
    violation("monotonic commit: " + server(id) + " went from commit " +
              std::to_string(before.commit_index.value) + " to " +
              std::to_string(stats.commit_index.value));
  }
  if (stats.applied_index < before.applied_index) {
    violation("monotonic apply: " + server(id) + " went from applied " +
              std::to_string(before.applied_index.value) + " to " +
              std::to_string(stats.applied_index.value));
  }
}

void SafetyChecker::check_leader_completeness(ServerId id, Term term, const LogStore& store) {
  // Bounds never decrease along committed_ (entries are recorded in index
  // order, the highest term only grows), so what is owed is a prefix.
  std::size_t owed = 0;
  while (owed < committed_.size() && committed_[owed].bound < term) ++owed;
  if (owed == 0) return;
  // Entries before the store's first index were compacted into a snapshot
  // (whose end on_restore checks when one is restored).
  const Index first = std::max(store.first_index(), Index{1});
  const Index last = store.last_index();
  const Index readable{std::min<std::uint64_t>(owed, last.value)};
  std::vector<LogEntry> stored;
  if (readable >= first) {
    Result<std::vector<LogEntry>> read = store.read(first, readable);
    if (!read.is_ok()) {
      violation("log store: " + server(id) +
                " cannot read its own log: " + read.status().to_string());
      return;
    }
    stored = std::move(read).value();
  }
  const std::size_t skipped = static_cast<std::size_t>(first.value - 1);
  for (std::size_t i = std::min(skipped, owed); i < owed; ++i) {
    if (!committed_[i].known) continue;
    const LogEntry& want = committed_[i].entry;
    const std::size_t at = i - skipped;
    if (at < stored.size() && stored[at] == want) continue;
    violation("leader completeness: " + server(id) + " leads term " + std::to_string(term.value) +
              " without the committed entry " + describe(want) + " (first applied by " +
              server(committed_[i].first_applied_by) + " while the highest term was " +
              std::to_string(committed_[i].bound.value) + "); " +
              (at < stored.size() ? "it holds " + describe(stored[at])
                                  : "its log ends at index " + std::to_string(last.value)));
    return;
  }
}

void SafetyChecker::check_logs(const std::map<ServerId, const LogStore*>& stores,
                               const std::map<ServerId, RaftStats>& stats) {
  std::vector<std::pair<ServerId, std::vector<LogEntry>>> logs;
  for (const auto& [id, store] : stores) {
    const Index first = store->first_index();
    const Index last = store->last_index();
    std::vector<LogEntry> entries;
    if (last >= first && !last.is_zero()) {
      Result<std::vector<LogEntry>> read = store->read(first, last);
      if (!read.is_ok()) {
        violation("log store: " + server(id) +
                  " cannot read its own log: " + read.status().to_string());
        return;
      }
      entries = std::move(read).value();
    }
    logs.emplace_back(id, std::move(entries));
  }
  for (std::size_t i = 0; i < logs.size(); ++i) {
    for (std::size_t j = i + 1; j < logs.size(); ++j) {
      check_log_matching(logs[i].first, logs[i].second, logs[j].first, logs[j].second);
    }
  }
  for (const auto& [id, published] : stats) {
    auto store = stores.find(id);
    if (store != stores.end() && published.state == RaftState::kLeader &&
        published.ready_term == published.term) {
      check_leader_completeness(id, published.term, *store->second);
    }
  }
}

void SafetyChecker::check_log_matching(ServerId a, const std::vector<LogEntry>& x, ServerId b,
                                       const std::vector<LogEntry>& y) {
  // §5.3: find the highest index where both hold an entry of the same term;
  // everything up to it, down to where both logs still hold entries (they
  // may start at different indices after compaction), must be identical.
  if (x.empty() || y.empty()) return;
  const std::uint64_t low = std::max(x.front().index.value, y.front().index.value);
  std::uint64_t top = std::min(x.back().index.value, y.back().index.value);
  auto at = [](const std::vector<LogEntry>& log, std::uint64_t index) -> const LogEntry& {
    return log[static_cast<std::size_t>(index - log.front().index.value)];
  };
  while (top >= low && at(x, top).term != at(y, top).term) --top;
  for (std::uint64_t i = low; i <= top && top >= low; ++i) {
    if (at(x, i) != at(y, i)) {
      violation("log matching: " + server(a) + " and " + server(b) +
                " both hold an entry at index " + std::to_string(top) + " of term " +
                std::to_string(at(x, top).term.value) +
                " but differ below it: " + describe(at(x, i)) + " versus " + describe(at(y, i)));
      return;
    }
  }
}

void SafetyChecker::on_send(ServerId id, const core::Message& m, const LogStore& log,
                            const StableStore& stable, const SendContext& context) {
  using core::MessageType;
  // Lease promises: remember rounds and who acknowledged them; check votes.
  constexpr std::size_t kRoundsRemembered = 256;
  if (m.type == MessageType::kHeartbeatRequest) {
    auto& rounds = rounds_sent_[id];
    rounds.try_emplace({m.term, m.read_round}, LeaseRound{m.term, context.now, context.lease_end});
    if (rounds.size() > kRoundsRemembered) rounds.erase(rounds.begin());
  } else if (m.type == MessageType::kHeartbeatResponse) {
    auto rounds = rounds_sent_.find(m.to);
    if (rounds != rounds_sent_.end()) {
      auto round = rounds->second.find({m.term, m.read_round});
      if (round != rounds->second.end()) {
        LeaseRound& promise = promises_[id][m.to];
        if (round->second.sent > promise.sent || round->second.term > promise.term) {
          promise = round->second;
        }
      }
    }
  } else if (m.type == MessageType::kTimeoutNow) {
    // Its lease is void for the rest of the term (the target campaigns past
    // every voter's lease protection): no promise to it binds any more.
    timeout_now_terms_.insert(m.term);
  } else if (m.type == MessageType::kVoteRequest && !m.leadership_transfer) {
    check_lease_promise(id, id, m.term, context.now, m);
  } else if (m.type == MessageType::kVoteResponse && !m.reject) {
    check_lease_promise(id, m.to, m.term, context.now, m);
  }
  if (m.type == MessageType::kVoteRequest || m.type == MessageType::kPreVoteRequest) {
    candidate_logs_[id] = {m.last_log_term, m.last_log_index};
  }
  // The log's last position; none (std::nullopt) when no entry is left to
  // compare, the store reset by a snapshot.
  const Index last = log.last_index();
  auto& positions = log_positions_[id];
  if (positions.latest.second != last || last.is_zero()) {
    std::optional<Term> last_term;
    if (last.is_zero()) {
      last_term = Term{};
    } else if (last >= log.first_index()) {
      Result<std::vector<LogEntry>> entry = log.read(last, last);
      if (entry.is_ok() && !entry->empty()) last_term = entry->front().term;
    }
    positions.before = positions.latest;
    positions.latest = {last_term.value_or(Term{}), last_term ? last : Index{}};
  }
  if (m.type == MessageType::kVoteResponse || m.type == MessageType::kPreVoteResponse) {
    auto mine = configurations_.find(id);
    auto candidate = candidate_logs_.find(m.to);
    // A candidate whose log is not behind ours may be heard: ours may be the
    // configuration that is behind, or the candidate a voter that an
    // uncommitted configuration removes and which is needed until it
    // commits. Ours is the log before this step's messages moved it, or
    // after; with no entry of ours to compare, nothing is judged.
    auto not_behind = [&](const std::pair<Term, Index>& ours) {
      return ours.second.is_zero() ||
             (candidate != candidate_logs_.end() &&
              (candidate->second.first > ours.first ||
               (candidate->second.first == ours.first && candidate->second.second >= ours.second)));
    };
    const bool candidate_ahead = not_behind(positions.latest) || not_behind(positions.before);
    if (mine != configurations_.end() && !mine->second.empty() && !mine->second.contains(m.to) &&
        !candidate_ahead) {
      unlisted_answers_[id].push_back(
          {context.now, m.to, server(id) + " sent " + core::to_string(m)});
    }
  }
  // A pre-vote request names a term the sender does not hold, and a granted
  // pre-vote echoes it: neither claims that term.
  if (m.type == MessageType::kPreVoteRequest) return;
  if (m.type == MessageType::kPreVoteResponse && !m.reject) return;
  // Chunks and their answers stay between shells, never stepped into a
  // core: the term they echo promises nothing (a server just reached may
  // answer a chunk before the term it learned with it is durable).
  if (m.type == MessageType::kSnapshotChunk || m.type == MessageType::kSnapshotChunkResponse) {
    return;
  }
  const bool granted_vote = m.type == MessageType::kVoteResponse && !m.reject;
  const auto known = durable_votes_.try_emplace(id, Term{}, kNoServer).first;
  auto durable_now = [&] {
    Result<std::string> bytes = stable.get(runtime::kHardStateKey);
    if (!bytes.is_ok()) return;
    Result<core::HardState> hard = core::decode_hard_state(*bytes);
    if (hard.is_ok()) known->second = {hard->term, hard->vote};
  };
  const bool ack_beyond_log =
      m.type == MessageType::kAppendResponse && !m.reject && m.match_index > log.last_index();
  // The cache only ever lags: read the store again whenever it would not
  // clear the message.
  if (m.term >= known->second.first && (m.term > known->second.first || ack_beyond_log ||
                                        (granted_vote && known->second.second != m.to))) {
    durable_now();
  }
  const auto [durable_term, durable_vote] = known->second;
  const std::string what = server(id) + " sent " + core::to_string(m);
  if (m.term > durable_term) {
    violation("persistence ordering: " + what + " while its stable store holds only term " +
              std::to_string(durable_term.value));
    return;
  }
  if (granted_vote && m.term == durable_term && durable_vote != m.to) {
    violation("persistence ordering: " + what + " while its stable store holds the vote " +
              std::to_string(durable_vote.value) + " for that term");
    return;
  }
  // Entries a newer leader has since overwritten are gone from the store,
  // and their acknowledgement may still leave (the old leader cannot use it:
  // Raft's quorum intersection sees to that). Within the acknowledgement's
  // own term nothing overwrites them, so the store must hold them.
  if (ack_beyond_log && durable_term == m.term) {
    violation("persistence ordering: " + what + " while its log store ends at index " +
              std::to_string(log.last_index().value));
  }
}

void SafetyChecker::check_lease_promise(ServerId voter, ServerId candidate, Term term, Duration now,
                                        const core::Message& m) {
  if (!lease_checks_) return;
  auto promises = promises_.find(voter);
  if (promises == promises_.end()) return;
  for (const auto& [leader, promise] : promises->second) {
    if (leader == candidate || promise.term >= term || now >= promise.lease_end) continue;
    // A leader whose configuration no longer has this voter counts on it
    // for nothing.
    if (!configuration_of(leader).is_voter(voter)) continue;
    // A TimeoutNow sent in a term from the promise's up to the vote's: by
    // that leader (it gave its lease up), or by a newer leader, whose
    // election already shows a majority past this lease.
    auto transfer = timeout_now_terms_.lower_bound(promise.term);
    if (transfer != timeout_now_terms_.end() && *transfer < term) continue;
    auto node = nodes_.find(leader);
    if (node == nodes_.end() || node->second.last.state != RaftState::kLeader ||
        node->second.last.term != promise.term) {
      continue;  // that leader has stepped down: no lease of its is left to break
    }
    violation("lease promise: " + server(voter) + " sent " + core::to_string(m) + " " +
              format_time(promise.lease_end - now) + " before the lease of " + server(leader) +
              " (term " + std::to_string(promise.term.value) +
              ", still leading) could end, after acknowledging its heartbeat");
    return;
  }
}

std::set<ServerId> SafetyChecker::voters_acknowledging(ServerId id, Term term, Duration sent_after,
                                                       Duration lease_past) const {
  std::set<ServerId> out{id};
  for (const auto& [voter, promises] : promises_) {
    if (voter == id) continue;
    auto promise = promises.find(id);
    if (promise != promises.end() && promise->second.term >= term &&
        promise->second.sent >= sent_after && promise->second.lease_end > lease_past) {
      out.insert(voter);
    }
  }
  return out;
}

SafetyChecker::ReadCall SafetyChecker::read_call(ServerId target, Duration now) const {
  ReadCall call;
  call.time = now;
  auto node = nodes_.find(target);
  if (node != nodes_.end()) {
    call.target_term = node->second.last.term;
    call.target_led = node->second.last.state == RaftState::kLeader;
  }
  call.floor = highest_commit_;
  call.configuration = configuration_of(target);
  if (!leaders_.empty()) {
    call.newest_leader_term = leaders_.rbegin()->first;
    call.newest_leader = leaders_.rbegin()->second;
  }
  return call;
}

void SafetyChecker::on_read_served(ServerId id, Consistency consistency, const ReadCall& call,
                                   Index served, Duration now) {
  if (served < call.floor) {
    violation(std::string("read freshness: ") + server(id) + " served a " +
              (consistency == Consistency::kLease ? "lease" : "linearizable") + " read at index " +
              std::to_string(served.value) + ", but index " + std::to_string(call.floor.value) +
              " was committed before the read was invoked");
    return;
  }
  auto served_by = nodes_.find(id);
  // A read the server forwarded (it did not lead when called) was confirmed
  // by another server's round.
  // The leader's quorums, as of the call or of the answer (a change may
  // have been appended in between).
  const Configuration& now_configuration = configuration_of(id);
  auto quorum_then_or_now = [&](const std::set<ServerId>& servers) {
    return quorum(call.configuration, servers) || quorum(now_configuration, servers);
  };
  const bool served_by_leader = call.target_led && served_by != nodes_.end() &&
                                served_by->second.last.state == RaftState::kLeader &&
                                served_by->second.last.term == call.target_term &&
                                (call.configuration.is_voter(id) || now_configuration.is_voter(id));
  if (consistency == Consistency::kLinearizable && served_by_leader) {
    std::set<ServerId> confirming =
        voters_acknowledging(id, call.target_term, call.time, Duration::min());
    if (!quorum_then_or_now(confirming)) {
      unconfirmed_reads_[id].push_back(
          {now, std::move(confirming),
           "read confirmation: " + server(id) + " served a linearizable read invoked at " +
               format_time(call.time) +
               " though no majority of voters acknowledged a round of its sent since"});
    }
    return;
  }
  if (consistency != Consistency::kLease || !lease_checks_) return;
  // A lease holds only while no other leader can exist: one elected before
  // the read was invoked proves it was not (thesis §6.4.1).
  auto node = nodes_.find(id);
  if (node != nodes_.end() && call.newest_leader != id &&
      call.newest_leader_term > node->second.last.term) {
    violation("lease reads: " + server(id) + " served a lease read in term " +
              std::to_string(node->second.last.term.value) + " after " +
              server(call.newest_leader) + " became leader of term " +
              std::to_string(call.newest_leader_term.value));
    return;
  }
  // And only within the leases its voters' acknowledgements give it. The
  // read was judged at some moment after it was invoked, with
  // acknowledgements sent before that moment: so some majority must hold
  // leases that run past the invocation.
  if (!call.configuration.is_voter(id) && !now_configuration.is_voter(id)) return;
  const std::set<ServerId> holding =
      voters_acknowledging(id, call.target_term, Duration::min(), call.time);
  if (!quorum_then_or_now(holding)) {
    std::string who;
    for (ServerId voter : holding) who += " " + std::to_string(voter.value);
    unconfirmed_reads_[id].push_back(
        {now, holding,
         "lease reads: " + server(id) + " served a lease read invoked at " +
             format_time(call.time) + " when only servers" + who +
             " held a lease for it (a round of its term acknowledged and sent less than "
             "lease_timeout before): no quorum of its configuration"});
  }
}

void SafetyChecker::settle_reads(ServerId id, Duration now) {
  auto pending = unconfirmed_reads_.find(id);
  if (pending == unconfirmed_reads_.end()) return;
  std::vector<UnconfirmedRead>& reads = pending->second;
  // A change the server appended in the step that answered (it alone is
  // then the quorum, say) reaches the checker when that step is over.
  for (auto read = reads.begin(); read != reads.end();) {
    if (read->answered >= now) {
      ++read;
      continue;
    }
    if (!quorum(configuration_of(id), read->confirming)) {
      violation(read->what);
      reads.clear();
      break;
    }
    read = reads.erase(read);
  }
  if (reads.empty()) unconfirmed_reads_.erase(pending);
}

const std::vector<std::pair<Index, Term>>& SafetyChecker::applied(ServerId id) const {
  static const std::vector<std::pair<Index, Term>> kNone;  // NOLINT: immutable
  auto it = nodes_.find(id);
  return it == nodes_.end() ? kNone : it->second.applied;
}

}  // namespace keel::sim
