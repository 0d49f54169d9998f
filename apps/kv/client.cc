// apps/kv/client.cc — see client.h.
#include "kv/client.h"

#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace keel::kv {

using Clock = std::chrono::steady_clock;

std::pair<std::string, std::string> split_location(const std::string& location) {
  std::string rest = location;
  const auto scheme = rest.find("://");
  if (scheme != std::string::npos) rest = rest.substr(scheme + 3);
  const auto slash = rest.find('/');
  if (slash == std::string::npos) return {rest, "/"};
  return {rest.substr(0, slash), rest.substr(slash)};
}

namespace {

// Errors that say the request certainly did nothing, so any request may be
// sent again (to this server later, or to another).
bool retryable_code(const std::string& code) {
  return code == "no_leader" || code == "shutting_down" || code == "transfer_in_progress" ||
         code == "timeout" || code == "unavailable" || code == "overloaded";
}

}  // namespace

std::string url_encode(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

KvClient::KvClient(std::vector<std::string> endpoints, std::chrono::milliseconds timeout)
    : endpoints_(std::move(endpoints)), timeout_(timeout) {}

ClientResponse KvClient::request(const std::string& method, const std::string& path,
                                 const std::string& body, bool idempotent) {
  const auto deadline = Clock::now() + timeout_;
  std::string endpoint = endpoints_[next_ % endpoints_.size()];
  std::string target = path;
  int redirects = 0;
  ClientResponse last;
  last.kind = ClientResponse::Kind::kFailed;
  last.error_code = "unreachable";
  last.message = "no server answered before the deadline";
  auto backoff = std::chrono::milliseconds(50);
  while (Clock::now() < deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    httplib::Client client("http://" + endpoint);
    client.set_connection_timeout(std::min(left, std::chrono::milliseconds(1000)));
    client.set_read_timeout(std::max(left, std::chrono::milliseconds(1)));
    client.set_write_timeout(std::max(left, std::chrono::milliseconds(1)));
    httplib::Result res = method == "GET"    ? client.Get(target)
                          : method == "PUT"  ? client.Put(target, body, "application/octet-stream")
                          : method == "POST" ? client.Post(target, body, "application/json")
                                             : client.Delete(target);
    if (!res) {
      const httplib::Error error = res.error();
      const bool not_sent =
          error == httplib::Error::Connection || error == httplib::Error::ConnectionTimeout;
      if (!not_sent && !idempotent) {
        last.kind = ClientResponse::Kind::kUnknown;
        last.error_code = "outcome_unknown";
        last.message = "the connection to " + endpoint + " failed after the request was sent (" +
                       httplib::to_string(error) + "): it may or may not have taken effect";
        return last;
      }
      last.message = endpoint + ": " + httplib::to_string(error);
      endpoint = endpoints_[++next_ % endpoints_.size()];
      target = path;
      if (next_ % endpoints_.size() == 0) {
        std::this_thread::sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
      }
      continue;
    }
    ClientResponse out;
    out.kind = ClientResponse::Kind::kAnswered;
    out.status = res->status;
    out.body = res->body;
    out.version_header = res->get_header_value("Keel-Version");
    if (res->status >= 300) {
      auto error = nlohmann::json::parse(res->body, nullptr, false);
      if (error.is_object()) {
        out.error_code = error.value("code", "");
        out.message = error.value("error", "");
      }
    }
    if (res->status == 307 && res->has_header("Location") && ++redirects <= 5) {
      std::tie(endpoint, target) = split_location(res->get_header_value("Location"));
      continue;
    }
    if (res->status == 504 && out.error_code == "outcome_unknown" && !idempotent) {
      out.kind = ClientResponse::Kind::kUnknown;
      return out;
    }
    // Reads are retried on any server error; writes only where the answer
    // says nothing was done.
    const bool retry =
        idempotent ? (res->status >= 500 || res->status == 429)
                   : ((res->status == 503 || res->status == 429) && retryable_code(out.error_code));
    if (retry) {
      last = out;
      endpoint = endpoints_[++next_ % endpoints_.size()];
      target = path;
      redirects = 0;
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
      continue;
    }
    return out;
  }
  return last;
}

}  // namespace keel::kv
