// apps/kv/http_api.cc — keel-kv's HTTP API (docs/kv.md): the routes,
// their handlers, and how keel's outcomes map onto HTTP answers.
#include <cctype>
#include <charconv>

#include "kv/cluster_page.h"
#include "kv/server_impl.h"

namespace keel::kv {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// How long /readyz gives a follower to show it has applied what the leader
// has committed.
constexpr std::chrono::milliseconds kReadyCheckTimeout{1000};

std::string suffrage_name(Suffrage s) { return s == Suffrage::kVoter ? "voter" : "learner"; }

void send_error(httplib::Response& res, int status, const std::string& code,
                const std::string& message, json extra = json::object()) {
  extra["error"] = message;
  extra["code"] = code;
  res.status = status;
  res.set_content(extra.dump() + "\n", "application/json");
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump() + "\n", "application/json");
}

// Parses a non-negative decimal; nullopt if it is not one.
std::optional<std::uint64_t> parse_u64(const std::string& text) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<std::string> KvServer::Impl::leader_http_address(ServerId leader) const {
  if (leader == kNoServer) return std::nullopt;
  if (auto address = fsm_->http_address(leader.value)) return address;
  auto it = http_members_.find(leader.value);
  if (it != http_members_.end()) return it->second;
  return std::nullopt;
}

void KvServer::Impl::redirect_to_leader(const httplib::Request& req, httplib::Response& res,
                                        const Status& s) {
  ServerId leader = s.leader_hint();
  if (leader == kNoServer) leader = raft_->leader().id;
  if (leader == ServerId{options_.id}) leader = kNoServer;  // stale: we just lost it
  auto address = leader_http_address(leader);
  if (!address) {
    send_error(res, 503, "no_leader",
               leader == kNoServer ? "no leader is known; try again shortly"
                                   : "the leader's HTTP address is not known yet",
               {{"leader", leader.value}});
    return;
  }
  res.set_header("Location", "http://" + *address + req.target);
  send_error(res, 307, "not_leader", "not the leader; the leader is at " + *address,
             {{"leader", leader.value}, {"leader_http_address", *address}});
}

void KvServer::Impl::send_status(const httplib::Request& req, httplib::Response& res,
                                 const Status& s) {
  switch (s.code()) {
    case StatusCode::kNotLeader:
      redirect_to_leader(req, res, s);
      return;
    case StatusCode::kOutcomeUnknown:
      send_error(
          res, 504, "outcome_unknown",
          "the outcome is unknown: the request may or may not take effect (" + s.message() + ")");
      return;
    case StatusCode::kTimeout:
      send_error(res, 503, "timeout", "timed out before anything was done: " + s.message());
      return;
    case StatusCode::kShutdown:
      send_error(res, 503, "shutting_down", "this server is shutting down");
      return;
    case StatusCode::kLeadershipTransferInProgress:
      send_error(res, 503, "transfer_in_progress", "a leadership transfer is under way");
      return;
    case StatusCode::kResourceExhausted:
      send_error(res, 429, "overloaded", s.message());
      return;
    case StatusCode::kInvalidArgument:
      send_error(res, 400, "bad_request", s.message());
      return;
    case StatusCode::kConfigurationChangeInProgress:
      send_error(res, 409, "change_in_progress", s.message());
      return;
    case StatusCode::kAbortedByRestore:
      send_error(res, 409, "aborted_by_restore", s.message());
      return;
    case StatusCode::kUnavailable:
      send_error(res, 503, "unavailable", s.message());
      return;
    default:
      send_error(res, 500, "internal", s.to_string());
      return;
  }
}

bool KvServer::Impl::check_key(const std::string& key, httplib::Response& res) const {
  if (key.empty()) {
    send_error(res, 400, "bad_key", "the key is empty");
    return false;
  }
  if (key.size() > options_.max_key_bytes) {
    send_error(res, 400, "key_too_large",
               "the key has " + std::to_string(key.size()) + " bytes; at most " +
                   std::to_string(options_.max_key_bytes) + " (--max-key-bytes)");
    return false;
  }
  return true;
}

