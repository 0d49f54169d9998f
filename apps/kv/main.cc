// apps/kv/main.cc — keel-kv: `keel-kv serve` runs a server (server.h); every
// other subcommand is the client (client.h). docs/kv.md documents both.
//
//   keel-kv serve --id 1 --cluster-id 7 --data-dir data/1 --raft-addr 127.0.0.1:7101
//       --http-addr 127.0.0.1:8101 --members 1=127.0.0.1:7101,2=...,3=...
//   keel-kv put greeting hello --endpoints 127.0.0.1:8101,127.0.0.1:8102
//   keel-kv get greeting --consistency stale
//
// Exit status: 0 success; 1 a definite failure (the error code is printed);
// 2 bad flags or a server that could not start; 3 a write whose outcome is
// unknown.
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "kv/client.h"
#include "kv/server.h"

namespace {

using keel::kv::ClientResponse;
using keel::kv::KvClient;
using keel::kv::ServeOptions;
using keel::kv::url_encode;

constexpr int kFailed = 1;
constexpr int kUsage = 2;
constexpr int kUnknown = 3;

void add_serve_flags(CLI::App& serve, ServeOptions& o) {
  serve.add_option("--config", "flags from a file: `name = value` lines (the command line wins)");
  serve.add_option("--id", o.id, "this server's id (> 0)")->required();
  serve
      .add_option("--cluster-id", o.cluster_id, "the cluster's id (> 0), the same on every server")
      ->required();
  serve.add_option("--data-dir", o.data_dir, "where the log, state and snapshots are kept");
  serve.add_flag("--in-memory", o.in_memory, "keep nothing on disk (experiments only)");
  serve.add_option("--raft-addr", o.raft_addr, "host:port for Raft traffic")->required();
  serve.add_option("--http-addr", o.http_addr, "host:port for the HTTP API")->required();
  serve.add_option("--outgoing-addr", o.outgoing_addr,
                   "IP to send Raft traffic from (default: --raft-addr's host)");
  serve.add_option("--members", o.members, "id=raft-host:port,... to bootstrap a new cluster");
  serve.add_option("--http-members", o.http_members, "id=http-host:port,... of those servers");
  serve.add_option("--join", o.join, "http-host:port,... of a running cluster to join");
  serve.add_option("--tls-cert", o.tls_cert, "PEM certificate for Raft traffic (mutual TLS)");
  serve.add_option("--tls-key", o.tls_key, "its PEM key");
  serve.add_option("--tls-ca", o.tls_ca, "PEM CA that signs every server's certificate");
  serve.add_flag("--tls-verify-names", o.tls_verify_names, "check certificate names too");
  serve.add_option("--log-level", o.log_level, "debug, info, warn or error")->capture_default_str();
  serve.add_option("--heartbeat-ms", o.heartbeat_ms)->capture_default_str();
  serve.add_option("--election-timeout-ms", o.election_timeout_ms)->capture_default_str();
  serve
      .add_option("--snapshot-threshold", o.snapshot_threshold, "entries applied between snapshots")
      ->capture_default_str();
  serve.add_option("--snapshot-interval-ms", o.snapshot_interval_ms)->capture_default_str();
  serve.add_option("--trailing-log-entries", o.trailing_log_entries)->capture_default_str();
  serve.add_option("--max-key-bytes", o.max_key_bytes)->capture_default_str();
  serve.add_option("--max-value-bytes", o.max_value_bytes)->capture_default_str();
  serve.add_option("--max-body-bytes", o.max_body_bytes)->capture_default_str();
  serve.add_option("--max-list-limit", o.max_list_limit)->capture_default_str();
  serve.add_option("--max-waiters", o.max_waiters)->capture_default_str();
  serve.add_option("--max-wait-ms", o.max_wait_ms)->capture_default_str();
  serve.add_option("--http-threads", o.http_threads)->capture_default_str();
  serve.add_option("--request-timeout-ms", o.request_timeout_ms)->capture_default_str();
  serve.add_option("--join-timeout-ms", o.join_timeout_ms)->capture_default_str();
  serve
      .add_option("--shutdown-drain-ms", o.shutdown_drain_ms,
                  "on SIGTERM, how long requests under way may finish")
      ->capture_default_str();
  serve.add_option("--max-snapshot-bytes", o.max_snapshot_bytes)->capture_default_str();
#ifdef KEEL_CANARIES
  serve.add_flag("--canary-stale-reads", o.canary_stale_reads,
                 "canary builds: every read is stale (the chaos runs must catch it)");
#endif
}

// `keel-kv serve --config FILE ...`: the file's `name = value` lines become
// `--name=value` flags placed before the command line's, for names the
// command line does not give (so the command line wins). `name = true`
// gives a flag without a value, `false` none. Blank lines and `#` comments
// are skipped; values may be quoted.
bool expand_config(std::vector<std::string>& args, std::string& error) {
  std::string path;
  std::set<std::string> given;
  for (std::size_t i = 2; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) continue;
    const std::string name = a.substr(2, a.find('=') - 2);
    given.insert(name);
    if (name == "config") {
      if (a.find('=') != std::string::npos) {
        path = a.substr(a.find('=') + 1);
      } else if (i + 1 < args.size()) {
        path = args[i + 1];
      }
    }
  }
  if (path.empty()) return true;
  std::ifstream in(path);
  if (!in) {
    error = "--config: cannot read " + path;
    return false;
  }
  std::vector<std::string> from_file;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    auto trim = [](std::string t) {
      const auto first = t.find_first_not_of(" \t\r");
      if (first == std::string::npos) return std::string();
      return t.substr(first, t.find_last_not_of(" \t\r") - first + 1);
    };
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) {
      error = "--config: " + path + ":" + std::to_string(number) + ": expected name = value";
      return false;
    }
    const std::string name = trim(line.substr(0, eq));
    std::string value = trim(line.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (name.empty() || name == "config") {
      error = "--config: " + path + ":" + std::to_string(number) + ": bad name";
      return false;
    }
    if (given.count(name) != 0) continue;
    if (value == "true") {
      from_file.push_back("--" + name);
    } else if (value != "false") {
      from_file.push_back("--" + name + "=" + value);
    }
  }
  args.insert(args.begin() + 2, from_file.begin(), from_file.end());
  return true;
}

