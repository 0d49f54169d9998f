// apps/kv/server_impl.h — the inside of KvServer (server.h), shared by its
// two halves: server.cc (stores, Raft, transport, joining, signals,
// shutdown) and http_api.cc (the routes and their handlers, docs/kv.md).
// Private to apps/kv.
//
// Thread safety: start() and run_until_signalled() on the main thread; the
// handlers on httplib's worker threads, concurrently; on_observation on the
// Raft's observer thread. What they share is const after start(), atomic,
// or guarded (raft_mutex_ until the Raft is published).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "keel/raft.h"
#include "keel/tcp_transport.h"
#include "kv/kv_state_machine.h"
#include "kv/prometheus_metrics.h"
#include "kv/serve_options.h"
#include "kv/server.h"

namespace keel::kv {

LogLevel log_level(const std::string& name);

class KvServer::Impl {
 public:
  explicit Impl(ServeOptions options)
      : options_(std::move(options)),
        logger_(make_stderr_logger(log_level(options_.log_level))),
        metrics_(std::make_shared<PrometheusMetrics>()),
        fsm_(std::make_shared<KvStateMachine>(options_.max_snapshot_bytes)),
        request_timeout_(std::chrono::milliseconds(options_.request_timeout_ms)) {}

  ~Impl() { stop(); }

  Status start();
  int run_until_signalled();

 private:
  Status open_raft();
  Status open_transport(const Config& config);
  Status bootstrap_if_new(LogStore& log_store, StableStore& stable_store);
  void install_routes();
  void on_observation(const Observation& o);
  void advertise_http_addresses();
  void join_cluster();
  void stop();

  // A follower's answer to a request only the leader can serve: a 307 to
  // the leader's HTTP address, or 503 no_leader.
  void redirect_to_leader(const httplib::Request& req, httplib::Response& res, const Status& s);
  // Maps a failed keel call onto the HTTP answer (docs/kv.md, "Errors").
  void send_status(const httplib::Request& req, httplib::Response& res, const Status& s);
  std::optional<std::string> leader_http_address(ServerId leader) const;
  bool check_key(const std::string& key, httplib::Response& res) const;
  std::optional<std::optional<std::uint64_t>> cas_param(const httplib::Request& req,
                                                        httplib::Response& res) const;
  std::optional<Consistency> consistency_param(const httplib::Request& req,
                                               httplib::Response& res) const;

  void handle_put(const httplib::Request& req, httplib::Response& res);
  void handle_delete(const httplib::Request& req, httplib::Response& res);
  void handle_get(const httplib::Request& req, httplib::Response& res);
  void handle_list(const httplib::Request& req, httplib::Response& res);
  void handle_status(httplib::Response& res);
  void handle_members_get(httplib::Response& res);
  void handle_members_post(const httplib::Request& req, httplib::Response& res);
  void handle_members_delete(const httplib::Request& req, httplib::Response& res);
  void handle_transfer(const httplib::Request& req, httplib::Response& res);
  void handle_snapshot(const httplib::Request& req, httplib::Response& res);
  void handle_readyz(httplib::Response& res);
  void answer_write(const httplib::Request& req, httplib::Response& res,
                    const Result<ApplyResult>& r);
  // A membership change that failed: if `id`'s place in the configuration
  // shows that part of it happened (a learner added, not promoted), 504
  // outcome_unknown; otherwise as send_status.
  void answer_change_failure(const httplib::Request& req, httplib::Response& res, const Status& s,
                             std::uint64_t id, bool adding);
  nlohmann::json configuration_json() const;
  nlohmann::json replication_json(const RaftStats& s) const;

  const ServeOptions options_;
  std::shared_ptr<Logger> logger_;
  std::shared_ptr<PrometheusMetrics> metrics_;
  std::shared_ptr<KvStateMachine> fsm_;
  const Duration request_timeout_;
  std::map<std::uint64_t, std::string> http_members_;  // from --http-members
  std::shared_ptr<Env> env_;
  std::shared_ptr<TcpTransport> transport_;
  // Set once Raft::open has returned (raft_published_), and reset only
  // after the Raft has stopped.
  std::unique_ptr<Raft> raft_;
  std::mutex raft_mutex_;
  std::condition_variable raft_cv_;
  bool raft_published_ = false;
  httplib::Server http_;
  std::thread http_thread_;
  std::thread join_thread_;
  // Records HTTP addresses after kLeaderReady, off the observer thread
  // (which must stay free to release blocking reads).
  std::shared_ptr<Executor> advertiser_;
  // The join request under way, so that stop() can cut it short.
  std::mutex join_mutex_;
  httplib::Client* join_client_ = nullptr;
  // Requests being handled; stop() lets them finish for a moment.
  std::atomic<int> in_flight_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> removed_{false};
  bool stopped_ = false;
};

}  // namespace keel::kv
