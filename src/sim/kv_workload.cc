#include "sim/kv_workload.h"

#include <algorithm>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "core/crc32c.h"
#include "core/prng.h"
#include "sim/kv_fsm.h"

namespace keel::sim {

using namespace std::chrono_literals;

namespace {

enum class Action : std::uint8_t {
  kPut,
  kCas,
  kDelete,
  kGetLinearizable,
  kGetLease,
  kGetStale,
  kRestore,
  kSnapshot,  // Raft::snapshot on a random server: not in the history
  kTransfer,  // Raft::transfer_leadership from the believed leader: not in the history
};

const char* to_string(Action action) {
  switch (action) {
    case Action::kPut:
      return "put";
    case Action::kCas:
      return "cas";
    case Action::kDelete:
      return "delete";
    case Action::kGetLinearizable:
      return "get(linearizable)";
    case Action::kGetLease:
      return "get(lease)";
    case Action::kGetStale:
      return "get(stale)";
    case Action::kRestore:
      return "restore";
    case Action::kSnapshot:
      return "snapshot";
    case Action::kTransfer:
      return "transfer";
  }
  return "?";
}

bool is_write(Action action) {
  return action == Action::kPut || action == Action::kCas || action == Action::kDelete;
}

// Whether a failed write certainly had no effect (see the header).
bool certainly_not_applied(StatusCode code) {
  switch (code) {
    case StatusCode::kNotLeader:
    case StatusCode::kShutdown:
    case StatusCode::kResourceExhausted:
    case StatusCode::kInvalidArgument:
    case StatusCode::kLeadershipTransferInProgress:
    case StatusCode::kConfigurationChangeInProgress:
      return true;
    default:
      return false;
  }
}

struct Client {
  std::uint64_t id = 0;
  std::shared_ptr<Executor> executor;
  core::Prng prng{0};
  // Whether to restore, snapshot or transfer instead of the drawn operation
  // (what a restore writes is drawn from `prng`).
  core::Prng admin_prng{0};
  ServerId target;
  std::uint64_t sequence = 0;    // for unique values
  std::uint64_t generation = 0;  // of the operation in flight; late answers are ignored
  bool in_flight = false;
  bool done = false;
  Operation pending;
  std::vector<Operation> pending_restore;  // kRestore: one write per key
  Action action = Action::kPut;
  std::map<std::string, std::string> last_seen;  // per key: a value to compare against
  std::function<void(bool)> on_done;             // probe writes only
};

// The answer to an operation, carried from the then() callback to the client.
struct Answer {
  Status status;
  std::optional<std::string> value;  // gets: what the FSM held
  std::string response;              // writes: the FSM's response
};

}  // namespace

struct KvWorkload::State : std::enable_shared_from_this<KvWorkload::State> {
  SimCluster& cluster;
  KvWorkloadOptions options;
  std::vector<std::unique_ptr<Client>> clients;
  std::unique_ptr<Client> prober;
  History history;
  std::uint64_t issued = 0;
  bool stopped = false;
  std::map<Outcome, std::uint64_t> outcomes;

  State(SimCluster& c, const KvWorkloadOptions& o) : cluster(c), options(o) {}

  Duration think(Client& client) {
    const auto span = static_cast<std::uint64_t>((options.think_high - options.think_low).count());
    return options.think_low +
           Duration(static_cast<Duration::rep>(client.prng.uniform(0, span + 1)));
  }

  void schedule_next(Client& client) {
    if (stopped || issued >= options.ops) {
      client.done = true;
      return;
    }
    client.executor->post_after(think(client), [weak = weak_from_this(), &client] {
      if (auto self = weak.lock()) self->issue(client);
    });
  }

  Action pick_action(Client& client) const {
    const unsigned weights[] = {options.put_weight,       options.cas_weight,
                                options.delete_weight,    options.linearizable_get_weight,
                                options.lease_get_weight, options.stale_get_weight};
    unsigned total = 0;
    for (unsigned w : weights) total += w;
    std::uint64_t draw = client.prng.uniform(0, total == 0 ? 1 : total);
    for (std::size_t i = 0; i < 6; ++i) {
      if (draw < weights[i]) return static_cast<Action>(i);
      draw -= weights[i];
    }
    return Action::kGetLinearizable;
  }