// nullopt: answered with an error; a value: the cas condition (maybe none).
std::optional<std::optional<std::uint64_t>> KvServer::Impl::cas_param(
    const httplib::Request& req, httplib::Response& res) const {
  if (!req.has_param("cas")) return std::optional<std::uint64_t>();
  auto version = parse_u64(req.get_param_value("cas"));
  if (!version) {
    send_error(res, 400, "bad_request", "cas must be a version: a non-negative integer");
    return std::nullopt;
  }
  return std::optional<std::uint64_t>(*version);
}

std::optional<Consistency> KvServer::Impl::consistency_param(const httplib::Request& req,
                                                             httplib::Response& res) const {
  const std::string c =
      req.has_param("consistency") ? req.get_param_value("consistency") : "linearizable";
  if (c == "linearizable") return Consistency::kLinearizable;
  if (c == "lease") return Consistency::kLease;
  if (c == "stale") return Consistency::kStale;
  send_error(res, 400, "bad_request", "consistency must be linearizable, lease or stale");
  return std::nullopt;
}

void KvServer::Impl::answer_write(const httplib::Request& req, httplib::Response& res,
                                  const Result<ApplyResult>& r) {
  if (!r.is_ok()) return send_status(req, res, r.status());
  auto outcome = decode_outcome(r->response);
  if (!outcome.is_ok() || outcome->code == ApplyOutcome::Code::kBadCommand) {
    return send_error(res, 500, "internal", "the state machine refused the command");
  }
  if (outcome->code == ApplyOutcome::Code::kCasFailed) {
    return send_error(res, 409, "cas_failed",
                      "the key's version is " + std::to_string(outcome->version),
                      {{"version", outcome->version}});
  }
  send_json(res, 200, {{"version", outcome->version}});
}

void KvServer::Impl::handle_put(const httplib::Request& req, httplib::Response& res) {
  const std::string key = req.matches[1];
  if (!check_key(key, res)) return;
  if (req.body.size() > options_.max_value_bytes) {
    return send_error(res, 413, "value_too_large",
                      "the value has " + std::to_string(req.body.size()) + " bytes; at most " +
                          std::to_string(options_.max_value_bytes) + " (--max-value-bytes)");
  }
  auto cas = cas_param(req, res);
  if (!cas) return;
  answer_write(req, res, raft_->apply(encode_put(key, req.body, *cas), request_timeout_).get());
}

void KvServer::Impl::handle_delete(const httplib::Request& req, httplib::Response& res) {
  const std::string key = req.matches[1];
  if (!check_key(key, res)) return;
  auto cas = cas_param(req, res);
  if (!cas) return;
  answer_write(req, res, raft_->apply(encode_delete(key, *cas), request_timeout_).get());
}

