// runtime/snapshot_transfer.h — sending a snapshot to a follower that is too
// far behind for the log, and receiving one from the leader.
//
// The core decides that a follower needs a snapshot (a kSnapshotRequest)
// and what to do once the follower holds it; the bytes travel here, between
// the two shells, as kSnapshotChunk frames on the replication lane, each
// answered by a kSnapshotChunkResponse on the control lane:
//
//  - The sender opens the store's snapshot the core named and streams it in
//    chunks of Config::max_snapshot_chunk_bytes, at most
//    Config::max_inflight_snapshot_chunks unacknowledged. Every chunk
//    carries its offset, its own CRC-32C and the whole snapshot's size and
//    CRC-32C. The leader keeps sending the snapshot it started with until
//    the transfer ends (a newer one would restart it, and could loop).
//  - The receiver writes chunks in order into a sink of its own store and
//    answers each with the number of bytes it holds. A chunk at another
//    offset is answered the same way, which is how a transfer resumes: a
//    receiver that holds part of the same snapshot (same index, term, size
//    and checksum) from an earlier attempt or an earlier leader makes the
//    sender skip to where it is. After the last chunk the receiver checks
//    size and checksum, commits the snapshot (only then does it exist) and
//    hands the core its install message; a damaged transfer is dropped
//    whole and refused, and nothing was installed.
//  - Progress, not total size, bounds a transfer: one that sees no chunk
//    acknowledged (sender) for Config::snapshot_transfer_idle_timeout, or
//    received (receiver) for twice that, is abandoned (the receiver waits
//    longer so that the sender's next attempt resumes); the sender then
//    tells the core, which asks again -- a heartbeat interval later, so that
//    a snapshot that cannot be opened or read costs one attempt per
//    heartbeat, not a busy loop. A leader that loses its leadership
//    stops sending; a receiver accepts chunks only from the leader it
//    follows, in its current term.
//
// Store I/O (opening, reading, writing, committing) runs on the transfer
// executor; everything else, on the raft loop.
//
// Thread safety: every method on the raft loop.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/message.h"
#include "keel/config.h"
#include "keel/env.h"
#include "keel/snapshot_store.h"

namespace keel::runtime {

struct TransferStats {
  std::uint64_t sent = 0;        // transfers a follower acknowledged whole
  std::uint64_t bytes_sent = 0;  // chunk bytes sent
  std::uint64_t received = 0;    // transfers received whole and committed
  std::uint64_t abandoned = 0;   // transfers given up (idle, refused, damaged, failed I/O)
};

// The store's reader and sink, used on the io executor only (defined in the
// .cc file).
struct SnapshotReaderBox;
struct SnapshotSinkBox;

// One transfer, as the loop sees it (namespace level, not nested in
// SnapshotTransfers: std::optional of a nested class with default member
// initializers is not constructible inside the enclosing class for clang).
struct OutgoingTransfer {
  std::uint64_t generation = 0;
  core::Message request;
  SnapshotMeta meta;
  std::shared_ptr<SnapshotReaderBox> reader;
  bool busy = true;  // opening, reading or seeking on the io executor
  bool sent_any = false;
  bool delivered = false;         // the follower holds it whole
  std::uint64_t read_offset = 0;  // where the next chunk starts
  std::uint64_t acked = 0;        // bytes the receiver said it holds
  // The offset last sent from again after a repeated answer (one rewind
  // per stuck offset, not one per chunk still in flight).
  std::uint64_t rewound_to = UINT64_MAX;
  // The last answer below `acked`: a late answer, or a follower that lost
  // what it held (it restarted). The same one twice, or 0, means the latter.
  std::uint64_t low_answer = UINT64_MAX;
  std::deque<std::uint64_t> inflight_ends;
  Duration last_progress{0};
};

struct IncomingTransfer {
  std::uint64_t generation = 0;
  core::Message first;  // names the snapshot: index, terms, size, checksum, configuration
  std::shared_ptr<SnapshotSinkBox> sink;
  bool busy = true;  // creating, writing or committing on the io executor
  std::uint64_t received = 0;
  std::uint32_t crc = 0;
  std::deque<core::Message> queued;
  Duration started{0};  // the first chunk's arrival
  Duration last_progress{0};
};

class SnapshotTransfers {
 public:
  struct Hooks {
    // Sends a frame (the caller picks the lane from the type).
    std::function<void(const core::Message&)> send;
    // Runs `task` on the raft loop, unless the server stopped meanwhile (at
    // once, or after a delay).
    std::function<void(std::function<void()>)> post_to_loop;
    std::function<void(Duration, std::function<void()>)> post_to_loop_after;
    // Sender: the transfer to `peer` was abandoned (report it to the core).
    std::function<void(ServerId peer)> send_failed;
    // Receiver: the whole snapshot is committed in the store as `meta`;
    // `install` is the message to step into the core; `started`, when its
    // first chunk arrived.
    std::function<void(const core::Message& install, const SnapshotMeta& meta, Duration started)>
        received;
    // A line for the log (reasons for abandoning a transfer).
    std::function<void(const std::string& line)> log;
    std::function<Duration()> now;
  };