// CLI11 2.1 reads "-1" into an unsigned option as 2^64 - 1 (strtoull
// wraps): `serve --id=-1` started server 18446744073709551615 and
// `put --cas=-1` asked for version 18446744073709551615. Every unsigned
// option, of every subcommand, must be plain digits.
void check_unsigned_options(CLI::App& app) {
  const CLI::Validator digits(
      [](std::string& text) -> std::string {
        if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) return "";
        return "'" + text + "' is not a non-negative integer";
      },
      "", "non-negative integer");
  for (CLI::Option* option : app.get_options()) {
    if (option->get_type_name() == "UINT") option->check(digits);
  }
  for (CLI::App* sub : app.get_subcommands({})) check_unsigned_options(*sub);
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Prints the outcome of a client call; returns the exit status.
int report(const ClientResponse& r, bool print_body) {
  if (r.kind == ClientResponse::Kind::kUnknown) {
    std::cerr << "keel-kv: outcome_unknown: " << r.message << "\n";
    return kUnknown;
  }
  if (r.kind == ClientResponse::Kind::kFailed) {
    std::cerr << "keel-kv: " << r.error_code << ": " << r.message << "\n";
    return kFailed;
  }
  if (r.status >= 300) {
    std::cerr << "keel-kv: "
              << (r.error_code.empty() ? "http_" + std::to_string(r.status) : r.error_code) << ": "
              << (r.message.empty() ? r.body : r.message) << "\n";
    return kFailed;
  }
  if (print_body) {
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    std::cout << (body.is_discarded() ? r.body : body.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("keel-kv: a replicated key-value store on keel (docs/kv.md)");
  app.require_subcommand(1);
  ServeOptions serve_options;
  CLI::App* serve = app.add_subcommand("serve", "run a server");
  add_serve_flags(*serve, serve_options);

  std::string endpoints = "127.0.0.1:8101,127.0.0.1:8102,127.0.0.1:8103";
  std::uint64_t timeout_ms = 10'000;
  auto client_flags = [&](CLI::App* sub) {
    sub->add_option("--endpoints", endpoints, "HTTP addresses of the servers")
        ->capture_default_str();
    sub->add_option("--timeout-ms", timeout_ms, "give up after this long")->capture_default_str();
    return sub;
  };
  std::string key, value, consistency = "linearizable", wait, prefix, after, address, http_address;
  std::optional<std::uint64_t> cas, wait_index, target;
  std::uint64_t version = 0, id = 0, limit = 100;
  bool learner = false;

  CLI::App* put = client_flags(app.add_subcommand("put", "write a key"));
  put->add_option("key", key)->required();
  put->add_option("value", value)->required();
  put->add_option("--cas", cas, "only if the key's version is this (0: only if absent)");
  CLI::App* get = client_flags(app.add_subcommand("get", "read a key"));
  get->add_option("key", key)->required();
  get->add_option("--consistency", consistency, "linearizable, lease or stale")
      ->capture_default_str();
  get->add_option("--wait-index", wait_index, "block until the key's version is above this");
  get->add_option("--wait", wait, "how long to block (10s, 500ms)");
  CLI::App* del = client_flags(app.add_subcommand("del", "delete a key"));
  del->add_option("key", key)->required();
  del->add_option("--cas", cas, "only if the key's version is this");
  CLI::App* cas_cmd =
      client_flags(app.add_subcommand("cas", "write a key if its version is VERSION"));
  cas_cmd->add_option("key", key)->required();
  cas_cmd->add_option("version", version)->required();
  cas_cmd->add_option("value", value)->required();
  CLI::App* list = client_flags(app.add_subcommand("list", "list keys under a prefix"));
  list->add_option("--prefix", prefix);
  list->add_option("--after", after);
  list->add_option("--limit", limit)->capture_default_str();
  list->add_option("--consistency", consistency)->capture_default_str();
  CLI::App* status = client_flags(app.add_subcommand("status", "one server's view of the cluster"));
  CLI::App* members = client_flags(app.add_subcommand("members", "list, add or remove servers"));
  CLI::App* members_add =
      client_flags(members->add_subcommand("add", "add a server (a voter by default)"));
  members_add->add_option("id", id)->required();
  members_add->add_option("raft-address", address)->required();
  members_add->add_option("--http-addr", http_address);
  members_add->add_flag("--learner", learner);
  CLI::App* members_remove = client_flags(members->add_subcommand("remove", "remove a server"));
  members_remove->add_option("id", id)->required();
  CLI::App* transfer =
      client_flags(app.add_subcommand("transfer-leader", "hand leadership to another voter"));
  transfer->add_option("--to", target, "the server to lead (default: the most caught up)");
  CLI::App* snapshot = client_flags(app.add_subcommand("snapshot", "take a snapshot now"));

  std::vector<std::string> args(argv, argv + argc);
  if (args.size() > 1 && args[1] == "serve") {
    std::string error;
    if (!expand_config(args, error)) {
      std::cerr << "keel-kv serve: " << error << "\n";
      return kUsage;
    }
  }
  check_unsigned_options(app);
  try {
    // CLI11 takes the arguments reversed, without the program's name.
    std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "keel-kv: " << e.what() << " (see --help)\n";
    return kUsage;
  }

  if (serve->parsed()) {
    keel::kv::block_stop_signals();
    auto server = keel::kv::KvServer::start(serve_options);
    if (!server.is_ok()) {
      std::cerr << "keel-kv serve: " << server.status().message() << "\n";
      return kUsage;
    }
    return (*server)->run_until_signalled();
  }

  std::vector<std::string> servers = split(endpoints);
  if (servers.empty()) {
    std::cerr << "keel-kv: --endpoints: no address given\n";
    return kUsage;
  }
  KvClient client(servers, std::chrono::milliseconds(timeout_ms));
  if (put->parsed() || cas_cmd->parsed()) {
    if (cas_cmd->parsed()) cas = version;
    std::string path = "/v1/kv/" + url_encode(key);
    if (cas) path += "?cas=" + std::to_string(*cas);
    ClientResponse r = client.request("PUT", path, value, false);
    return report(r, true);
  }
  if (get->parsed()) {
    std::string path = "/v1/kv/" + url_encode(key) + "?consistency=" + url_encode(consistency);
    // A blocking read may take its whole wait (the server's default: 5 min).
    std::chrono::milliseconds blocking(0);
    if (wait_index) {
      path += "&wait_index=" + std::to_string(*wait_index);
      blocking = std::chrono::minutes(5);
      if (!wait.empty()) {
        auto parsed = keel::kv::parse_wait_duration(wait);
        if (!parsed) {
          std::cerr << "keel-kv: --wait: '" << wait << "' is not like 500ms, 10s or 2m\n";
          return kUsage;
        }
        blocking = *parsed;
        path += "&wait=" + url_encode(wait);
      }
    }
    KvClient reader(servers, std::chrono::milliseconds(timeout_ms) + blocking);
    ClientResponse r = reader.request("GET", path, "", true);
    if (r.kind == ClientResponse::Kind::kAnswered && r.status == 200) {
      std::cout << r.body << "\n";
      std::cerr << "version " << r.version_header << "\n";
      return 0;
    }
    return report(r, false);
  }
  if (del->parsed()) {
    std::string path = "/v1/kv/" + url_encode(key);
    if (cas) path += "?cas=" + std::to_string(*cas);
    return report(client.request("DELETE", path, "", false), true);
  }
  if (list->parsed()) {
    std::string path = "/v1/kv?prefix=" + url_encode(prefix) + "&limit=" + std::to_string(limit) +
                       "&consistency=" + url_encode(consistency);
    if (!after.empty()) path += "&after=" + url_encode(after);
    return report(client.request("GET", path, "", true), true);
  }
  if (status->parsed()) return report(client.request("GET", "/v1/status", "", true), true);
  if (members_add->parsed()) {
    nlohmann::json body = {
        {"id", id}, {"raft_address", address}, {"suffrage", learner ? "learner" : "voter"}};
    if (!http_address.empty()) body["http_address"] = http_address;
    return report(client.request("POST", "/v1/cluster/members", body.dump(), false), true);
  }
  if (members_remove->parsed()) {
    return report(client.request("DELETE", "/v1/cluster/members/" + std::to_string(id), "", false),
                  true);
  }
  if (members->parsed())
    return report(client.request("GET", "/v1/cluster/members", "", true), true);
  if (transfer->parsed()) {
    nlohmann::json body = nlohmann::json::object();
    if (target) body["id"] = *target;
    return report(client.request("POST", "/v1/cluster/transfer-leadership", body.dump(), false),
                  true);
  }
  if (snapshot->parsed()) return report(client.request("POST", "/v1/snapshot", "", false), true);
  return kUsage;
}
