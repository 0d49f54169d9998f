// apps/kv/serve_options.cc — see serve_options.h.
#include "kv/serve_options.h"

#include <arpa/inet.h>

#include <charconv>
#include <sstream>
#include <vector>

namespace keel::kv {
namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, sep)) parts.push_back(part);
  if (!text.empty() && text.back() == sep) parts.emplace_back();  // getline drops it
  return parts;
}

Status bad(const std::string& flag, const std::string& what) {
  return Status::invalid_argument("--" + flag + ": " + what);
}

Status in_range(const std::string& flag, std::uint64_t value, std::uint64_t low,
                std::uint64_t high) {
  if (value >= low && value <= high) return Status();
  return bad(flag, std::to_string(value) + " is outside [" + std::to_string(low) + ", " +
                       std::to_string(high) + "]");
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_wait_duration(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + digits, n);
  if (digits == 0 || ec != std::errc() || end != text.data() + digits || n > 1'000'000'000) {
    return std::nullopt;
  }
  const std::string unit = text.substr(digits);
  if (unit == "ms") return std::chrono::milliseconds(n);
  if (unit == "s" || unit.empty()) return std::chrono::milliseconds(n * 1000);
  if (unit == "m") return std::chrono::milliseconds(n * 60'000);
  return std::nullopt;
}

Result<HostPort> parse_host_port(const std::string& text, const std::string& flag) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return bad(flag, "'" + text + "' is not host:port");
  }
  HostPort out;
  out.host = text.substr(0, colon);
  unsigned port = 0;
  const char* first = text.data() + colon + 1;
  const char* last = text.data() + text.size();
  auto [end, ec] = std::from_chars(first, last, port);
  if (ec != std::errc() || end != last || port > 65535) {
    return bad(flag, "'" + text + "' has no valid port");
  }
  out.port = static_cast<std::uint16_t>(port);
  return out;
}

Result<std::map<std::uint64_t, std::string>> parse_member_list(const std::string& text,
                                                               const std::string& flag) {
  std::map<std::uint64_t, std::string> members;
  for (const std::string& item : split(text, ',')) {
    const auto eq = item.find('=');
    std::uint64_t id = 0;
    if (eq == std::string::npos) return bad(flag, "'" + item + "' is not id=host:port");
    auto [end, ec] = std::from_chars(item.data(), item.data() + eq, id);
    if (ec != std::errc() || end != item.data() + eq || id == 0) {
      return bad(flag, "'" + item + "' does not start with a server id above 0");
    }
    Result<HostPort> address = parse_host_port(item.substr(eq + 1), flag);
    if (!address.is_ok()) return address.status();
    if (!members.emplace(id, item.substr(eq + 1)).second) {
      return bad(flag, "server " + std::to_string(id) + " appears twice");
    }
  }
  if (members.empty()) return bad(flag, "no servers listed");
  return members;
}

Status validate(const ServeOptions& o) {
  if (o.id == 0) return bad("id", "required, and above 0");
  if (o.cluster_id == 0) return bad("cluster-id", "required, and above 0");
  if (o.in_memory == !o.data_dir.empty()) {
    return bad("data-dir", o.in_memory ? "not with --in-memory" : "required (or --in-memory)");
  }
  if (o.raft_addr.empty()) return bad("raft-addr", "required");
  if (o.http_addr.empty()) return bad("http-addr", "required");
  for (const auto& [flag, value] :
       {std::pair{"raft-addr", &o.raft_addr}, std::pair{"http-addr", &o.http_addr}}) {
    Result<HostPort> hp = parse_host_port(*value, flag);
    if (!hp.is_ok()) return hp.status();
  }
  if (o.raft_addr == o.http_addr) return bad("http-addr", "the same address as --raft-addr");
  if (!o.outgoing_addr.empty()) {
    in6_addr ip{};
    if (inet_pton(AF_INET, o.outgoing_addr.c_str(), &ip) != 1 &&
        inet_pton(AF_INET6, o.outgoing_addr.c_str(), &ip) != 1) {
      return bad("outgoing-addr", "'" + o.outgoing_addr + "' is not an IP address");
    }
  }
  if (!o.members.empty() && !o.join.empty()) return bad("join", "not with --members");
  if (!o.members.empty()) {
    auto members = parse_member_list(o.members, "members");
    if (!members.is_ok()) return members.status();
    auto self = members->find(o.id);
    if (self == members->end()) return bad("members", "does not list this server's --id");
    if (self->second != o.raft_addr) {
      return bad("members", "lists server " + std::to_string(o.id) + " at " + self->second +
                                ", but --raft-addr is " + o.raft_addr);
    }
  }
  if (!o.http_members.empty()) {
    auto members = parse_member_list(o.http_members, "http-members");
    if (!members.is_ok()) return members.status();
  }
  if (!o.join.empty()) {
    for (const std::string& address : split(o.join, ',')) {
      Result<HostPort> hp = parse_host_port(address, "join");
      if (!hp.is_ok()) return hp.status();
    }
  }
  const bool any_tls = !o.tls_cert.empty() || !o.tls_key.empty() || !o.tls_ca.empty();
  if (any_tls && (o.tls_cert.empty() || o.tls_key.empty() || o.tls_ca.empty())) {
    return bad("tls-cert", "TLS needs all of --tls-cert, --tls-key and --tls-ca");
  }
  if (o.log_level != "debug" && o.log_level != "info" && o.log_level != "warn" &&
      o.log_level != "error") {
    return bad("log-level", "'" + o.log_level + "' is not debug, info, warn or error");
  }
  Status s;
  if (!(s = in_range("max-key-bytes", o.max_key_bytes, 1, 1 << 20))) return s;
  if (!(s = in_range("max-value-bytes", o.max_value_bytes, 0, 64ULL << 20))) return s;
  if (!(s = in_range("max-body-bytes", o.max_body_bytes, 1024, 128ULL << 20))) return s;
  if (o.max_body_bytes < o.max_value_bytes) {
    return bad("max-body-bytes", "below --max-value-bytes: such a value could never be sent");
  }
  if (!(s = in_range("max-list-limit", o.max_list_limit, 1, 1'000'000))) return s;
  if (!(s = in_range("max-waiters", o.max_waiters, 0, 9'999))) return s;
  if (!(s = in_range("max-wait-ms", o.max_wait_ms, 1, 3'600'000))) return s;
  if (!(s = in_range("http-threads", o.http_threads, 2, 10'000))) return s;
  if (o.http_threads <= o.max_waiters) {
    return bad("http-threads",
               "must exceed --max-waiters, or blocking reads could take every "
               "thread");
  }
  if (!(s = in_range("request-timeout-ms", o.request_timeout_ms, 1, 3'600'000))) return s;
  if (!(s = in_range("join-timeout-ms", o.join_timeout_ms, 1, 3'600'000))) return s;
  if (!(s = in_range("shutdown-drain-ms", o.shutdown_drain_ms, 0, 60'000))) return s;
  if (!(s = in_range("max-snapshot-bytes", o.max_snapshot_bytes, 1, 1ULL << 40))) return s;
  // Raft's own ranges (heartbeat, election timeout, snapshot settings) are
  // checked by keel::Config::validate when the server opens.
  return Status();
}

}  // namespace keel::kv