  ServerId next_server(ServerId after) const {
    const std::vector<ServerId>& ids = cluster.ids();
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] == after) return ids[(i + 1) % ids.size()];
    }
    return ids.front();
  }

  void issue(Client& client) {
    if (stopped || issued >= options.ops) {
      client.done = true;
      return;
    }
    ++issued;
    Action action = pick_action(client);
    const std::string key = "k" + std::to_string(client.prng.uniform(0, options.keys));
    ServerId target = client.target;
    if (options.restore_fraction > 0 || options.snapshot_fraction > 0 ||
        options.transfer_fraction > 0) {
      const double draw = static_cast<double>(client.admin_prng.next() >> 11) * 0x1.0p-53;
      if (draw < options.restore_fraction) {
        action = Action::kRestore;
      } else if (draw < options.restore_fraction + options.snapshot_fraction) {
        action = Action::kSnapshot;
        target = cluster.ids()[client.admin_prng.uniform(0, cluster.ids().size())];
      } else if (draw <
                 options.restore_fraction + options.snapshot_fraction + options.transfer_fraction) {
        action = Action::kTransfer;
      }
    }
    if (action == Action::kGetLinearizable &&
        static_cast<double>(client.prng.next() >> 11) * 0x1.0p-53 <
            options.follower_read_fraction) {
      target = cluster.ids()[client.prng.uniform(0, cluster.ids().size())];
    }
    send(client, action, key, target);
  }

  // The operation as the history records it, and the command it sends (empty
  // for gets).
  Operation describe_call(Client& client, Action action, const std::string& key,
                          std::string& command) {
    Operation op;
    op.client = client.id;
    op.key = key;
    op.call_time = cluster.now().count();
    switch (action) {
      case Action::kPut:
        op.kind = OpKind::kPut;
        op.value = unique_value(client);
        command = KvFsm::put_command(key, op.value);
        break;
      case Action::kCas: {
        op.kind = OpKind::kCas;
        op.value = unique_value(client);
        auto seen = client.last_seen.find(key);
        op.expected = seen == client.last_seen.end() ? "none" : seen->second;
        command = KvFsm::cas_command(key, op.expected, op.value);
        break;
      }
      case Action::kDelete:
        op.kind = OpKind::kDelete;
        command = KvFsm::delete_command(key);
        break;
      case Action::kGetLinearizable:
      case Action::kGetLease:
      case Action::kGetStale:
        op.kind = OpKind::kGet;
        op.checked = action == Action::kGetLinearizable ||
                     (action == Action::kGetLease && options.lease_reads_checked);
        break;
      case Action::kRestore:  // see describe_restore
      case Action::kSnapshot:
      case Action::kTransfer:
        break;
    }
    return op;
  }

  // A restore of a fresh state: every key absent or holding a new unique
  // value, long enough that the state spans several restore entries. The
  // history sees one write per key (a put, or a delete for an absent key),
  // all with the restore's times: a restore is a write of the whole state.
  std::string describe_restore(Client& client) {
    std::map<std::string, std::string> state;
    client.pending_restore.clear();
    for (std::size_t k = 0; k < options.keys; ++k) {
      Operation op;
      op.client = client.id;
      op.key = "k" + std::to_string(k);
      op.call_time = cluster.now().count();
      if (client.prng.uniform(0, 4) == 0) {
        op.kind = OpKind::kDelete;
      } else {
        op.kind = OpKind::kPut;
        op.value = unique_value(client) + "r" + std::string(options.restore_value_padding, 'x');
        state[op.key] = op.value;
      }
      client.pending_restore.push_back(std::move(op));
    }
    return KvFsm::encode_state(state);
  }

  // Runs `step(state)` on the client's executor, if the operation
  // `generation` is still the one in flight.
  template <typename Step>
  void on_client(Client& client, std::uint64_t generation, Step step, Duration delay = {}) {
    auto task = [weak = weak_from_this(), &client, generation, step = std::move(step)]() mutable {
      auto self = weak.lock();
      if (self && client.in_flight && client.generation == generation) step(*self);
    };
    if (delay > Duration::zero()) {
      client.executor->post_after(delay, std::move(task));
    } else {
      client.executor->post(std::move(task));
    }
  }

  void send(Client& client, Action action, const std::string& key, ServerId target) {
    std::string command;
    Operation op = describe_call(client, action, key, command);
    if (action == Action::kRestore) command = describe_restore(client);
    const std::uint64_t generation = ++client.generation;
    client.in_flight = true;
    client.pending = op;
    client.action = action;
    cluster.trace().event(cluster.now(), "c" + std::to_string(client.id) + " call " +
                                             to_string(action) + " " + key + " " + op.value +
                                             " -> n" + std::to_string(target.value));
    // The client's own deadline: a crashed server never answers.
    const Duration give_up = options.op_timeout + options.op_timeout / 2 + 100ms;
    on_client(
        client, generation,
        [&client](State& self) {
          self.finish(client, Outcome::kUnknown, Answer{Status::timeout("no answer"), {}, {}});
        },
        give_up);
    Raft* raft = cluster.raft(target);
    if (raft == nullptr) {  // connection refused: nothing was sent
      client.target = next_server(target);
      on_client(client, generation, [&client](State& self) {
        self.finish(client, Outcome::kFailed, Answer{Status::shutdown(), {}, {}});
      });
      return;
    }
    client.target = target;
    // The answer is handled on the client's executor, never inside the
    // server's task that resolved the future.
    auto deliver = [weak = weak_from_this(), &client, generation](Answer answer) {
      if (auto self = weak.lock()) {
        self->on_client(client, generation, [&client, answer = std::move(answer)](State& state) {
          state.answered(client, answer);
        });
      }
    };
    if (action == Action::kSnapshot) {
      raft->snapshot(options.op_timeout).then([deliver](const Result<SnapshotMeta>& result) {
        deliver(Answer{result.status(), std::nullopt, {}});
      });
      return;
    }
    if (action == Action::kTransfer) {
      // Half the time to a named server (any, even a learner or itself:
      // those are refused), else to the most caught-up voter.
      std::optional<ServerId> to;
      if (client.admin_prng.uniform(0, 2) == 0) {
        to = cluster.ids()[client.admin_prng.uniform(0, cluster.ids().size())];
      }
      raft->transfer_leadership(to, options.op_timeout)
          .then([deliver](const Result<LeaderInfo>& result) {
            deliver(Answer{result.status(), std::nullopt, {}});
          });
      return;
    }
    if (action == Action::kRestore) {
      SnapshotMeta meta;
      meta.size_bytes = command.size();
      meta.crc32c = core::crc32c(command);
      raft->restore(meta, std::make_unique<StringSnapshotReader>(std::move(command)),
                    options.op_timeout)
          .then([deliver](const Result<Index>& result) {
            deliver(Answer{result.status(), std::nullopt, {}});
          });
      return;
    }
    if (is_write(action)) {
      raft->apply(command, options.op_timeout).then([deliver](const Result<ApplyResult>& result) {
        deliver(Answer{result.status(), std::nullopt, result.is_ok() ? result->response : ""});
      });
      return;
    }
    const Consistency consistency = action == Action::kGetLinearizable ? Consistency::kLinearizable
                                    : action == Action::kGetLease      ? Consistency::kLease
                                                                       : Consistency::kStale;
    std::shared_ptr<KvFsm> fsm = std::dynamic_pointer_cast<KvFsm>(cluster.fsm(target));
    // Read freshness (sim/safety_checker.h): everything committed anywhere
    // before this call must be in what the read returns.
    const bool fresh = consistency == Consistency::kLinearizable ||
                       (consistency == Consistency::kLease && options.lease_reads_checked);
    const SafetyChecker::ReadCall call = cluster.checker().read_call(target, cluster.now());
    raft->read(consistency, options.op_timeout)
        .then([deliver, fsm, key, fresh, call, consistency, target,
               &cluster = cluster](const Result<Index>& result) {
          // Read the FSM now, in the callback: the read is valid at this
          // instant, and only the applier (another task) changes the FSM.
          std::optional<std::string> value;
          if (result.is_ok() && fsm) value = fsm->get(key);
          if (result.is_ok() && fresh) {
            cluster.checker().on_read_served(target, consistency, call, *result, cluster.now());
          }
          deliver(Answer{result.status(), std::move(value), {}});
        });
  }

  std::string unique_value(Client& client) {
    return "c" + std::to_string(client.id) + "v" + std::to_string(++client.sequence);
  }

  void answered(Client& client, Answer answer) {
    if (answer.status.is_ok()) {
      finish(client, Outcome::kOk, std::move(answer));
      return;
    }
    const StatusCode code = answer.status.code();
    const ServerId hint = answer.status.leader_hint();
    client.target = code == StatusCode::kNotLeader && !hint.is_zero() && hint != client.target
                        ? hint
                        : next_server(client.target);
    // A restore is refused whole before anything enters the log, except
    // when it answers OutcomeUnknown (raft.h): every other failure is
    // definite, and the checker holds keel to that.
    const bool failed = client.action == Action::kRestore
                            ? code != StatusCode::kOutcomeUnknown
                            : !is_write(client.action) || certainly_not_applied(code);
    finish(client, failed ? Outcome::kFailed : Outcome::kUnknown, std::move(answer));
  }

  void finish_restore(Client& client, Outcome outcome, const Answer& answer) {
    for (Operation& op : client.pending_restore) {
      op.outcome = outcome;
      op.return_time = cluster.now().count();
      if (outcome == Outcome::kOk) {
        if (op.kind == OpKind::kPut) {
          client.last_seen[op.key] = op.value;
        } else {
          client.last_seen.erase(op.key);
        }
      }
      history.record(std::move(op));
    }
    client.pending_restore.clear();
    ++outcomes[outcome];
    std::string line = "c" + std::to_string(client.id) + " return " + sim::to_string(outcome);
    if (outcome != Outcome::kOk) line += " (" + answer.status.to_string() + ")";
    cluster.trace().event(cluster.now(), line);
  }

  void finish(Client& client, Outcome outcome, Answer answer) {
    client.in_flight = false;
    if (client.action == Action::kRestore) {
      finish_restore(client, outcome, answer);
      schedule_next(client);
      return;
    }
    if (client.action == Action::kSnapshot || client.action == Action::kTransfer) {
      // Not a key-value operation: the history does not hold it.
      std::string line = "c" + std::to_string(client.id) + " " + to_string(client.action) + " " +
                         (answer.status.is_ok() ? "done" : answer.status.to_string());
      cluster.trace().event(cluster.now(), line);
      schedule_next(client);
      return;
    }
    Operation op = std::move(client.pending);
    op.outcome = outcome;
    op.return_time = cluster.now().count();
    if (outcome == Outcome::kOk) {
      if (op.kind == OpKind::kGet) {
        op.output = answer.value;
        if (answer.value) client.last_seen[op.key] = *answer.value;
      } else if (op.kind == OpKind::kCas) {
        op.cas_succeeded = answer.response == "swapped";
        if (op.cas_succeeded) client.last_seen[op.key] = op.value;
      } else if (op.kind == OpKind::kPut) {
        client.last_seen[op.key] = op.value;
      }
    }
    if (outcome != Outcome::kOk && op.kind == OpKind::kGet) op.output.reset();
    ++outcomes[outcome];
    std::string line = "c" + std::to_string(client.id) + " return " + sim::to_string(outcome);
    if (outcome != Outcome::kOk) line += " (" + answer.status.to_string() + ")";
    if (op.kind == OpKind::kGet && op.output) line += " value=" + *op.output;
    if (op.kind == OpKind::kCas && outcome == Outcome::kOk) {
      line += op.cas_succeeded ? " swapped" : " unchanged";
    }
    cluster.trace().event(cluster.now(), line);
    history.record(std::move(op));
    if (client.on_done) {
      auto done = std::move(client.on_done);
      client.on_done = nullptr;
      done(outcome == Outcome::kOk);
      return;
    }
    schedule_next(client);
  }
};