void KvServer::Impl::handle_get(const httplib::Request& req, httplib::Response& res) {
  const std::string key = req.matches[1];
  if (!check_key(key, res)) return;
  auto consistency = consistency_param(req, res);
  if (!consistency) return;
  std::optional<std::uint64_t> wait_index;
  milliseconds wait(0);
  if (req.has_param("wait_index")) {
    wait_index = parse_u64(req.get_param_value("wait_index"));
    if (!wait_index) return send_error(res, 400, "bad_request", "wait_index must be an integer");
    wait = milliseconds(std::min<std::uint64_t>(options_.max_wait_ms, 300'000));
    if (req.has_param("wait")) {
      auto asked = parse_wait_duration(req.get_param_value("wait"));
      if (!asked) return send_error(res, 400, "bad_request", "wait must look like 10s or 500ms");
      if (asked->count() > static_cast<std::int64_t>(options_.max_wait_ms)) {
        return send_error(
            res, 400, "bad_request",
            "wait is above --max-wait-ms (" + std::to_string(options_.max_wait_ms) + " ms)");
      }
      wait = *asked;
    }
  }
  const auto deadline = Clock::now() + wait;
  Consistency asked = *consistency;
#ifdef KEEL_CANARIES
  if (options_.canary_stale_reads) asked = Consistency::kStale;
#endif
  auto read = raft_->read(asked, request_timeout_).get();
  if (!read.is_ok()) return send_status(req, res, read.status());
  std::optional<KeyValue> kv = fsm_->get(key);
  if (wait_index && (kv ? kv->version : 0) <= *wait_index) {
    if (!fsm_->try_begin_wait(options_.max_waiters)) {
      return send_error(res, 429, "too_many_waiters",
                        "--max-waiters blocking reads are waiting already");
    }
    fsm_->wait_for_change(key, kv ? kv->version : 0, deadline);
    fsm_->end_wait();
    kv = fsm_->get(key);
  }
  res.set_header("Keel-Index", std::to_string(read->value));
  res.set_header("Keel-Version", std::to_string(kv ? kv->version : 0));
  if (!kv) return send_error(res, 404, "not_found", "no such key");
  res.status = 200;
  res.set_content(kv->value, "application/octet-stream");
}

void KvServer::Impl::handle_list(const httplib::Request& req, httplib::Response& res) {
  auto consistency = consistency_param(req, res);
  if (!consistency) return;
  std::uint64_t limit = std::min<std::uint64_t>(100, options_.max_list_limit);
  if (req.has_param("limit")) {
    auto asked = parse_u64(req.get_param_value("limit"));
    if (!asked || *asked == 0 || *asked > options_.max_list_limit) {
      return send_error(res, 400, "bad_request",
                        "limit must be in [1, " + std::to_string(options_.max_list_limit) +
                            "] (--max-list-limit)");
    }
    limit = *asked;
  }
  auto read = raft_->read(*consistency, request_timeout_).get();
  if (!read.is_ok()) return send_status(req, res, read.status());
  ListPage page = fsm_->list(req.get_param_value("prefix"), req.get_param_value("after"), limit);
  json keys = json::array();
  for (const auto& [key, version] : page.keys) keys.push_back({{"key", key}, {"version", version}});
  json body = {{"keys", keys}, {"index", read->value}};
  body["next_after"] = page.next_after ? json(*page.next_after) : json(nullptr);
  send_json(res, 200, body);
}

json KvServer::Impl::configuration_json() const {
  const ConfigurationState state = raft_->configuration();
  auto servers = [this](const Configuration& c) {
    json out = json::array();
    for (const Server& s : c.servers) {
      auto http = leader_http_address(s.id);
      out.push_back({{"id", s.id.value},
                     {"raft_address", s.address},
                     {"http_address", http ? json(*http) : json(nullptr)},
                     {"suffrage", suffrage_name(s.suffrage)}});
    }
    return out;
  };
  return {{"committed_index", state.committed_index.value},
          {"servers", servers(state.committed)},
          {"latest_index", state.latest_index.value},
          {"latest_servers", servers(state.latest)},
          {"joint", state.latest.joint()}};
}

void KvServer::Impl::handle_status(httplib::Response& res) {
  const RaftStats s = raft_->stats();
  auto leader_http = leader_http_address(s.leader.id);
  send_json(res, 200,
            {{"id", options_.id},
             {"state", to_string(s.state)},
             {"term", s.term.value},
             {"ready", s.ready_term.value != 0},
             {"leader",
              {{"id", s.leader.id.value},
               {"raft_address", s.leader.address},
               {"http_address", leader_http ? json(*leader_http) : json(nullptr)}}},
             {"commit_index", s.commit_index.value},
             {"applied_index", s.applied_index.value},
             {"last_index", s.last_index.value},
             {"first_index", s.first_index.value},
             {"snapshot_index", s.last_snapshot.index.value},
             {"keys", fsm_->key_count()},
             {"removed", s.removed},
             {"failure", s.failure.is_ok() ? json(nullptr) : json(s.failure.to_string())},
             {"configuration", configuration_json()},
             {"replication", replication_json(s)}});
}

// How far behind each other member is, as this leader sees it: its last
// index minus the member's match index. keel's public API offers that only
// through the metrics sink (keel_replication_lag_entries, set once a
// heartbeat interval), so it is read back from there. Empty on a follower.
json KvServer::Impl::replication_json(const RaftStats& s) const {
  json out = json::array();
  if (s.state != RaftState::kLeader) return out;
  for (const Server& server : raft_->configuration().latest.members()) {
    if (server.id == ServerId{options_.id}) continue;
    const std::optional<double> lag = metrics_->gauge(
        "keel_replication_lag_entries", {{"server", options_.id}, {"peer", server.id.value}});
    out.push_back({{"id", server.id.value},
                   {"lag_entries", lag ? json(static_cast<std::uint64_t>(*lag)) : json(nullptr)}});
  }
  return out;
}

void KvServer::Impl::handle_members_get(httplib::Response& res) {
  send_json(res, 200, configuration_json());
}

void KvServer::Impl::handle_members_post(const httplib::Request& req, httplib::Response& res) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("id") ||
      !body["id"].is_number_unsigned() || body["id"].get<std::uint64_t>() == 0 ||
      !body.contains("raft_address") || !body["raft_address"].is_string()) {
    return send_error(res, 400, "bad_request",
                      "expected {\"id\": N > 0, \"raft_address\": \"host:port\", "
                      "\"http_address\": \"host:port\", \"suffrage\": \"voter\"|\"learner\"}");
  }
  const std::uint64_t id = body["id"].get<std::uint64_t>();
  const std::string raft_address = body["raft_address"].get<std::string>();
  if (body.contains("suffrage") && !body["suffrage"].is_string()) {
    return send_error(res, 400, "bad_request", "suffrage must be \"voter\" or \"learner\"");
  }
  const std::string suffrage = body.value("suffrage", std::string("voter"));
  std::string http_address;
  if (body.contains("http_address")) {
    if (!body["http_address"].is_string()) {
      return send_error(res, 400, "bad_request", "http_address must be a string");
    }
    http_address = body["http_address"].get<std::string>();
    if (!parse_host_port(http_address, "http_address").is_ok()) {
      return send_error(res, 400, "bad_request", "http_address must be host:port");
    }
  }
  if (!parse_host_port(raft_address, "raft_address").is_ok()) {
    return send_error(res, 400, "bad_request", "raft_address must be host:port");
  }
  if (suffrage != "voter" && suffrage != "learner") {
    return send_error(res, 400, "bad_request", "suffrage must be voter or learner");
  }
  if (raft_->state() != RaftState::kLeader) return redirect_to_leader(req, res, Status());
  const Duration timeout = milliseconds(options_.join_timeout_ms);
  auto r = suffrage == "voter"
               ? raft_->add_voter(ServerId{id}, raft_address, Index{0}, timeout).get()
               : raft_->add_learner(ServerId{id}, raft_address, Index{0}, timeout).get();
  if (!r.is_ok()) return answer_change_failure(req, res, r.status(), id, suffrage == "voter");
  if (!http_address.empty() && fsm_->http_address(id) != http_address) {
    auto recorded = raft_->apply(encode_set_http_address(id, http_address), request_timeout_).get();
    if (!recorded.is_ok()) {
      logger_->log(LogLevel::kWarn, "could not record a new server's HTTP address",
                   {{"server", options_.id}, {"peer", id}});
    }
  }
  send_json(res, 200, {{"index", r->value}});
}

