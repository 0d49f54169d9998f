// apps/kv/serve_options.h — what `keel-kv serve` is told: its flags (the
// same keys in an optional config file), checked before anything starts.
//
// Every bound keel-kv enforces on a request is here, named, with its
// default; docs/kv.md lists them.
//
// Thread safety: a value.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "keel/status.h"

namespace keel::kv {

struct ServeOptions {
  std::uint64_t id = 0;
  std::uint64_t cluster_id = 0;
  std::string data_dir;
  bool in_memory = false;
  std::string raft_addr;      // host:port peers dial (and this server listens on)
  std::string http_addr;      // host:port of the HTTP API
  std::string outgoing_addr;  // IP outgoing Raft connections bind to; default: raft_addr's host
  std::string members;        // "1=host:port,2=host:port": bootstrap a new cluster
  std::string http_members;   // "1=host:port,...": the HTTP addresses of those servers
  std::string join;           // "host:port,...": HTTP addresses of a running cluster to join
  std::string tls_cert;
  std::string tls_key;
  std::string tls_ca;
  bool tls_verify_names = false;
  std::string log_level = "info";

  // Raft timing and snapshots.
  std::uint64_t heartbeat_ms = 100;
  std::uint64_t election_timeout_ms = 1000;
  std::uint64_t snapshot_threshold = 8192;  // entries applied between snapshots
  std::uint64_t snapshot_interval_ms = 5000;
  std::uint64_t trailing_log_entries = 10240;

  // Request limits, enforced before anything is proposed.
  std::uint64_t max_key_bytes = 1024;
  std::uint64_t max_value_bytes = 1 << 20;
  // Whole request bodies (a value, a members request); larger: 413.
  std::uint64_t max_body_bytes = (1 << 20) + (64 << 10);
  std::uint64_t max_list_limit = 1000;      // keys one GET /v1/kv answers with
  std::uint64_t max_waiters = 64;           // blocking reads waiting at once
  std::uint64_t max_wait_ms = 300'000;      // the longest ?wait= a blocking read may ask
  std::uint64_t http_threads = 96;          // HTTP worker threads (> max_waiters)
  std::uint64_t request_timeout_ms = 5000;  // a write's or read's whole deadline
  std::uint64_t join_timeout_ms = 60'000;   // add_voter's deadline for a joining server
  // On SIGTERM, how long requests under way may go on before the Raft
  // stops (and fails what is left).
  std::uint64_t shutdown_drain_ms = 2000;
  std::uint64_t max_snapshot_bytes = 1ULL << 30;  // the largest state restore() reads
#ifdef KEEL_CANARIES
  // Canary builds only (-DKEEL_CANARIES=ON): serve every read from this
  // server's own state, as a stale read, whatever consistency was asked
  // for, so that the chaos runs can show that they catch stale reads.
  bool canary_stale_reads = false;
#endif
};

// Checks every field and their combinations; InvalidArgument with one line
// that names the flag when something is wrong.
Status validate(const ServeOptions& options);

// "1=host:port,2=host:port" -> {1: "host:port", 2: ...}; InvalidArgument
// naming `flag` if an item is malformed or an id repeats.
Result<std::map<std::uint64_t, std::string>> parse_member_list(const std::string& text,
                                                               const std::string& flag);

// A blocking read's wait, as the server's ?wait= and the client's --wait
// take it: "500ms", "10s", "2m", or plain seconds; nullopt if malformed.
std::optional<std::chrono::milliseconds> parse_wait_duration(const std::string& text);

// "host:port" -> host and port; InvalidArgument naming `flag` otherwise.
struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};
Result<HostPort> parse_host_port(const std::string& text, const std::string& flag);

}  // namespace keel::kv