KvWorkload::KvWorkload(SimCluster& cluster, const KvWorkloadOptions& options)
    : state_(std::make_shared<State>(cluster, options)) {
  const std::vector<ServerId>& ids = cluster.ids();
  for (std::size_t i = 1; i <= state_->options.clients + 1; ++i) {
    auto client = std::make_unique<Client>();
    client->id = i;
    client->executor = cluster.make_executor("client-" + std::to_string(i));
    client->prng = core::Prng(cluster.seed_for("client", i));
    client->admin_prng = core::Prng(cluster.seed_for("client-restores", i));
    client->target = ids[client->prng.uniform(0, ids.size())];
    if (i <= state_->options.clients) {
      state_->clients.push_back(std::move(client));
    } else {
      state_->prober = std::move(client);  // the last id: probe writes
    }
  }
}

KvWorkload::~KvWorkload() {
  for (auto& client : state_->clients) client->executor->stop();
  state_->prober->executor->stop();
}

void KvWorkload::start() {
  for (auto& client : state_->clients) state_->schedule_next(*client);
}

void KvWorkload::stop_issuing() { state_->stopped = true; }

bool KvWorkload::finished() const {
  if (state_->prober->in_flight) return false;
  for (const auto& client : state_->clients) {
    if (client->in_flight) return false;
    if (!client->done && !state_->stopped && state_->issued < state_->options.ops) return false;
  }
  return true;
}

void KvWorkload::probe_write(std::function<void(bool ok)> done) {
  Client& prober = *state_->prober;
  if (prober.in_flight) return;
  prober.on_done = std::move(done);
  SimCluster& cluster = state_->cluster;
  std::optional<ServerId> leader = cluster.ready_leader();
  const ServerId target = leader ? *leader : prober.target;
  const std::string key = "k" + std::to_string(prober.prng.uniform(0, state_->options.keys));
  state_->send(prober, Action::kPut, key, target);
}

std::uint64_t KvWorkload::issued() const { return state_->issued; }

const History& KvWorkload::history() const { return state_->history; }

std::string KvWorkload::summary() const {
  return "ok=" + std::to_string(state_->outcomes[Outcome::kOk]) +
         " failed=" + std::to_string(state_->outcomes[Outcome::kFailed]) +
         " unknown=" + std::to_string(state_->outcomes[Outcome::kUnknown]);
}

}  // namespace keel::sim