void KvServer::Impl::answer_change_failure(const httplib::Request& req, httplib::Response& res,
                                           const Status& s, std::uint64_t id, bool adding) {
  // add_voter adds a learner first and promotes it once it has caught up:
  // a timeout or a lost leadership in between leaves the learner in.
  const bool partial = adding &&
                       (s.code() == StatusCode::kTimeout || s.code() == StatusCode::kNotLeader) &&
                       raft_->configuration().latest.contains(ServerId{id});
  if (!partial) return send_status(req, res, s);
  send_error(res, 504, "outcome_unknown",
             "server " + std::to_string(id) +
                 " was added as a learner but not promoted to a "
                 "voter (" +
                 s.to_string() + "); ask again to promote it, or remove it");
}

void KvServer::Impl::handle_members_delete(const httplib::Request& req, httplib::Response& res) {
  auto id = parse_u64(req.matches[1]);
  if (!id || *id == 0) return send_error(res, 400, "bad_request", "a server id is an integer > 0");
  if (raft_->state() != RaftState::kLeader) return redirect_to_leader(req, res, Status());
  auto r =
      raft_->remove_server(ServerId{*id}, Index{0}, milliseconds(options_.join_timeout_ms)).get();
  if (!r.is_ok()) return send_status(req, res, r.status());
  send_json(res, 200, {{"index", r->value}});
}