  SnapshotTransfers(ServerId self, const Config& config, std::shared_ptr<SnapshotStore> store,
                    std::shared_ptr<Executor> io, Hooks hooks);

  // --- sender (the leader) ---------------------------------------------------
  // The core asked for `request.to` to be sent the snapshot the request
  // names. A transfer to that peer already under way goes on.
  void start_sending(const core::Message& request);
  void on_chunk_response(const core::Message& response);
  // Leadership lost: every outgoing transfer stops.
  void stop_sending();
  // The lowest snapshot index being sent: the log must keep the entries
  // after it, or the follower could not continue from the log once it
  // installed the snapshot.
  std::optional<Index> lowest_index_sent() const;
  bool sending_to(ServerId peer) const { return outgoing_.contains(peer); }
  // A transfer the follower received whole is kept (its index still holds
  // compaction back) until the follower's core acknowledged the snapshot:
  // `caught_up(peer, index)` says whether it has. Without that, a leader
  // compacting right after the last chunk leaves the follower's
  // acknowledgement behind the log, and it would need another snapshot.
  void release_delivered(const std::function<bool(ServerId peer, Index index)>& caught_up);

  // --- receiver (a follower) -------------------------------------------------
  // A chunk arrived; `term` and `leader` are the core's now.
  void on_chunk(const core::Message& chunk, Term term, ServerId leader);

  // Abandons transfers that made no progress for the idle timeout (sent)
  // or twice that (received).
  void check_idle();
  const TransferStats& stats() const { return stats_; }

 private:
  using ReaderBox = SnapshotReaderBox;
  using SinkBox = SnapshotSinkBox;
  using Outgoing = OutgoingTransfer;
  using Incoming = IncomingTransfer;

  void open_for(ServerId peer, std::uint64_t generation, std::uint64_t skip);
  void pump(ServerId peer);
  void read_next(ServerId peer);
  void abandon_outgoing(ServerId peer, const std::string& why);
  void report_failed_later(ServerId peer);

  static bool same_snapshot(const core::Message& a, const core::Message& b);
  void start_incoming(const core::Message& chunk);
  void process_incoming();
  void write_chunk(core::Message chunk);
  void commit_incoming();
  void abandon_incoming(const std::string& why, bool refuse);
  void acknowledge(const core::Message& to, std::uint64_t offset, bool complete, bool reject);

  const ServerId self_;
  const std::uint64_t chunk_bytes_;
  const std::size_t max_inflight_;
  const Duration idle_timeout_;
  const Duration retry_delay_;
  std::shared_ptr<SnapshotStore> store_;
  std::shared_ptr<Executor> io_;
  Hooks hooks_;
  std::uint64_t next_generation_ = 1;
  std::map<ServerId, Outgoing> outgoing_;
  std::optional<Incoming> incoming_;
  TransferStats stats_;
};

}  // namespace keel::runtime
