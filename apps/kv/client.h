// apps/kv/client.h — the keel-kv client: talks to a cluster over HTTP,
// finds the leader, follows redirects, retries what is safe to retry.
//
// Reads, and writes that certainly did not happen (the server could not be
// reached, no leader yet, a redirect), are retried on the next endpoint until
// the deadline. A write whose outcome is unknown (the connection broke after
// the request was sent, or the server answered outcome_unknown) is never
// retried: the client says so and exits 3.
//
// Thread safety: a KvClient is used by one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace keel::kv {

struct ClientResponse {
  // What happened, as the client knows it.
  enum class Kind {
    kAnswered,  // the server answered (status, body, headers below)
    kFailed,    // certainly not done (no server reachable before the deadline)
    kUnknown,   // a write that may or may not have taken effect
  };
  Kind kind = Kind::kFailed;
  int status = 0;
  std::string body;
  std::string version_header;  // Keel-Version
  std::string error_code;      // the JSON error's "code", or a client-side one
  std::string message;
};

class KvClient {
 public:
  KvClient(std::vector<std::string> endpoints, std::chrono::milliseconds timeout);

  // `idempotent`: safe to send again after a broken connection (GET).
  ClientResponse request(const std::string& method, const std::string& path,
                         const std::string& body, bool idempotent);

 private:
  std::vector<std::string> endpoints_;
  std::chrono::milliseconds timeout_;
  std::size_t next_ = 0;
};

// A redirect's Location, "http://host:port/path?q" -> {"host:port",
// "/path?q"} (the target is "/" when there is none).
std::pair<std::string, std::string> split_location(const std::string& location);

// Percent-encodes a key for a URL path (unreserved bytes stay).
std::string url_encode(const std::string& text);

}  // namespace keel::kv