void KvServer::Impl::handle_transfer(const httplib::Request& req, httplib::Response& res) {
  std::optional<ServerId> target;
  if (!req.body.empty()) {
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object() ||
        (body.contains("id") && !body["id"].is_number_unsigned())) {
      return send_error(res, 400, "bad_request", "expected {} or {\"id\": N}");
    }
    if (body.contains("id")) target = ServerId{body["id"].get<std::uint64_t>()};
  }
  if (raft_->state() != RaftState::kLeader) return redirect_to_leader(req, res, Status());
  auto r = raft_->transfer_leadership(target, request_timeout_).get();
  if (!r.is_ok() && r.status().code() == StatusCode::kTimeout) {
    // The target was told to campaign, or may still be: keel says a
    // TimeoutNow already sent may let it win later.
    return send_error(res, 504, "outcome_unknown",
                      "the transfer did not complete in time; leadership may still move (" +
                          r.status().message() + ")");
  }
  if (!r.is_ok()) return send_status(req, res, r.status());
  auto http = leader_http_address(r->id);
  send_json(res, 200,
            {{"leader",
              {{"id", r->id.value},
               {"raft_address", r->address},
               {"http_address", http ? json(*http) : json(nullptr)}}}});
}

void KvServer::Impl::handle_snapshot(const httplib::Request& req, httplib::Response& res) {
  auto r = raft_->snapshot(std::max<Duration>(request_timeout_, std::chrono::seconds(60))).get();
  if (!r.is_ok()) return send_status(req, res, r.status());
  send_json(res, 200,
            {{"id", r->id},
             {"index", r->index.value},
             {"term", r->term.value},
             {"size_bytes", r->size_bytes}});
}

void KvServer::Impl::handle_readyz(httplib::Response& res) {
  const RaftStats s = raft_->stats();
  if (stopping_) return send_error(res, 503, "shutting_down", "shutting down");
  if (s.state == RaftState::kLeader) {
    if (s.ready_term.value != 0) return send_json(res, 200, {{"ready", true}, {"role", "leader"}});
    return send_error(res, 503, "not_ready", "leader, but its term-start entry is not applied yet");
  }
  if (s.leader.id == kNoServer) return send_error(res, 503, "no_leader", "no leader is known");
  const Duration since_contact = env_->now() - raft_->last_contact();
  if (since_contact > 2 * milliseconds(options_.election_timeout_ms)) {
    return send_error(res, 503, "no_leader", "no contact with the leader lately");
  }
  // Caught up: the leader's commit index (asked for, as a linearizable
  // read does) is applied here within a moment. A follower's own commit
  // index says nothing about entries it has not received.
  auto read = raft_->read(Consistency::kLinearizable, kReadyCheckTimeout).get();
  if (!read.is_ok()) {
    return send_error(res, 503, "catching_up",
                      "not caught up with the leader: " + read.status().to_string());
  }
  send_json(res, 200,
            {{"ready", true}, {"role", to_string(s.state)}, {"applied_index", read->value}});
}

