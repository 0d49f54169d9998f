// Validation of TcpTransportOptions (keel/tcp_transport.h), kept apart from
// the Asio code so that checking options costs no heavy headers.
#include <string>

#include "keel/tcp_transport.h"

namespace keel {

Status validate(const TcpTransportOptions& o) {
  auto bad = [](const std::string& why) {
    return Status::invalid_argument("tcp transport: " + why);
  };
  if (o.id == kNoServer) return bad("id must name this server (non-zero)");
  if (o.cluster_id == 0) return bad("cluster_id must be non-zero");
  if (o.listen_address.empty())
    return bad("listen_address is required (host:port, port 0 picks one)");
  if (o.listen_address.rfind(':') == std::string::npos) {
    return bad("listen_address '" + o.listen_address + "' has no port (host:port)");
  }
  if (o.max_frame_bytes < 1024 || o.max_frame_bytes > (1ULL << 31)) {
    return bad("max_frame_bytes must be within [1 KiB, 2 GiB]");
  }
  if (o.max_queued_bytes < o.max_frame_bytes) {
    return bad("max_queued_bytes must be at least max_frame_bytes (a largest frame must fit)");
  }
  if (o.max_frames_per_write == 0 || o.max_frames_per_write > 512) {
    return bad("max_frames_per_write must be within [1, 512]");
  }
  if (o.read_buffer_bytes < 4096 || o.read_buffer_bytes > o.max_frame_bytes) {
    return bad("read_buffer_bytes must be within [4 KiB, max_frame_bytes]");
  }
  if (o.max_inbound_connections == 0) return bad("max_inbound_connections must be positive");
  if (o.inline_write_min_idle.count() < 0) return bad("inline_write_min_idle must not be negative");
  const std::chrono::milliseconds zero{0};
  if (o.connect_timeout <= zero) return bad("connect_timeout must be positive");
  if (o.write_timeout <= zero) return bad("write_timeout must be positive");
  if (o.idle_timeout < std::chrono::milliseconds(30))
    return bad("idle_timeout must be at least 30ms");
  if (o.backoff_initial <= zero) return bad("backoff_initial must be positive");
  if (o.backoff_max < o.backoff_initial) return bad("backoff_max must be at least backoff_initial");
  if (o.tls) {
    if (o.tls->certificate_file.empty() || o.tls->private_key_file.empty() ||
        o.tls->ca_file.empty()) {
      return bad("tls needs certificate_file, private_key_file and ca_file");
    }
  }
  return Status::ok();
}

}  // namespace keel
