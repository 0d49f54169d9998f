#include "core/node.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "core/canary.h"
#include "core/check.h"
#include "core/codec.h"

// Whether the canary `name` (core/canary.h) is selected. Without
// KEEL_CANARIES it is the constant false, so no rule can be broken.
#ifdef KEEL_CANARIES
#define KEEL_CANARY(name) (config_.canary == static_cast<std::uint8_t>(Canary::name))
#else
#define KEEL_CANARY(name) false
#endif

namespace keel::core {

namespace {

bool is_leader_message(MessageType type) {
  return type == MessageType::kAppendRequest || type == MessageType::kHeartbeatRequest ||
         type == MessageType::kTimeoutNow || type == MessageType::kSnapshotRequest;
}

}  // namespace

const char* to_string(Role role) {
  switch (role) {
    case Role::kFollower:
      return "follower";
    case Role::kPreCandidate:
      return "pre-candidate";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "unknown";
}

Node::Node(CoreConfig config, BootState boot)
    : config_(config),
      configurations_(std::move(boot.configuration), boot.configuration_index),
      prng_(config.random_seed),
      term_(boot.hard_state.term),
      vote_(boot.hard_state.vote),
      log_(boot.log_base_index, boot.log_base_term, boot.entries),
      role_(FollowerRole{}) {
  KEEL_CHECK("config is valid", config_.validate().is_ok());
  for (Index i = log_.first_index(); i <= log_.last_index(); i = i.next()) {
    const LogEntry entry = log_.at(i);
    if (entry.type != EntryType::kConfiguration) continue;
    Result<Configuration> decoded = decode_configuration(entry.data);
    KEEL_CHECK("the log's configuration entries decode (the shell checks them)", decoded.is_ok());
    configurations_.append(i, std::move(decoded).value());
  }
  on_configuration_changed();
  // The stored commit index may run ahead of the stored log when a crash fell
  // between the two writes; entries already applied are committed.
  commit_ = std::max(std::min(boot.hard_state.commit, log_.last_index()), boot.applied);
  KEEL_CHECK("applied entries are in the log", boot.applied <= log_.last_index());
  KEEL_CHECK("a durable snapshot covers the log base", boot.log_base_index <= boot.snapshot_index);
  catch_up_floor_ = boot.hard_state.catch_up_floor;
  catch_up_floor_term_ = boot.hard_state.catch_up_floor_term;
  pass_catch_up_floor(log_.last_index());
  snapshot_index_ = boot.snapshot_index;
  snapshot_term_ = boot.snapshot_term;
  applied_ = boot.applied;
  applied_handed_ = boot.applied;
  persisted_ = log_.last_index();
  durable_term_ = term_;  // recovered from the stores: durable by definition
  unstable_from_ = log_.last_index().next();
  last_hard_state_ = hard_state();
  checked_term_ = term_;
  checked_commit_ = commit_;
  leader_contact_elapsed_ = config_.election_timeout_ticks;  // no leader heard yet
  reset_election_timer();
  // Only a configuration known to be committed makes this a member: the
  // latest may be an uncommitted one that added it.
  was_member_ = configurations_.at(Index{}).second.contains(id()) ||
                configurations_.at(commit_).second.contains(id());
  after_commit();
  opened_ = true;
}

Role Node::role() const {
  switch (role_.index()) {
    case 0:
      return Role::kFollower;
    case 1:
      return Role::kPreCandidate;
    case 2:
      return Role::kCandidate;
    default:
      return Role::kLeader;
  }
}

// --- inputs ------------------------------------------------------------------

void Node::tick() {
  ++ticks_;
  ++leader_contact_elapsed_;
  if (is_leader()) {
    tick_leader();
  } else {
    tick_election();
  }
  check_invariants();
}

void Node::tick_election() {
  ++election_elapsed_;
  if (election_elapsed_ >= randomized_election_timeout_ && may_campaign()) {
    start_campaign(/*leadership_transfer=*/false);
  }
}

void Node::tick_leader() {
  auto& leader = std::get<LeaderRole>(role_);
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= config_.election_timeout_ticks) {
    election_elapsed_ = 0;
    // Check-quorum (thesis §6.2): a leader cut off from a majority steps down
    // instead of accepting writes that can never commit and serving reads a
    // newer leader may already contradict.
    if (config_.check_quorum && !quorum_active(leader) && !KEEL_CANARY(kNoCheckQuorumStepDown)) {
      become_follower(term_, kNoServer);
      return;
    }
    for (auto& [peer, progress] : leader.progress) progress.recent_active = false;
    forget_told_servers();
    if (!leader.transfer_target.is_zero()) {
      leader.transfer_target = kNoServer;  // abandoned: the target did not take over in time
    }
  }
  if (heartbeat_elapsed_ >= config_.heartbeat_interval_ticks) {
    heartbeat_elapsed_ = 0;
    open_read_round();
  }
}

void Node::step(const Message& m) {
  KEEL_CHECK("message is addressed to this node", m.to == id());
  KEEL_CHECK("snapshot chunks stay in the shell", !is_shell_message(m.type));
  if (step_term(m)) {
    if (configuration().empty() && m.term == term_ && is_leader_message(m.type) &&
        m.catch_up_floor > catch_up_floor_) {
      // The first leader to reach a server that knows nothing says where
      // its present membership began: an earlier life under the same id
      // (wiped since) acknowledged entries up to there, and configurations
      // before it (an old snapshot's) may list it as a voter of a cluster
      // long gone.
      catch_up_floor_ = m.catch_up_floor;
      catch_up_floor_term_ = m.term;
    }
    step_by_type(m);
  }
  check_invariants();
}

bool Node::step_term(const Message& m) {
  const bool vote_request =
      m.type == MessageType::kVoteRequest || m.type == MessageType::kPreVoteRequest;
  if (vote_request && (configuration().empty() || below_catch_up_floor(m))) {
    // A server that knows no configuration yet (just added, or wiped and
    // added back under its id) has heard from no leader: any term it holds
    // may be one its earlier life voted in, and a removed server that never
    // learned it could win with that second vote. It votes once a leader
    // has reached it; until its log reaches where its present membership
    // began (catch_up_floor), only for candidates whose log is at least
    // (that leader's term, the floor): they hold this life's history.
    return false;
  }
  if (vote_request && !configuration().contains(m.from) &&
      !log_.is_up_to_date(m.last_log_index, m.last_log_term) && !KEEL_CANARY(kRemovedServerVotes)) {
    // Not in our latest configuration at all, and behind our log: a server
    // removed that never learned it (its log lacks its removal). It may not
    // make us raise our term, nor get a vote. (A server we know in any role
    // is heard, and so is one whose log is ahead of ours: our configuration
    // may be behind the candidate's -- a voter still catching up through
    // the history of an identity it reuses, say -- and Raft lets a server
    // vote whatever its own configuration says, thesis §4.1.)
    return false;
  }
  if (m.term > term_) {
    if (vote_request && config_.check_quorum && in_leader_lease() && !m.leadership_transfer) {
      // Disruptive-server protection (thesis §4.2.3): we heard from a leader
      // within the minimum election timeout, so a removed or partitioned
      // server must not make us raise our term. Drop without answering.
      return false;
    }
    if (m.type == MessageType::kPreVoteRequest) return true;  // pre-vote changes no term
    if (m.type == MessageType::kPreVoteResponse && !m.reject) return true;  // grant for term+1
    become_follower(m.term, is_leader_message(m.type) ? m.from : kNoServer);
    return true;
  }
  if (m.term < term_) {
    if (m.type == MessageType::kAppendRequest || m.type == MessageType::kHeartbeatRequest ||
        m.type == MessageType::kSnapshotRequest) {
      // A leader of an older term. With pre-vote and check-quorum our term may
      // have risen without it ever hearing of it; answer with our term so it
      // steps down instead of lingering as a leader nobody follows.
      Message reply{.type = MessageType::kAppendResponse, .to = m.from, .term = term_};
      reply.reject = true;
      reply.epoch = m.epoch;
      send(std::move(reply));
    } else if (m.type == MessageType::kPreVoteRequest) {
      send(Message{
          .type = MessageType::kPreVoteResponse, .to = m.from, .term = term_, .reject = true});
    }
    // Every other stale message (old responses, old votes) changes nothing.
    return false;
  }
  return true;
}

void Node::step_by_type(const Message& m) {
  switch (m.type) {
    case MessageType::kAppendRequest:
      handle_append(m);
      break;
    case MessageType::kHeartbeatRequest:
      handle_heartbeat(m);
      break;
    case MessageType::kPreVoteRequest:
    case MessageType::kVoteRequest:
      handle_vote_request(m);
      break;
    case MessageType::kPreVoteResponse:
    case MessageType::kVoteResponse:
      handle_vote_response(m);
      break;
    case MessageType::kAppendResponse:
      handle_append_response(m);
      break;
    case MessageType::kHeartbeatResponse:
      handle_heartbeat_response(m);
      break;
    case MessageType::kReadIndexRequest:
      handle_read_index_request(m);
      break;
    case MessageType::kReadIndexResponse:
      handle_read_index_response(m);
      break;
    case MessageType::kTimeoutNow:
      handle_timeout_now(m);
      break;
    case MessageType::kSnapshotRequest:
      handle_snapshot(m);
      break;
    case MessageType::kSnapshotChunk:
    case MessageType::kSnapshotChunkResponse:
      break;  // refused in step()
  }
}

Result<Index> Node::propose(EntryType type, Payload data) {
  LeaderRole* leader = proposing_leader();
  if (leader == nullptr) return refusal_to_propose();
  if (type == EntryType::kConfiguration) {
    return Status::invalid_argument("configuration entries go through membership changes");
  }
  LogEntry entry{term_, log_.last_index().next(), type, std::move(data)};
  if (Status room = check_uncommitted_room(*leader, entry); !room.is_ok()) return room;
  const Index index = append_own(*leader, entry);
  check_invariants();
  return index;
}

LeaderRole* Node::proposing_leader() {
  auto* leader = std::get_if<LeaderRole>(&role_);
  return leader != nullptr && leader->transfer_target.is_zero() ? leader : nullptr;
}

Status Node::refusal_to_propose() const {
  if (!is_leader()) return Status::not_leader(leader_);
  return Status::with_code(StatusCode::kLeadershipTransferInProgress,
                           "leadership is being transferred");
}

Status Node::check_uncommitted_room(const LeaderRole& leader, const LogEntry& entry) const {
  if (leader.uncommitted_bytes > 0 &&
      leader.uncommitted_bytes + entry_size_bytes(entry) > config_.max_uncommitted_bytes) {
    return Status::resource_exhausted("too many uncommitted bytes on the leader");
  }
  return Status::ok();
}

Index Node::append_own(LeaderRole& leader, const LogEntry& entry) {
  leader.uncommitted_bytes += entry_size_bytes(entry);
  const Index index = entry.index;
  log_.append(entry);
  needs_flush_ = true;
  return index;
}

Result<Index> Node::propose_run(EntryType type, const std::vector<std::string>& data) {
  LeaderRole* leader = proposing_leader();
  if (leader == nullptr) return refusal_to_propose();
  if (data.empty()) return Status::invalid_argument("propose_run: no entries");
  const Index first = log_.last_index().next();
  for (const std::string& bytes : data) {
    append_own(*leader, LogEntry{term_, log_.last_index().next(), type, bytes});
  }
  check_invariants();
  return first;
}

Result<Index> Node::propose_configuration_change(const std::vector<ConfigurationChange>& changes,
                                                 Index prev_index) {
  LeaderRole* leader = proposing_leader();
  if (leader == nullptr) return refusal_to_propose();
  // The 2015 single-server change bug: until an entry of this term commits,
  // the log may end in a previous leader's uncommitted change that a third
  // leader can still overwrite; a change appended on top of it would be
  // decided by a configuration that may never take effect, and two changes
  // of one server each can then elect two leaders in one term.
  if (!committed_in_current_term() && !KEEL_CANARY(kConfigChangeWithoutTermCommit)) {
    return Status::unavailable("leader has not yet committed an entry of its term");
  }
  const Index latest = configurations_.latest_index();
  if (latest > commit_ || configuration().joint()) {
    return Status::with_code(StatusCode::kConfigurationChangeInProgress,
                             "the configuration change at index " + std::to_string(latest.value) +
                                 " is still in progress");
  }
  if (!prev_index.is_zero() && prev_index != latest) {
    return Status::with_code(StatusCode::kConfigurationChangeInProgress,
                             "the configuration changed since index " +
                                 std::to_string(prev_index.value) + " (it is now at index " +
                                 std::to_string(latest.value) + ")");
  }
  Result<Configuration> next = apply_changes(configuration(), changes);
  if (!next.is_ok()) return next.status();
  if (*next == configuration()) return latest;
  Configuration entry_configuration = transition(configuration(), *next);
  LogEntry entry{term_, log_.last_index().next(), EntryType::kConfiguration,
                 encode_configuration(entry_configuration)};
  // Every follower must be able to decode it, or replication stops there.
  if (Result<Configuration> decodable = decode_configuration(entry.data); !decodable.is_ok()) {
    return Status::invalid_argument("the configuration does not fit the wire format: " +
                                    decodable.status().message());
  }
  if (Status room = check_uncommitted_room(*leader, entry); !room.is_ok()) return room;
  const Index index = append_own(*leader, entry);
  append_configuration(index, std::move(entry_configuration));
  check_invariants();
  return index;
}

ConfigurationState Node::configuration_state() const {
  const auto& committed = configurations_.at(commit_);
  return ConfigurationState{committed.second, committed.first, configuration(),
                            configurations_.latest_index()};
}

const Server* Node::peer(ServerId id) const {
  if (const Server* member = configuration().find(id)) return member;
  // A leader the latest configuration removes still leads until that
  // commits, and its followers answer it.
  if (const Server* member = configurations_.at(commit_).second.find(id)) return member;
  if (const auto* leader = std::get_if<LeaderRole>(&role_)) {
    auto it = leader->leaving.find(id);
    if (it != leader->leaving.end()) return &it->second;
  }
  return nullptr;
}

bool Node::sole_voter() const {
  // Asked of the quorum rules, which hold the voters already (no copy on
  // every read).
  const std::vector<ServerId>& voters = quorum_.incoming().voters();
  return !quorum_.joint() && voters.size() == 1 && voters.front() == id();
}

Status Node::read_index(std::uint64_t request_id) {
  auto* leader = std::get_if<LeaderRole>(&role_);
  if (leader == nullptr) {
    if (leader_.is_zero()) return Status::unavailable("no known leader to ask for a read index");
    // Asking again under the same id rebinds it to the present leader and
    // term. Ids the shell gave up on are forgotten oldest first: a late
    // answer to one is then ignored and the shell asks again.
    forwarded_reads_[request_id] = ForwardedRead{leader_, term_};
    if (forwarded_reads_.size() > config_.max_pending_reads) {
      forwarded_reads_.erase(forwarded_reads_.begin());
    }
    send(Message{.type = MessageType::kReadIndexRequest,
                 .to = leader_,
                 .term = term_,
                 .request_id = request_id});
    return Status::ok();
  }
  if (!committed_in_current_term() && !KEEL_CANARY(kReadWithoutTermStart)) {
    // Thesis §6.4: until an entry of its own term commits, a new leader does
    // not know the true commit index; a read released now could miss writes
    // the previous leader acknowledged.
    return Status::unavailable("leader has not yet committed an entry of its term");
  }
  if (leader->reads.waiting() >= config_.max_pending_reads) {
    return Status::resource_exhausted("too many reads waiting for a quorum round");
  }
  if (sole_voter() || KEEL_CANARY(kReadWithoutConfirmation)) {
    read_states_.push_back(ReadState{request_id, commit_, Status::ok()});
    return Status::ok();
  }
  const std::uint64_t round = round_for_new_read();
  leader->reads.wait(PendingRead{request_id, id(), commit_, round});
  return Status::ok();
}

Result<Index> Node::lease_read_index() const {
  const auto* leader = std::get_if<LeaderRole>(&role_);
  if (leader == nullptr) return Status::not_leader(leader_);
  if (!committed_in_current_term() && !KEEL_CANARY(kReadWithoutTermStart)) {
    return Status::unavailable("leader has not yet committed an entry of its term");
  }
  if (sole_voter()) return commit_;
  if (config_.lease_ticks == 0 || !config_.check_quorum) {
    return Status::unavailable("lease reads are disabled");
  }
  if (!leader->transfer_target.is_zero()) {
    // The transfer target campaigns ignoring leases: ours is void.
    return Status::with_code(StatusCode::kLeadershipTransferInProgress,
                             "no lease during leadership transfer");
  }
  if (leader->sent_timeout_now) {
    return Status::unavailable("no lease for the rest of a term in which TimeoutNow was sent");
  }
  // KEEL_CANARY(kLeaseWithoutDriftMargin): the lease lasts the followers'
  // whole election timeout, as the leader's own clock measures it.
  const std::uint64_t lease_ticks =
      KEEL_CANARY(kLeaseWithoutDriftMargin) ? config_.election_timeout_ticks : config_.lease_ticks;
  const std::optional<std::uint64_t> lease_start = leader->reads.lease_start_tick();
  if (!lease_start || ticks_ >= *lease_start + lease_ticks) {
    return Status::unavailable("leader lease has expired");
  }
  return commit_;
}

void Node::campaign() {
  start_campaign(/*leadership_transfer=*/false);
  check_invariants();
}

Status Node::transfer_leadership(ServerId target) {
  auto* leader = std::get_if<LeaderRole>(&role_);
  if (leader == nullptr) return Status::not_leader(leader_);
  if (target == id()) return Status::invalid_argument("this node already leads");
  if (!configuration().is_voter(target)) {
    return Status::invalid_argument("transfer target is not a voter");
  }
  if (!leader->transfer_target.is_zero()) {
    return Status::with_code(StatusCode::kLeadershipTransferInProgress,
                             "a leadership transfer is already in progress");
  }
  leader->transfer_target = target;
  leader->transfer_started_tick = ticks_;
  election_elapsed_ = 0;  // the transfer gets one election timeout
  maybe_send_timeout_now(target);
  needs_flush_ = true;
  return Status::ok();
}

void Node::abort_leadership_transfer() {
  auto* leader = std::get_if<LeaderRole>(&role_);
  if (leader == nullptr || leader->transfer_target.is_zero()) return;
  leader->transfer_target = kNoServer;
  needs_flush_ = true;
  check_invariants();
}

ServerId Node::transfer_target() const {
  const auto* leader = std::get_if<LeaderRole>(&role_);
  return leader == nullptr ? kNoServer : leader->transfer_target;
}

// --- snapshots -----------------------------------------------------------------

void Node::on_snapshot(Index index, Term term) {
  KEEL_CHECK("a snapshot covers only applied entries", index <= applied_);
  KEEL_CHECK("a snapshot's term is its last entry's",
             !log_.term_at(index).has_value() || log_.term_at(index) == term);
  if (index <= snapshot_index_) return;
  snapshot_index_ = index;
  snapshot_term_ = term;
}

Status Node::compact(Index through) {
  if (through <= log_.base_index()) return Status::ok();
  if (through > applied_) {
    return Status::invalid_argument("compact: entry " + std::to_string(through.value) +
                                    " is not applied (applied " + std::to_string(applied_.value) +
                                    ")");
  }
  if (through > snapshot_index_) {
    return Status::invalid_argument("compact: entry " + std::to_string(through.value) +
                                    " is in no durable snapshot (the newest ends at " +
                                    std::to_string(snapshot_index_.value) + ")");
  }
  log_.compact(through);
  configurations_.compact(through);
  check_invariants();
  return Status::ok();
}

void Node::report_snapshot_failed(ServerId peer) {
  Progress* pr = find_progress(peer);
  if (pr == nullptr || pr->state != ProgressState::kSnapshot) return;
  pr->become_probe();
  needs_flush_ = true;
}

// --- roles -------------------------------------------------------------------

bool Node::may_campaign() const {
  if (!catch_up_floor_.is_zero()) return false;
  if (configuration().is_voter(id())) return true;
  // Thesis §4.2.2: a voter that an uncommitted configuration demotes or
  // removes (a leader removing itself, typically) is still needed until that
  // configuration commits: it may hold the only log that has it, and the
  // voters of the older configuration cannot elect without it (two voters,
  // the leader removing itself: the other's log is behind). It campaigns
  // under its latest configuration, whose quorum does not count its own
  // vote.
  return !removed_ && configurations_.at(commit_).second.is_voter(id());
}

void Node::start_campaign(bool leadership_transfer) {
  if (is_leader() || !may_campaign()) return;
  if (config_.pre_vote && !leadership_transfer) {
    become_pre_candidate();
  } else {
    become_candidate(leadership_transfer);
  }
}

void Node::reset_election_timer() {
  election_elapsed_ = 0;
  randomized_election_timeout_ = static_cast<std::uint32_t>(
      prng_.uniform(config_.election_timeout_ticks, 2ULL * config_.election_timeout_ticks));
}

void Node::set_role(RoleState role) {
  const Role before = this->role();
  if (auto* leader = std::get_if<LeaderRole>(&role_)) fail_pending_reads(*leader);
  role_ = std::move(role);
  if (this->role() != before) {
    events_.push_back(Event{.kind = EventKind::kRoleChanged, .role = this->role(), .term = term_});
  }
}

void Node::set_leader(ServerId leader) {
  if (leader == leader_) return;
  leader_ = leader;
  // Answers from the previous leader no longer count; the shell re-asks.
  std::erase_if(forwarded_reads_, [&](const auto& read) { return read.second.leader != leader; });
  events_.push_back(
      Event{.kind = EventKind::kLeaderChanged, .role = role(), .term = term_, .leader = leader});
}

void Node::become_follower(Term term, ServerId leader) {
  if (term > term_) {
    term_ = term;
    vote_ = kNoServer;
  }
  set_role(FollowerRole{});
  set_leader(leader);
  reset_election_timer();
}

void Node::become_pre_candidate() {
  // Thesis §9.6: ask first whether an election could be won, without raising
  // the term, so a node that cannot win never disrupts the cluster.
  set_role(PreCandidateRole{});
  set_leader(kNoServer);
  reset_election_timer();
  handle_vote_response(Message{
      .type = MessageType::kPreVoteResponse, .from = id(), .to = id(), .term = term_.next()});
  if (!std::holds_alternative<PreCandidateRole>(role_)) return;  // won alone
  for (ServerId voter : configuration().voters()) {
    if (voter == id()) continue;
    send(Message{.type = MessageType::kPreVoteRequest,
                 .to = voter,
                 .term = term_.next(),
                 .last_log_index = log_.last_index(),
                 .last_log_term = log_.last_term()});
  }
}

void Node::become_candidate(bool leadership_transfer) {
  term_ = term_.next();
  vote_ = id();
  set_role(CandidateRole{});
  set_leader(kNoServer);
  reset_election_timer();
  handle_vote_response(
      Message{.type = MessageType::kVoteResponse, .from = id(), .to = id(), .term = term_});
  if (!std::holds_alternative<CandidateRole>(role_)) return;  // won alone
  for (ServerId voter : configuration().voters()) {
    if (voter == id()) continue;
    // Sent only after term and vote are durable (messages_after_persist):
    // otherwise a crash could let this node vote twice in one term.
    send(Message{.type = MessageType::kVoteRequest,
                 .to = voter,
                 .term = term_,
                 .last_log_index = log_.last_index(),
                 .last_log_term = log_.last_term(),
                 .leadership_transfer = leadership_transfer});
  }
}

void Node::become_leader() {
  LeaderRole leader;
  for (const Server& server : configuration().members()) {
    if (server.id == id()) continue;
    leader.progress.emplace(server.id, new_progress(log_.last_index().next()));
  }
  set_role(std::move(leader));
  set_leader(id());
  heartbeat_elapsed_ = 0;
  election_elapsed_ = 0;
  // Thesis §6.4 and §8: a new leader appends an entry of its own term at
  // once. Entries of earlier terms commit only with it (Figure 8), and reads
  // and "leader ready" wait for it.
  LogEntry entry{term_, log_.last_index().next(), EntryType::kTermStart, {}};
  auto& state = std::get<LeaderRole>(role_);
  state.term_start_index = entry.index;
  state.uncommitted_bytes = entry_size_bytes(entry);
  log_.append(entry);
  needs_flush_ = true;
  maybe_commit();  // a single-voter cluster commits once its own write is durable
}

// --- follower side -----------------------------------------------------------

void Node::follow_sender(const Message& m) {
  KEEL_CHECK("election safety: one leader per term", !is_leader());
  if (!std::holds_alternative<FollowerRole>(role_)) set_role(FollowerRole{});
  set_leader(m.from);
  election_elapsed_ = 0;
  leader_contact_elapsed_ = 0;
}

void Node::handle_append(const Message& m) {
  follow_sender(m);
  append_from_leader(m);
}

void Node::append_from_leader(const Message& m) {
  Message reply{
      .type = MessageType::kAppendResponse, .to = m.from, .term = term_, .epoch = m.epoch};
  if (m.prev_log_index < commit_) {
    // Everything up to our commit index is committed and so matches the
    // leader's log; tell the leader to continue from there.
    reply.match_index = commit_;
    send(std::move(reply));
    return;
  }
  if (!log_.matches(m.prev_log_index, m.prev_log_term)) {
    // §5.3 consistency check failed. The hint lets the leader skip a whole
    // conflicting term (or the missing tail) in one round trip.
    reply.reject = true;
    reply.match_index = m.prev_log_index;
    if (m.prev_log_index > log_.last_index()) {
      reply.hint_index = log_.last_index().next();
    } else {
      reply.hint_term = *log_.term_at(m.prev_log_index);
      reply.hint_index = log_.first_index_of_term_at(m.prev_log_index);
    }
    send(std::move(reply));
    return;
  }
  for (const LogEntry& entry : m.entries) {
    if (log_.matches(entry.index, entry.term)) continue;  // already have it
    if (entry.index <= log_.last_index()) {
      KEEL_CHECK("committed entries are never overwritten", entry.index > commit_);
      log_.truncate_from(entry.index);
      unstable_from_ = std::min(unstable_from_, entry.index);
      persisted_ = std::min(persisted_, entry.index.prev());
      if (entry.index <= configurations_.latest_index()) {
        // The configuration goes back to the one before the dropped entries.
        configurations_.truncate_from(entry.index);
        on_configuration_changed();
      }
    }
    log_.append(entry);
    if (entry.type == EntryType::kConfiguration) {
      Result<Configuration> decoded = decode_configuration(entry.data);
      KEEL_CHECK("configuration entries decode (the codec refuses frames otherwise)",
                 decoded.is_ok());
      append_configuration(entry.index, std::move(decoded).value());
    }
  }
  const Index last_verified = m.prev_log_index + m.entries.size();
  pass_catch_up_floor(last_verified);
  // Follower commit clamp: the leader's commit index tells us nothing about
  // entries past those this append verified; our log beyond them may still
  // hold a stale suffix from an older term.
  const Index clamp = KEEL_CANARY(kNoFollowerCommitClamp) ? log_.last_index() : last_verified;
  advance_commit_to(std::min(m.commit, clamp));
  reply.match_index = last_verified;
  send(std::move(reply));  // after persist: it promises the entries are durable
}

void Node::handle_snapshot(const Message& m) {
  follow_sender(m);
  const Index index = m.prev_log_index;
  Message reply{
      .type = MessageType::kAppendResponse, .to = m.from, .term = term_, .epoch = m.epoch};
  if (index <= commit_) {
    // We hold everything the snapshot covers, committed: continue from our
    // commit index.
    reply.match_index = commit_;
    send(std::move(reply));
    return;
  }
  snapshot_index_ = std::max(snapshot_index_, index);
  if (snapshot_index_ == index) snapshot_term_ = m.prev_log_term;
  const bool keep_anyway = KEEL_CANARY(kInstallKeepsConflictingLog) && index <= log_.last_index();
  if (log_.matches(index, m.prev_log_term) || keep_anyway) {
    // Figure 13, rule 7: our log holds the snapshot's last entry, so it
    // holds everything before it too (log matching), and what follows may
    // still be good: keep it and let the state machine apply its way there.
    advance_commit_to(index);
  } else {
    install_snapshot(m);
  }
  pass_catch_up_floor(index);
  reply.match_index = index;
  send(std::move(reply));  // after persist: the install (if any) must be durable
}

void Node::install_snapshot(const Message& m) {
  // Our log ends before the snapshot or conflicts with it: none of it can
  // be trusted past our commit index, which the snapshot covers. Drop it
  // all; the state machine is replaced by the snapshot's state.
  const Index index = m.prev_log_index;
  log_.reset(index, m.prev_log_term);
  commit_ = index;
  unstable_from_ = index.next();
  persisted_ = std::min(persisted_, index.prev());
  applied_handed_ = index;
  // The configurations of the dropped log go with it; the snapshot's is in
  // force from its index (held by an entry at or before it).
  configurations_.truncate_from(index.next());
  if (!m.snapshot_configuration.empty()) {
    configurations_.reset(m.snapshot_configuration,
                          std::min(m.snapshot_configuration_index, index));
  }
  on_configuration_changed();
  after_commit();
  pending_install_ = SnapshotInstall{index, m.prev_log_term, m.snapshot_configuration,
                                     m.snapshot_configuration_index};
}

void Node::handle_heartbeat(const Message& m) {
  KEEL_CHECK("election safety: one leader per term", !is_leader());
  if (!std::holds_alternative<FollowerRole>(role_)) set_role(FollowerRole{});
  set_leader(m.from);
  if (!KEEL_CANARY(kElectionTimerNotReset)) election_elapsed_ = 0;
  leader_contact_elapsed_ = 0;
  // The leader clamps a heartbeat's commit to the match index it holds for
  // us, which our log is known to share with it.
  told_removed_ = m.removed;
  advance_commit_to(std::min(m.commit, log_.last_index()));
  update_removed();
  send(Message{.type = MessageType::kHeartbeatResponse,
               .to = m.from,
               .term = term_,
               .read_round = m.read_round,
               .epoch = m.epoch});
}

void Node::handle_vote_request(const Message& m) {
  const bool pre_vote = m.type == MessageType::kPreVoteRequest;
  bool can_vote = false;
  if (pre_vote) {
    // Grant a pre-vote only if the requester's term would be new to us and we
    // have not heard from a leader within the election timeout (thesis §9.6).
    can_vote = m.term > term_ && (!in_leader_lease() || m.leadership_transfer);
  } else {
    // At most one vote per term (§5.2); repeat a vote already given. A new
    // vote is refused while we heard from a leader within the election
    // timeout, whatever our term: a term adopted from a late response (a
    // rejected pre-vote, say) forgets the leader but not the promise its
    // lease relies on. step_term() drops such requests of a higher term;
    // this catches those of our own term.
    const bool lease_protected =
        config_.check_quorum && in_leader_lease() && !m.leadership_transfer;
    can_vote = vote_ == m.from || (vote_.is_zero() && leader_.is_zero() && !lease_protected);
  }
  const bool granted = can_vote && log_.is_up_to_date(m.last_log_index, m.last_log_term);
  const MessageType type = pre_vote ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
  if (granted && !pre_vote) {
    vote_ = m.from;
    election_elapsed_ = 0;
  }
  // A granted pre-vote answers with the requested term so the pre-candidate
  // can tell it from a stale answer; everything else carries our term.
  send(Message{.type = type,
               .to = m.from,
               .term = granted && pre_vote ? m.term : term_,
               .reject = !granted});
}

void Node::handle_vote_response(const Message& m) {
  const bool pre_vote = m.type == MessageType::kPreVoteResponse;
  VoteTally* tally = nullptr;
  if (pre_vote) {
    auto* role = std::get_if<PreCandidateRole>(&role_);
    if (role == nullptr) return;
    if (!m.reject && m.term != term_.next()) return;  // answer to an older pre-vote
    tally = &role->votes;
  } else {
    auto* role = std::get_if<CandidateRole>(&role_);
    if (role == nullptr) return;
    tally = &role->votes;
  }
  if (!quorum_.contains(m.from)) return;
  tally->responses.emplace(m.from, !m.reject);  // first answer per voter counts
  switch (quorum_.vote_result(tally->responses)) {
    case VoteResult::kWon:
      if (pre_vote) {
        become_candidate(/*leadership_transfer=*/false);
      } else {
        become_leader();
      }
      break;
    case VoteResult::kLost:
      become_follower(term_, kNoServer);
      break;
    case VoteResult::kPending:
      break;
  }
}

void Node::handle_read_index_response(const Message& m) {
  // Only the answer to a request we forwarded, from the leader we asked, in
  // the term we asked in. Anything else -- a leader we no longer follow, an
  // answer to a request we re-asked elsewhere -- is stale.
  auto asked = forwarded_reads_.find(m.request_id);
  if (asked == forwarded_reads_.end() || asked->second.leader != m.from ||
      asked->second.term != m.term || m.from != leader_) {
    return;
  }
  forwarded_reads_.erase(asked);
  ReadState state{m.request_id, m.read_index, Status::ok()};
  if (m.reject) state.status = Status::unavailable("leader refused the read index");
  read_states_.push_back(std::move(state));
}

void Node::handle_timeout_now(const Message& m) {
  if (m.from != leader_ || !configuration().is_voter(id())) return;
  start_campaign(/*leadership_transfer=*/true);
}

// --- leader side -------------------------------------------------------------

Progress* Node::find_progress(ServerId peer) {
  auto* leader = std::get_if<LeaderRole>(&role_);
  if (leader == nullptr) return nullptr;
  auto it = leader->progress.find(peer);
  return it == leader->progress.end() ? nullptr : &it->second;
}

const Progress* Node::progress(ServerId peer) const {
  return const_cast<Node*>(this)->find_progress(peer);  // NOLINT: read-only use
}

bool Node::current_epoch(const Progress& progress, const Message& m) const {
  return m.epoch == progress.epoch || KEEL_CANARY(kStaleEpochAccepted);
}

void Node::handle_append_response(const Message& m) {
  Progress* pr = find_progress(m.from);
  if (pr == nullptr || !current_epoch(*pr, m)) return;
  pr->recent_active = true;
  needs_flush_ = true;
  if (!m.reject) {
    const bool advanced = pr->acknowledge(m.match_index);
    // A follower sent a snapshot is back on the log once it holds an entry
    // the log still has (the snapshot's, or one it had anyway).
    if (pr->state == ProgressState::kSnapshot && pr->match_index >= log_.base_index()) {
      pr->become_replicate();
    } else if (pr->state == ProgressState::kSnapshot && pr->match_index >= pr->pending_snapshot) {
      // It holds the snapshot sent, but the log was compacted past it since:
      // probing asks for the newer one.
      pr->become_probe();
    }
    if (advanced) {
      if (pr->state == ProgressState::kProbe) pr->become_replicate();
      maybe_commit();
      maybe_send_timeout_now(m.from);
    }
    return;
  }
  if (pr->state == ProgressState::kSnapshot) return;  // the snapshot's answer decides
  const Index rejected = m.match_index;
  // A rejection of an append we no longer care about (we already moved past
  // it) is stale: acting on it would rewind a healthy follower.
  if (pr->state == ProgressState::kReplicate) {
    if (rejected <= pr->match_index) return;
    pr->become_probe();
  } else if (rejected.next() != pr->next_index) {
    return;
  }
  Index next = m.hint_index;
  if (!m.hint_term.is_zero()) {
    // If we hold entries of the follower's conflicting term, resume after our
    // last one; otherwise skip the follower's whole run of that term.
    if (std::optional<Index> ours = log_.last_index_of_term(m.hint_term)) next = ours->next();
  }
  next = std::max(pr->match_index.next(), std::min(next, rejected));
  pr->next_index = next;
  // A rejection that moves nothing back (the next probe would be the very
  // append refused) taught nothing: the follower refuses entries it once
  // acknowledged, so its log was lost (a wiped server under its old id).
  // Sending it again at once would repeat the exchange as fast as the
  // network turns it around, forever; the probe resumes at the next
  // heartbeat's answer instead.
  pr->probe_sent = next.prev() == rejected;
}

void Node::handle_heartbeat_response(const Message& m) {
  Progress* pr = find_progress(m.from);
  if (pr == nullptr || !current_epoch(*pr, m)) return;
  if (!pr->leaving_at.is_zero() && pr->told_round != 0 && m.read_round >= pr->told_round) {
    pr->removal_told = true;  // it answered a heartbeat that carried its removal's commit
  }
  pr->recent_active = true;
  pr->on_heartbeat_response();  // a live follower: resume a stalled probe or window
  needs_flush_ = true;
  if (pr->state == ProgressState::kReplicate && pr->match_index < log_.last_index() &&
      pr->next_index > log_.last_index()) {
    // Liveness: appends lost on the wire leave a replicating follower behind
    // with nothing left to send it (next_index is past our log), so no new
    // append would reveal the gap until the next proposal; in a quiet
    // cluster, never. Re-send our last index as an empty append: accepted
    // (and the window freed) if the appends did arrive and only their acks
    // are late; rejected otherwise, which moves the follower back to probe.
    const Index last = log_.last_index();
    send(Message{.type = MessageType::kAppendRequest,
                 .to = m.from,
                 .term = term_,
                 .prev_log_index = last,
                 .prev_log_term = log_.last_term(),
                 .commit = commit_,
                 .epoch = pr->epoch,
                 .catch_up_floor = catch_up_floor_for(m.from, *pr)});
  }
  if (m.read_round > pr->read_round_acked) {
    pr->read_round_acked = m.read_round;
    release_confirmed_reads();
  }
}

void Node::handle_read_index_request(const Message& m) {
  auto* leader = std::get_if<LeaderRole>(&role_);
  Message reply{.type = MessageType::kReadIndexResponse,
                .to = m.from,
                .term = term_,
                .request_id = m.request_id};
  if (leader == nullptr || (!committed_in_current_term() && !KEEL_CANARY(kReadWithoutTermStart)) ||
      leader->reads.waiting() >= config_.max_pending_reads) {
    reply.reject = true;
    send(std::move(reply));
    return;
  }
  if (KEEL_CANARY(kReadWithoutConfirmation)) {
    reply.read_index = commit_;
    send(std::move(reply));
    return;
  }
  // A follower asks again when an answer is late; the request still pending
  // will be answered (once) when its round confirms.
  if (leader->reads.is_waiting(m.from, m.request_id)) return;
  const std::uint64_t round = round_for_new_read();
  leader->reads.wait(PendingRead{m.request_id, m.from, commit_, round});
}

std::uint64_t Node::round_for_new_read() {
  auto& leader = std::get<LeaderRole>(role_);
  // Thesis §6.4: the round that confirms a read must start after the read
  // arrived. A round whose heartbeats already went out proves leadership
  // only as of their sending; a newer leader may have committed since.
  if (KEEL_CANARY(kReadConfirmedByEarlierRound)) {
    if (std::optional<std::uint64_t> oldest = leader.reads.oldest_unconfirmed()) return *oldest;
  }
  return open_read_round();
}

std::uint64_t Node::open_read_round() {
  auto& leader = std::get<LeaderRole>(role_);
  const auto [round, opened] = leader.reads.open();
  if (opened) needs_flush_ = true;
  return round;
}

void Node::release_confirmed_reads() {
  auto& leader = std::get<LeaderRole>(role_);
  // The highest round confirmed by a quorum of voters, counting ourselves.
  const std::uint64_t confirmed = quorum_.committed(
      [&](ServerId voter) -> std::uint64_t {
        if (voter == id()) return leader.reads.round();
        auto it = leader.progress.find(voter);
        return it == leader.progress.end() ? 0 : it->second.read_round_acked;
      },
      quorum_scratch_);
  for (const PendingRead& read :
       leader.reads.confirm(confirmed, ticks_, KEEL_CANARY(kLeaseFromAckTime))) {
    if (read.requester == id()) {
      read_states_.push_back(ReadState{read.request_id, read.index, Status::ok()});
    } else {
      send(Message{.type = MessageType::kReadIndexResponse,
                   .to = read.requester,
                   .term = term_,
                   .request_id = read.request_id,
                   .read_index = read.index});
    }
  }
}

void Node::fail_pending_reads(LeaderRole& leader) {
  for (const PendingRead& read : leader.reads.take_all()) {
    if (read.requester == id()) {
      read_states_.push_back(ReadState{read.request_id, read.index, Status::not_leader()});
    }
  }
}

void Node::maybe_send_timeout_now(ServerId peer) {
  auto* leader = std::get_if<LeaderRole>(&role_);
  if (leader == nullptr || leader->transfer_target != peer) return;
  const Progress* pr = progress(peer);
  if (pr != nullptr && pr->match_index == log_.last_index()) {
    // Once sent it cannot be recalled: however late it arrives, the target
    // campaigns past every follower's lease protection. So this leader's
    // lease is void for the rest of its term, even if the transfer is
    // abandoned and a quorum confirms it again.
    leader->sent_timeout_now = true;
    send(Message{.type = MessageType::kTimeoutNow, .to = peer, .term = term_});
  }
}

bool Node::in_leader_lease() const {
  if (is_leader() || leader_contact_elapsed_ < config_.election_timeout_ticks) return true;
  // A node that just started does not know whether a leader is in contact
  // with a quorum and holds a lease; had it been a follower before the
  // restart, voting at once could help elect a second leader inside the old
  // one's lease (two restarted followers and a candidate are a majority of
  // five). With lease reads on, it keeps the protection for one election
  // timeout after starting, as if it had just heard from a leader.
  return config_.lease_ticks > 0 && ticks_ < config_.election_timeout_ticks;
}

Index Node::self_match() const { return std::min(persisted_, log_.last_index()); }

bool Node::quorum_active(const LeaderRole& leader) const {
  return quorum_.agrees([&](ServerId voter) {
    if (voter == id()) return true;
    auto it = leader.progress.find(voter);
    return it != leader.progress.end() && it->second.recent_active;
  });
}

void Node::append_configuration(Index index, Configuration configuration) {
  configurations_.append(index, std::move(configuration));
  on_configuration_changed();
}

Index Node::catch_up_floor_for(ServerId peer, const Progress& progress) const {
  // Only while it may still be empty: nothing is known to match yet.
  return progress.match_index.is_zero() ? configurations_.membership_start(peer) : Index{};
}

Progress Node::new_progress(Index next) const {
  Progress progress(next, config_.max_inflight_appends, config_.max_inflight_bytes);
  progress.epoch = configurations_.latest_index().value;
  return progress;
}

void Node::on_configuration_changed() {
  const Configuration& latest = configuration();
  MajorityConfig outgoing(latest.outgoing_voters());
  if (KEEL_CANARY(kJointSingleMajority)) outgoing = MajorityConfig();
  quorum_ = JointConfig(MajorityConfig(latest.incoming_voters()), std::move(outgoing));
  auto* leader = std::get_if<LeaderRole>(&role_);
  if (leader == nullptr) return;
  leader->reads.void_lease();
  for (const Server& server : latest.members()) {
    if (server.id == id()) continue;
    auto it = leader->progress.find(server.id);
    // Probing starts at the entry that added it: the entry goes out at once.
    const Index next = configurations_.latest_index();
    if (it == leader->progress.end()) {
      leader->progress.emplace(server.id, new_progress(next));
    } else if (!it->second.leaving_at.is_zero()) {
      it->second = new_progress(next);  // added back before it was told: a new life
    }
    leader->leaving.erase(server.id);
  }
  // Leaders only append, so the configuration before the latest is the one
  // the removed servers were in.
  const Configuration& before = configurations_.at(configurations_.latest_index().prev()).second;
  for (auto& [peer, progress] : leader->progress) {
    if (latest.contains(peer) || !progress.leaving_at.is_zero()) continue;
    progress.leaving_at = configurations_.latest_index();
    const std::uint64_t notice = config_.removed_notice_ticks != 0
                                     ? config_.removed_notice_ticks
                                     : 10ULL * config_.election_timeout_ticks;
    progress.leaving_deadline = ticks_ + notice;
    if (const Server* server = before.find(peer)) leader->leaving[peer] = *server;
  }
  if (!leader->transfer_target.is_zero() && !latest.is_voter(leader->transfer_target)) {
    leader->transfer_target = kNoServer;
  }
  needs_flush_ = true;
}

void Node::forget_told_servers() {
  auto& leader = std::get<LeaderRole>(role_);
  for (auto it = leader.progress.begin(); it != leader.progress.end();) {
    const Progress& pr = it->second;
    if (!pr.leaving_at.is_zero() && (pr.removal_told || ticks_ >= pr.leaving_deadline)) {
      leader.leaving.erase(it->first);
      it = leader.progress.erase(it);
    } else {
      ++it;
    }
  }
}

void Node::update_removed() {
  const auto& committed = configurations_.at(commit_).second;
  if (committed.contains(id())) {
    was_member_ = true;
    removed_ = false;
  } else if (was_member_ && !committed.empty() && !configuration().contains(id()) &&
             (told_removed_ || is_leader() || !opened_)) {
    // Not while a newer configuration adds it back, and only on its
    // leader's word (Message::removed), its own as leader, or its stores'
    // at open: a server catching up (one added back under its id, after a
    // wipe) passes its own earlier removal on the way to the entry that
    // adds it again.
    removed_ = true;
  }
}

bool Node::below_catch_up_floor(const Message& vote_request) const {
  return !catch_up_floor_.is_zero() && (vote_request.last_log_term < catch_up_floor_term_ ||
                                        (vote_request.last_log_term == catch_up_floor_term_ &&
                                         vote_request.last_log_index < catch_up_floor_));
}

void Node::pass_catch_up_floor(Index matched) {
  // Our log now matches a leader's through `matched`: past the floor, it
  // holds this life's history, not only an earlier one's. (Committing is
  // not needed, and waiting for it could stall a cluster whose leader
  // failed before telling this server, if its vote is needed.)
  if (!catch_up_floor_.is_zero() && matched >= catch_up_floor_) {
    catch_up_floor_ = Index{};
    catch_up_floor_term_ = Term{};
  }
}

void Node::after_commit() {
  pass_catch_up_floor(commit_);
  update_removed();
  auto* leader = std::get_if<LeaderRole>(&role_);
  if (leader == nullptr || commit_ < configurations_.latest_index() ||
      !committed_in_current_term()) {
    return;
  }
  if (configuration().joint()) {
    // C_old,new is committed: go on to C_new (thesis §4.3). From here on
    // C_new alone decides.
    Configuration next = leave_joint(configuration());
    const Index index =
        append_own(*leader, LogEntry{term_, log_.last_index().next(), EntryType::kConfiguration,
                                     encode_configuration(next)});
    append_configuration(index, std::move(next));
  } else if (!configuration().is_voter(id())) {
    step_down_removed();
  }
}

void Node::step_down_removed() {
  // The configuration that no longer counts this leader is committed: it
  // steps down (thesis §4.2.2). The most caught-up voter is told to campaign
  // at once, so that the cluster is not without a leader for an election
  // timeout.
  auto& leader = std::get<LeaderRole>(role_);
  ServerId successor;
  Index best;
  for (const auto& [peer, progress] : leader.progress) {
    if (configuration().is_voter(peer) && (successor.is_zero() || progress.match_index > best)) {
      successor = peer;
      best = progress.match_index;
    }
  }
  // Even one a little behind: its election is as safe as any, and if a voter
  // with a longer log refuses it, that one wins the next.
  if (!successor.is_zero()) {
    leader.sent_timeout_now = true;
    send(Message{.type = MessageType::kTimeoutNow, .to = successor, .term = term_});
  }
  become_follower(term_, kNoServer);
}

void Node::maybe_commit() {
  const auto& leader = std::get<LeaderRole>(role_);
  const Index candidate{quorum_.committed(
      [&](ServerId voter) -> std::uint64_t {
        if (voter == id()) return self_match().value;
        auto it = leader.progress.find(voter);
        return it == leader.progress.end() ? 0 : it->second.match_index.value;
      },
      quorum_scratch_)};
  // Figure 8 (§5.4.2): only an entry of the current term commits by counting
  // replicas; earlier entries commit with it. Counting an old-term entry could
  // "commit" something a later leader overwrites.
  if (candidate > commit_ && (log_.term_at(candidate) == term_ || KEEL_CANARY(kFigure8Commit))) {
    advance_commit_to(candidate);
  }
}

void Node::advance_commit_to(Index index) {
  if (index <= commit_) return;
  const Index old_commit = commit_;
  commit_ = index;
  on_commit_advanced(old_commit);
  after_commit();
}

void Node::on_commit_advanced(Index old_commit) {
  auto* leader = std::get_if<LeaderRole>(&role_);
  if (leader == nullptr) return;
  needs_flush_ = true;
  for (Index i = std::max(old_commit.next(), leader->term_start_index); i <= commit_;
       i = i.next()) {
    leader->uncommitted_bytes -= entry_size_bytes(log_.at(i));
  }
  maybe_announce_ready();
}

bool Node::committed_in_current_term() const {
  const auto* leader = std::get_if<LeaderRole>(&role_);
  return leader != nullptr && commit_ >= leader->term_start_index;
}

void Node::maybe_announce_ready() {
  auto* leader = std::get_if<LeaderRole>(&role_);
  if (leader == nullptr || leader->ready_announced || applied_ < leader->term_start_index) return;
  leader->ready_announced = true;
  events_.push_back(Event{.kind = EventKind::kLeaderReady,
                          .role = Role::kLeader,
                          .term = term_,
                          .leader = id(),
                          .index = leader->term_start_index});
}

// --- output ------------------------------------------------------------------

void Node::flush_replication() {
  auto* leader = std::get_if<LeaderRole>(&role_);
  if (leader == nullptr) return;
  for (auto& [peer, progress] : leader->progress) {
    send_appends(peer, progress);
    if (config_.commit_notices_at_once) send_commit_notice(peer, progress);
  }
  if (leader->reads.round_pending()) send_heartbeats();
}

void Node::send_appends(ServerId peer, Progress& pr) {
  while (pr.can_send() && pr.next_index <= log_.last_index()) {
    const Index prev = pr.next_index.prev();
    std::optional<Term> prev_term = log_.term_at(prev);
    if (!prev_term.has_value()) {
      send_snapshot(peer, pr);  // the entries it needs are compacted away
      return;
    }
    std::vector<LogEntry> entries = log_.slice(
        pr.next_index, log_.last_index(), config_.max_append_entries, config_.max_append_bytes);
    std::uint64_t bytes = 0;
    for (const LogEntry& entry : entries) bytes += entry_size_bytes(entry);
    const Index last = entries.back().index;
    pr.commit_sent = std::min(commit_, last);
    send(Message{.type = MessageType::kAppendRequest,
                 .to = peer,
                 .term = term_,
                 .prev_log_index = prev,
                 .prev_log_term = *prev_term,
                 .entries = std::move(entries),
                 .commit = commit_,
                 .epoch = pr.epoch,
                 .catch_up_floor = catch_up_floor_for(peer, pr)});
    pr.sent(last, bytes, /*had_entries=*/true);
  }
}

void Node::send_snapshot(ServerId peer, Progress& pr) {
  KEEL_CHECK("a durable snapshot covers the compacted entries",
             snapshot_index_ >= log_.base_index() && !snapshot_index_.is_zero());
  pr.become_snapshot(snapshot_index_);
  const auto& [snapshot_config_index, snapshot_config] = configurations_.at(snapshot_index_);
  send(Message{.type = MessageType::kSnapshotRequest,
               .to = peer,
               .term = term_,
               .prev_log_index = snapshot_index_,
               .prev_log_term = snapshot_term_,
               .commit = commit_,
               .epoch = pr.epoch,
               .catch_up_floor = catch_up_floor_for(peer, pr),
               .snapshot_configuration = snapshot_config,
               .snapshot_configuration_index = snapshot_config_index});
}

std::optional<Index> Node::commit_notice_owed(const Progress& pr) const {
  // The follower may commit only up to its known match (the clamp).
  const Index learnable = std::min(commit_, pr.match_index);
  if (pr.commit_sent >= learnable || pr.state != ProgressState::kReplicate) return std::nullopt;
  // Compacted: the next heartbeat carries the commit.
  if (!log_.term_at(pr.match_index)) return std::nullopt;
  return learnable;
}

bool Node::commit_notice_due() const {
  const auto* leader = std::get_if<LeaderRole>(&role_);
  if (leader == nullptr) return false;
  return std::any_of(leader->progress.begin(), leader->progress.end(), [this](const auto& entry) {
    return commit_notice_owed(entry.second).has_value();
  });
}

void Node::send_commit_notices() {
  auto* leader = std::get_if<LeaderRole>(&role_);
  if (leader == nullptr) return;
  for (auto& [peer, progress] : leader->progress) send_commit_notice(peer, progress);
}

void Node::send_commit_notice(ServerId peer, Progress& pr) {
  // Nothing new to send, but the commit index moved: tell the follower, so it
  // can apply (and serve follower reads) without waiting for a heartbeat. The
  // append starts at the follower's known match, so it cannot be rejected.
  const std::optional<Index> learnable = commit_notice_owed(pr);
  if (!learnable) return;
  const std::optional<Term> match_term = log_.term_at(pr.match_index);
  pr.commit_sent = *learnable;
  send(Message{.type = MessageType::kAppendRequest,
               .to = peer,
               .term = term_,
               .prev_log_index = pr.match_index,
               .prev_log_term = *match_term,
               .commit = commit_,
               .epoch = pr.epoch,
               .catch_up_floor = catch_up_floor_for(peer, pr)});
}

void Node::send_heartbeats() {
  auto& leader = std::get<LeaderRole>(role_);
  leader.reads.sent(ticks_);
  for (auto& [peer, progress] : leader.progress) {
    const Index commit =
        KEEL_CANARY(kNoFollowerCommitClamp) ? commit_ : std::min(progress.match_index, commit_);
    if (!progress.leaving_at.is_zero() && progress.told_round == 0 &&
        commit >= progress.leaving_at) {
      progress.told_round = leader.reads.round();  // this heartbeat tells it
    }
    send(Message{.type = MessageType::kHeartbeatRequest,
                 .to = peer,
                 .term = term_,
                 .commit = commit,
                 .read_round = leader.reads.round(),
                 .removed = !progress.leaving_at.is_zero(),
                 .epoch = progress.epoch,
                 .catch_up_floor = catch_up_floor_for(peer, progress)});
  }
}

void Node::send(Message message) {
  message.from = id();
  // A leader's appends, heartbeats and TimeoutNow promise nothing about its
  // own log, so they go out at once, in parallel with its own write (thesis
  // §10.2.1) -- but only once its term is durable. A leader elected in the
  // very step that raised its term (a single voter wins alone) would
  // otherwise send entries of a term it could forget: crash, restart in the
  // old term, win the same term again and propose something else at the
  // same index, and a follower that kept the first entry (its index and
  // term "match") applies it while the leader applies the second. Every
  // other message (votes, acknowledgements, vote requests after a term
  // change) may only leave once the state it reflects is durable.
  const bool early_ack = message.type == MessageType::kAppendResponse && !message.reject &&
                         KEEL_CANARY(kAckBeforePersist);
  const bool early_vote = message.type == MessageType::kVoteResponse && !message.reject &&
                          KEEL_CANARY(kVoteBeforePersist);
  const bool term_durable = durable_term_ == term_ || KEEL_CANARY(kSendBeforeTermDurable);
  if ((is_leader() && is_leader_message(message.type) && term_durable) || early_ack || early_vote) {
    messages_.push_back(std::move(message));
  } else {
    messages_after_persist_.push_back(std::move(message));
  }
}

bool Node::has_ready() const {
  return needs_flush_ || !messages_.empty() || !messages_after_persist_.empty() ||
         hard_state() != last_hard_state_ || pending_install_.has_value() ||
         unstable_from_ <= log_.last_index() || applied_handed_ < apply_limit() ||
         !read_states_.empty() || !events_.empty();
}

Ready Node::ready() {
  flush_replication();
  needs_flush_ = false;
  Ready ready;
  if (hard_state() != last_hard_state_) {
    ready.hard_state = hard_state();
    last_hard_state_ = hard_state();
  }
  ready.snapshot = std::move(pending_install_);
  pending_install_.reset();
  if (unstable_from_ <= log_.last_index()) {
    ready.entries = log_.slice(unstable_from_, log_.last_index(), SIZE_MAX, UINT64_MAX);
    unstable_from_ = log_.last_index().next();
  }
  const Index apply_to = apply_limit();
  if (applied_handed_ < apply_to) {
    ready.committed_entries =
        log_.slice(applied_handed_.next(), apply_to, config_.max_apply_batch, UINT64_MAX);
    applied_handed_ = ready.committed_entries.back().index;
  }
  ready.messages = std::move(messages_);
  ready.messages_after_persist = std::move(messages_after_persist_);
  ready.read_states = std::move(read_states_);
  ready.events = std::move(events_);
  messages_.clear();
  messages_after_persist_.clear();
  read_states_.clear();
  events_.clear();
  return ready;
}

Index Node::apply_limit() const {
  // Only entries that are committed and durable here are applied, and at
  // most max_apply_batch of them may be handed out and not
  // yet applied: a slow state machine holds back the hand-out instead of
  // letting the shell's apply queue grow without bound.
  const Index pipeline_end = applied_ + config_.max_apply_batch;
  return std::min({commit_, persisted_, pipeline_end});
}

// --- acknowledgements --------------------------------------------------------

void Node::on_persisted(Index index, Term term) {
  // Stale acknowledgements: the entry at `index` may have been replaced (by
  // a newer leader's entries) after the shell began writing the old one.
  // Only an entry that is still the same (same index and term) counts.
  if (index >= unstable_from_ || index <= persisted_ || !log_.matches(index, term)) return;
  persisted_ = index;
  if (is_leader()) {
    maybe_commit();
    needs_flush_ = true;
  }
  check_invariants();
}

void Node::on_term_persisted(Term term) { durable_term_ = std::max(durable_term_, term); }

void Node::on_applied(Index index) {
  KEEL_CHECK("only handed-out entries are applied", index <= applied_handed_);
  if (index <= applied_) return;
  applied_ = index;
  maybe_announce_ready();
  check_invariants();
}

// --- invariants ----------------------------------------------------------------

void Node::check_invariants() {
  KEEL_CHECK("term never decreases", term_ >= checked_term_);
  KEEL_CHECK("commit never decreases", commit_ >= checked_commit_);
  KEEL_CHECK("applied <= committed", applied_ <= commit_);
  KEEL_CHECK("committed <= last index", commit_ <= log_.last_index());
  KEEL_CHECK("persisted <= last index", persisted_ <= log_.last_index());
  KEEL_CHECK("the log base is committed", log_.base_index() <= commit_);
  KEEL_CHECK("a durable snapshot covers the log base", log_.base_index() <= snapshot_index_);
  KEEL_CHECK("a vote is only cast by a voter's term", vote_.is_zero() || !term_.is_zero());
  KEEL_CHECK("the durable term is never ahead of the term", durable_term_ <= term_);
  if (const auto* leader = std::get_if<LeaderRole>(&role_)) {
    KEEL_CHECK("a leader's term-start entry is of its term",
               leader->term_start_index <= log_.base_index() ||
                   log_.term_at(leader->term_start_index) == term_);
    KEEL_CHECK("leader knows itself as leader", leader_ == id());
  }
  checked_term_ = term_;
  checked_commit_ = commit_;
}

}  // namespace keel::core