void KvServer::Impl::install_routes() {
  auto timed = [this](std::string route, auto handler) {
    return [this, route = std::move(route), handler](const httplib::Request& req,
                                                     httplib::Response& res) {
      const auto begin = Clock::now();
      struct Counted {  // also when the handler throws
        std::atomic<int>& count;
        explicit Counted(std::atomic<int>& c) : count(c) { ++count; }
        ~Counted() { --count; }
      } counted(in_flight_);
      (this->*handler)(req, res);
      metrics_->add("keel_kv_requests_total", 1,
                    {{"route", route.c_str()}, {"status", static_cast<std::uint64_t>(res.status)}});
      metrics_->observe("keel_kv_request_duration_seconds",
                        std::chrono::duration<double>(Clock::now() - begin).count(),
                        {{"route", route.c_str()}});
    };
  };
  // The cluster page (cluster_page.h) asks every member for its status and
  // sends each button's request to the member it acts on: another origin
  // (host and port) than the page's. These routes' answers may be read by
  // any origin's scripts; keys and values stay unreadable to them. (Any
  // page can already send such a POST without a preflight, whatever the
  // answer says: keel-kv has no authentication, docs/kv.md.)
  auto readable_anywhere = [](auto handler) {
    return [handler](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Access-Control-Allow-Origin", "*");
      handler(req, res);
    };
  };
  using I = Impl;
  http_.set_pre_routing_handler([this](const httplib::Request&, httplib::Response& res) {
    if (!stopping_) return httplib::Server::HandlerResponse::Unhandled;
    // Says nothing but that: the page may read it and show why.
    res.set_header("Access-Control-Allow-Origin", "*");
    send_error(res, 503, "shutting_down", "this server is shutting down");
    return httplib::Server::HandlerResponse::Handled;
  });
  http_.Put(R"(/v1/kv/(.+))", timed("put", &I::handle_put));
  http_.Delete(R"(/v1/kv/(.+))", timed("delete", &I::handle_delete));
  http_.Get(R"(/v1/kv/(.+))", timed("get", &I::handle_get));
  http_.Get("/v1/kv", timed("list", &I::handle_list));
  http_.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Content-Security-Policy", std::string(cluster_page_security_policy()));
    res.set_header("Cache-Control", "no-cache");
    res.set_content(std::string(cluster_page_html()), "text/html; charset=utf-8");
  });
  http_.Get("/v1/status",
            readable_anywhere(
                [this](const httplib::Request&, httplib::Response& res) { handle_status(res); }));
  http_.Get("/v1/cluster/members",
            [this](const httplib::Request&, httplib::Response& res) { handle_members_get(res); });
  http_.Post("/v1/cluster/members", timed("members", &I::handle_members_post));
  http_.Delete(R"(/v1/cluster/members/(\d+))", timed("members", &I::handle_members_delete));
  http_.Post("/v1/cluster/transfer-leadership",
             readable_anywhere(timed("transfer", &I::handle_transfer)));
  http_.Post("/v1/snapshot", readable_anywhere(timed("snapshot", &I::handle_snapshot)));
  http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_->render(), "text/plain; version=0.0.4");
  });
  http_.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"alive", true}});
  });
  http_.Get("/readyz",
            [this](const httplib::Request&, httplib::Response& res) { handle_readyz(res); });
  // httplib answers unknown paths (404) and bodies past the bound (413)
  // itself; they get JSON errors like every other answer.
  http_.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) return send_error(res, 404, "no_route", "no such endpoint");
    if (res.status == 413) {
      return send_error(res, 413, "body_too_large", "the request body is above --max-body-bytes");
    }
    send_error(res, res.status, "bad_request", "the request could not be handled");
  });
  http_.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        send_error(res, 500, "internal", "the request failed inside the server");
      });
}

}  // namespace keel::kv
