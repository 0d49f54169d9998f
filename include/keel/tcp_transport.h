// keel/tcp_transport.h — the transport a production cluster runs on: keel's
// frames over TCP between processes, optionally with mutual TLS.
//
// Each server listens on one address. For every peer it sends to, it keeps
// one long-lived outbound connection per lane (Lane::kControl for votes,
// heartbeats, read-index and timeout-now; Lane::kReplication for appends and
// snapshot chunks), so a heartbeat never waits behind megabytes of entries.
// A connection is dialled when the first frame for it is queued, opens with
// a handshake that checks the protocol version and the cluster id and names
// the sending server, and is re-dialled after a failure with capped
// exponential backoff and jitter. Frames queued while a write is in flight
// go out together in one gathering write, each payload from its own buffer;
// a lone frame on an idle plain-TCP connection is written by send() itself.
// Formats: docs/formats.md ("TCP transport"); set-up and TLS:
// docs/transport.md.
//
// Hostile input (a truncated, oversized, unknown or corrupt frame, garbage
// instead of a handshake, a peer of another cluster) closes that connection
// with a logged reason and is counted in stats(); nothing from a connection
// is delivered before its handshake succeeded.
//
// Threads: one I/O thread per transport runs every socket (one io_context).
// Frames are handed to the receiver as tasks on the executor given to
// start(), one task per read. make_io_executor() gives executors on the I/O
// thread itself: with ThreadPolicy::kShareWithTransport the runtime runs its
// raft loop (and, when they never block, its log writer and applier) there,
// so a frame read from a socket is stepped, and its answer written, by the
// thread that read it, without waking another (Config::thread_policy).
//
// Thread safety: every method may be called from any thread. send() never
// blocks: a frame past a queue's bound is dropped and counted (Raft
// retransmits). The last reference may be dropped on any thread, the I/O
// thread included: the transport is then destroyed (its I/O thread joined)
// on a thread started for that.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "keel/logger.h"
#include "keel/metrics.h"
#include "keel/status.h"
#include "keel/transport.h"
#include "keel/types.h"

namespace keel {

// Mutual TLS: both ends present a certificate signed by `ca_file`'s CA and
// accept only such peers. PEM files.
struct TcpTlsOptions {
  std::string certificate_file;  // this server's certificate (chain)
  std::string private_key_file;  // its key
  std::string ca_file;           // the CA that signs every server of the cluster
  // Also check names: the dialler accepts the listener only if its
  // certificate names the host it dialled (a DNS or IP subjectAltName), and
  // the listener accepts a dialler only if its certificate names the server
  // id it claims in the handshake as "keel-<id>" (a DNS subjectAltName or
  // the common name). Off: any certificate of the CA is accepted.
  bool verify_peer_names = false;
};

struct TcpTransportOptions {
  // This server (the `from` of every handshake it sends; a hello addressed
  // to another id is refused).
  ServerId id;
  // Shared by every server of one cluster; a peer with another is refused.
  // Must not be 0.
  std::uint64_t cluster_id = 0;
  // "host:port" to listen on; port 0 picks a free one (listen_address()
  // reports it). Required.
  std::string listen_address;
  // An IP to bind outgoing connections to before dialling (empty: any),
  // so that peers see this server's connections come from that address.
  std::string outgoing_address;
  // Plain TCP when absent (trusted networks and tests).
  std::optional<TcpTlsOptions> tls;

  // The largest payload one frame may carry; larger ones are refused on
  // send (counted) and close the connection on receipt. Must exceed the
  // runtime's largest message (Config's message and chunk bounds).
  std::size_t max_frame_bytes = 64ULL << 20;
  // Payload bytes queued or being written per peer and lane; a frame that
  // would pass it is dropped and counted.
  std::size_t max_queued_bytes = 64ULL << 20;
  // Frames one gathering write takes at most (each frame is two buffers;
  // Asio hands the kernel up to 64 buffers per sendmsg).
  std::size_t max_frames_per_write = 256;
  // The read buffer each inbound connection starts with; it grows up to the
  // largest frame received, and shrinks back after one that was large.
  std::size_t read_buffer_bytes = 64ULL << 10;
  // Inbound connections open at once; more are closed as they arrive.
  std::size_t max_inbound_connections = 256;
  // On plain TCP, send() writes a frame to the socket itself (without
  // blocking) when the connection is idle and has written nothing for at
  // least inline_write_min_idle: a lone frame then costs no wake-up of the
  // I/O thread. Frames sent closer together are queued and gathered by the
  // I/O thread instead (one write for many). Off: every frame is queued.
  bool inline_writes = true;
  std::chrono::microseconds inline_write_min_idle{10};

  std::chrono::milliseconds connect_timeout{3000};  // dial + TLS + handshake
  // A write that moves no byte for this long fails the connection (however
  // long a large write takes while it moves).
  std::chrono::milliseconds write_timeout{10000};
  // An inbound connection that receives nothing (not even a keepalive) for
  // this long is closed; outbound connections send a keepalive after a third
  // of it without traffic.
  std::chrono::milliseconds idle_timeout{30000};
  // Re-dial delays: the first, doubled per failure up to the cap, each drawn
  // with jitter in [delay/2, delay].
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{2000};

  // Where the transport's log lines go (refused peers, closed connections),
  // each with `server=<id>` (keel/logger.h); null: stderr, info and above.
  // Called from the I/O thread and from threads in send(), possibly at once.
  // Lines about inbound connections are limited to 20 a second, others to
  // what changed.
  std::shared_ptr<Logger> logger;
  // Where the transport's counters go (keel/metrics.h), as they grow, at
  // most once per watchdog period: keel_transport_frames_total and
  // keel_transport_bytes_total by lane and direction (sent, received,
  // dropped); null: nowhere.
  std::shared_ptr<MetricsSink> metrics;
};

// Checks every field; InvalidArgument naming the first bad one.
Status validate(const TcpTransportOptions& options);

struct TcpLaneStats {
  std::uint64_t frames_sent = 0;
  std::uint64_t bytes_sent = 0;  // payload and header bytes written
  std::uint64_t frames_received = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t frames_dropped = 0;  // past max_queued_bytes or max_frame_bytes, or unsendable
};

struct TcpTransportStats {
  std::uint64_t connections_made = 0;      // outbound handshakes that succeeded
  std::uint64_t connections_failed = 0;    // dials, TLS or handshakes that failed
  std::uint64_t connections_accepted = 0;  // inbound handshakes that succeeded
  std::uint64_t connections_refused = 0;   // inbound ones refused at the handshake or TLS
  // Inbound connections closed for what they sent, by reason.
  std::uint64_t rejected_malformed_frame = 0;  // bad kind, reserved bytes, checksum
  std::uint64_t rejected_oversized_frame = 0;
  std::uint64_t rejected_wrong_cluster = 0;
  std::uint64_t rejected_bad_handshake = 0;  // not keel, other version, other destination
  std::uint64_t writes = 0;                  // gathering writes (frames_sent / writes = coalescing)
  TcpLaneStats control;
  TcpLaneStats replication;
};

class TcpTransport : public Transport {
 public:
  // The address it listens on, with the port it actually bound.
  virtual std::string listen_address() const = 0;
  virtual TcpTransportStats stats() const = 0;
};

// Validates the options, binds the listening socket and starts the I/O
// thread; connections are accepted from now on, but frames are delivered
// only between start() and stop(). The destructor stops everything.
Result<std::shared_ptr<TcpTransport>> make_tcp_transport(TcpTransportOptions options);

}  // namespace keel
