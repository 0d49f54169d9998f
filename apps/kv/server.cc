// apps/kv/server.cc — see server.h: the server's life (data directory,
// stores, Raft, transport, joining, signals, shutdown). The HTTP API is in
// http_api.cc.
#include "kv/server.h"

#include <signal.h>
#include <sys/socket.h>

#include <csignal>
#include <filesystem>
#include <sstream>

#include "keel/file_stores.h"
#include "kv/client.h"
#include "kv/data_dir.h"
#include "kv/server_impl.h"

namespace keel::kv {

using json = nlohmann::json;
using std::chrono::milliseconds;

LogLevel log_level(const std::string& name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

void block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

namespace {

// keel::Config names its fields; the user wrote flags.
Status config_error(const Status& s) {
  static const std::pair<const char*, const char*> kFlags[] = {
      {"heartbeat_interval", "--heartbeat-ms"},
      {"election_timeout", "--election-timeout-ms"},
      {"snapshot_threshold_entries", "--snapshot-threshold"},
      {"snapshot_interval", "--snapshot-interval-ms"},
      {"trailing_log_entries", "--trailing-log-entries"},
      {"max_command_bytes", "--max-body-bytes"},
  };
  std::string message = s.message();
  for (const auto& [field, flag] : kFlags) {
    if (message.find(field) != std::string::npos) {
      return Status::invalid_argument(std::string(flag) + ": " + message);
    }
  }
  return s;
}

}  // namespace

Status KvServer::Impl::start() {
  if (Status s = validate(options_); !s) return s;
  if (!options_.http_members.empty()) {
    auto members = parse_member_list(options_.http_members, "http-members");
    if (!members.is_ok()) return members.status();
    http_members_ = std::move(*members);
  }
  if (!options_.in_memory) {
    if (Status s = check_data_dir(options_.data_dir, options_.cluster_id, options_.id); !s) {
      return s;
    }
  }
  // The HTTP port first: a port in use stops the server before it joins
  // anything.
  const HostPort http = parse_host_port(options_.http_addr, "http-addr").value();
  http_.new_task_queue = [n = options_.http_threads] { return new httplib::ThreadPool(n); };
  http_.set_payload_max_length(options_.max_body_bytes);
  // httplib's default socket options set SO_REUSEPORT, with which a second
  // keel-kv bound the same --http-addr without an error (and the kernel
  // then split connections between the two). SO_REUSEADDR alone still lets
  // a restarted server bind over connections in TIME_WAIT, but refuses a
  // port another socket listens on.
  http_.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  if (!http_.bind_to_port(http.host, http.port)) {
    return Status::unavailable("--http-addr " + options_.http_addr +
                               ": cannot listen (address in use or not local)");
  }
  if (Status s = open_raft(); !s) return s;
  if (!options_.in_memory) {
    if (Status s = record_identity(options_.data_dir, options_.cluster_id, options_.id); !s) {
      return s;
    }
  }
  // An idle keep-alive connection holds a worker until this timeout, and
  // a stopping server waits for its workers: short, so SIGTERM is quick.
  http_.set_keep_alive_timeout(1);
  install_routes();
  http_thread_ = std::thread([this] { http_.listen_after_bind(); });
  logger_->log(
      LogLevel::kInfo, "keel-kv serving",
      {{"server", options_.id}, {"raft", options_.raft_addr}, {"http", options_.http_addr}});
  if (!options_.join.empty()) join_thread_ = std::thread([this] { join_cluster(); });
  return Status();
}

Status KvServer::Impl::open_raft() {
  RaftDependencies deps;
  deps.config.id = ServerId{options_.id};
  deps.config.heartbeat_interval = milliseconds(options_.heartbeat_ms);
  deps.config.election_timeout = milliseconds(options_.election_timeout_ms);
  deps.config.lease_timeout = std::min<milliseconds>(
      milliseconds(500),
      milliseconds((options_.election_timeout_ms -
                    std::min(options_.election_timeout_ms, 2 * options_.heartbeat_ms)) *
                   10 / 11));
  if (deps.config.lease_timeout < deps.config.heartbeat_interval) {
    deps.config.lease_timeout = milliseconds(0);  // too tight for leases: linearizable only
  }
  deps.config.snapshot_threshold_entries = options_.snapshot_threshold;
  deps.config.snapshot_interval = milliseconds(options_.snapshot_interval_ms);
  deps.config.trailing_log_entries = options_.trailing_log_entries;
  // A command holds a key and a value, each bounded before it is proposed.
  deps.config.max_command_bytes = options_.max_body_bytes + options_.max_key_bytes + 64;
  if (Status s = deps.config.validate(); !s) return config_error(s);
  deps.fsm = fsm_;
  deps.logger = logger_;
  deps.metrics = metrics_;
  if (options_.in_memory) {
    deps.log_store = std::make_shared<MemoryLogStore>();
    deps.stable_store = std::make_shared<MemoryStableStore>();
    deps.snapshot_store = std::make_shared<MemorySnapshotStore>();
  } else {
    const std::filesystem::path dir(options_.data_dir);
    auto wal = WalLogStore::open((dir / "wal").string());
    if (!wal.is_ok()) return wal.status();
    auto stable = FileStableStore::open((dir / "stable").string());
    if (!stable.is_ok()) return stable.status();
    auto snapshots = FileSnapshotStore::open((dir / "snapshots").string(), {});
    if (!snapshots.is_ok()) return snapshots.status();
    deps.log_store = *wal;
    deps.stable_store = *stable;
    deps.snapshot_store = *snapshots;
  }
  // The Raft port before the bootstrap: a server that cannot listen leaves
  // its data directory without a cluster. (Bootstrapped first, a start
  // refused for a --raft-addr in use kept that address in the configuration
  // for good: the retry on a free port ignored its new --members.)
  if (Status s = open_transport(deps.config); !s) return s;
  if (Status s = bootstrap_if_new(*deps.log_store, *deps.stable_store); !s) return s;
  deps.transport = transport_;
  env_ = make_thread_env();
  advertiser_ = env_->make_executor("kv-advertise");
  deps.env = env_;
  deps.observers.push_back([this](const Observation& o) { on_observation(o); });
  auto raft = Raft::open(std::move(deps));
  std::lock_guard lock(raft_mutex_);
  raft_published_ = true;  // observers may use raft_ from now on (or see it null)
  raft_cv_.notify_all();
  if (!raft.is_ok()) return raft.status();
  raft_ = std::move(*raft);
  return Status();
}

Status KvServer::Impl::open_transport(const Config& config) {
  TcpTransportOptions transport;
  transport.id = ServerId{options_.id};
  transport.cluster_id = options_.cluster_id;
  transport.listen_address = options_.raft_addr;
  transport.outgoing_address = options_.outgoing_addr;
  if (transport.outgoing_address.empty()) {
    // Connections come from this server's own address, so that peers (and
    // packet filters) can tell the servers apart on one host.
    const std::string host = parse_host_port(options_.raft_addr, "raft-addr")->host;
    if (host != "0.0.0.0" && host != "::" && host != "localhost") {
      transport.outgoing_address = host;
    }
  }
  if (!options_.tls_cert.empty()) {
    transport.tls = TcpTlsOptions{options_.tls_cert, options_.tls_key, options_.tls_ca,
                                  options_.tls_verify_names};
  }
  transport.logger = logger_;
  transport.metrics = metrics_;
  transport.max_frame_bytes = std::max<std::size_t>(
      transport.max_frame_bytes, 2 * config.max_append_bytes + 2 * options_.max_body_bytes);
  auto made = make_tcp_transport(transport);
  if (!made.is_ok()) {
    return Status::with_code(made.status().code(),
                             "--raft-addr " + options_.raft_addr + ": " + made.status().message());
  }
  transport_ = *made;
  return Status();
}

// A data directory without a cluster gets one from --members; with
// neither --members nor --join there is nothing to start from.
Status KvServer::Impl::bootstrap_if_new(LogStore& log_store, StableStore& stable_store) {
  auto existing = has_existing_state(log_store, stable_store);
  if (!existing.is_ok()) return existing.status();
  if (*existing) {
    if (!options_.members.empty() || !options_.join.empty()) {
      logger_->log(LogLevel::kInfo, "data directory holds a cluster: --members and --join ignored",
                   {{"server", options_.id}});
    }
    return Status();
  }
  if (options_.members.empty()) {
    if (!options_.join.empty()) return Status();
    return Status::invalid_argument(
        "the data directory holds no cluster: give --members to bootstrap a new one or --join "
        "to join a running one");
  }
  Configuration configuration;
  auto members = parse_member_list(options_.members, "members");
  if (!members.is_ok()) return members.status();
  for (const auto& [id, address] : *members) {
    configuration.servers.push_back(Server{ServerId{id}, address, Suffrage::kVoter});
  }
  if (Status s = bootstrap_cluster(log_store, stable_store, configuration); !s) return s;
  logger_->log(LogLevel::kInfo, "bootstrapped a new cluster",
               {{"server", options_.id}, {"members", options_.members}});
  return Status();
}

void KvServer::Impl::on_observation(const Observation& o) {
  switch (o.kind) {
    case Observation::Kind::kStateChanged:
    case Observation::Kind::kLeaderChanged:
      // Blocking reads answer at once when leadership moves: their client
      // asks again, wherever the leader now is.
      fsm_->release_waiters();
      break;
    case Observation::Kind::kLeaderReady:
      advertiser_->post([this] {
        // Observations begin inside Raft::open, before raft_ is set.
        std::unique_lock lock(raft_mutex_);
        raft_cv_.wait(lock, [&] { return raft_published_; });
        const bool open = raft_ != nullptr;
        lock.unlock();
        if (open) advertise_http_addresses();
      });
      break;
    case Observation::Kind::kRemoved:
      removed_ = true;
      break;
    default:
      break;
  }
}

// A ready leader makes sure the state machine knows where every server it
// knows of answers HTTP (its own --http-addr, --http-members), so that
// followers can redirect writes to whoever leads.
void KvServer::Impl::advertise_http_addresses() {
  std::map<std::uint64_t, std::string> wanted = http_members_;
  wanted[options_.id] = options_.http_addr;
  for (const auto& [id, address] : wanted) {
    if (stopping_) return;
    if (fsm_->http_address(id) == address) continue;
    auto r = raft_->apply(encode_set_http_address(id, address), request_timeout_).get();
    if (!r.is_ok()) {
      logger_->log(LogLevel::kWarn, "could not record an HTTP address",
                   {{"server", options_.id}, {"peer", id}, {"error", r.status().to_string()}});
      return;
    }
  }
}

// A new server asks the cluster (any --join address; followers redirect to
// the leader) to add it as a voter, until that succeeds or it stops.
void KvServer::Impl::join_cluster() {
  std::vector<std::string> endpoints;
  std::stringstream in(options_.join);
  for (std::string e; std::getline(in, e, ',');) endpoints.push_back(e);
  const json body = {{"id", options_.id},
                     {"raft_address", options_.raft_addr},
                     {"http_address", options_.http_addr},
                     {"suffrage", "voter"}};
  std::size_t attempt = 0;
  std::string endpoint = endpoints.front();
  while (!stopping_) {
    httplib::Client client("http://" + endpoint);
    client.set_connection_timeout(std::chrono::seconds(2));
    client.set_read_timeout(milliseconds(options_.join_timeout_ms + 5000));
    {
      std::lock_guard lock(join_mutex_);
      if (stopping_) return;
      join_client_ = &client;
    }
    auto res = client.Post("/v1/cluster/members", body.dump(), "application/json");
    {
      std::lock_guard lock(join_mutex_);
      join_client_ = nullptr;
    }
    if (res && res->status == 200) {
      logger_->log(LogLevel::kInfo, "joined the cluster",
                   {{"server", options_.id}, {"via", endpoint}});
      return;
    }
    std::string why = res ? res->body : httplib::to_string(res.error());
    if (res && res->status == 307 && res->has_header("Location")) {
      endpoint = split_location(res->get_header_value("Location")).first;
      continue;
    }
    logger_->log(LogLevel::kWarn, "join attempt failed; trying again",
                 {{"server", options_.id}, {"via", endpoint}, {"error", why}});
    endpoint = endpoints[++attempt % endpoints.size()];
    for (int i = 0; i < 10 && !stopping_; ++i) std::this_thread::sleep_for(milliseconds(100));
  }
}

int KvServer::Impl::run_until_signalled() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  const timespec poll{0, 200'000'000};
  int exit_code = 0;
  while (true) {
    const int signal = sigtimedwait(&set, nullptr, &poll);
    if (signal == SIGTERM || signal == SIGINT) {
      logger_->log(LogLevel::kInfo, "stopping on a signal",
                   {{"server", options_.id}, {"signal", signal == SIGTERM ? "TERM" : "INT"}});
      break;
    }
    if (raft_->state() == RaftState::kShutdown) {
      const RaftStats s = raft_->stats();
      if (removed_ || s.removed) {
        logger_->log(LogLevel::kInfo, "removed from the cluster; stopping",
                     {{"server", options_.id}});
      } else {
        logger_->log(LogLevel::kError, "the Raft server stopped itself",
                     {{"server", options_.id}, {"failure", s.failure.to_string()}});
        exit_code = 1;
      }
      break;
    }
  }
  stop();
  return exit_code;
}

void KvServer::Impl::stop() {
  if (stopped_) return;
  stopped_ = true;
  // New requests get 503 shutting_down; blocking reads answer now; the Raft
  // resolves every request in flight (Shutdown, or OutcomeUnknown where a
  // write may still commit); then the HTTP server stops.
  stopping_ = true;
  fsm_->close_waiters();
  {
    std::lock_guard lock(join_mutex_);
    if (join_client_ != nullptr) join_client_->stop();
  }
  // Requests under way get a moment (--shutdown-drain-ms) to finish with a
  // definite answer; then the Raft stops and fails what is left (Shutdown,
  // or OutcomeUnknown where a write may still commit).
  const auto drain_until =
      std::chrono::steady_clock::now() + milliseconds(options_.shutdown_drain_ms);
  while (in_flight_ > 0 && std::chrono::steady_clock::now() < drain_until) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  if (raft_) raft_->shutdown();
  if (advertiser_) advertiser_->stop();
  if (join_thread_.joinable()) join_thread_.join();
  http_.stop();
  if (http_thread_.joinable()) http_thread_.join();
  raft_.reset();
  transport_.reset();
}

KvServer::KvServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KvServer::~KvServer() = default;

Result<std::unique_ptr<KvServer>> KvServer::start(const ServeOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  if (Status s = impl->start(); !s) return s;
  return std::unique_ptr<KvServer>(new KvServer(std::move(impl)));
}

int KvServer::run_until_signalled() { return impl_->run_until_signalled(); }

}  // namespace keel::kv
