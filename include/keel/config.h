// keel/config.h — the settings of one keel::Raft, with defaults that suit a
// cluster on one network (heartbeats every 100 ms, elections after 1 s).
//
// Every bound on memory and queues is here, named and documented: a server
// without a quorum or with a slow follower must never grow without limit.
// validate() (called by Raft::open) checks each field against the range
// written next to it and names the field and the range when it refuses.
//
// Thread safety: a value.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "keel/status.h"
#include "keel/types.h"

namespace keel {

// How the runtime's components (raft loop, log writer, applier) map onto
// threads of the thread Env. Ordering is the same either way: each component
// runs its own tasks in order, and hands work to the others by posting.
enum class ThreadPolicy : std::uint8_t {
  // The log writer shares the loop's thread when the log store does not
  // block (LogStore::may_block), the applier when the FSM applies quickly
  // (Fsm::applies_quickly): a commit then costs no thread wake-up between
  // them. A blocking store or a slow FSM keeps its own thread.
  kShareWhenSafe,
  // Each component on a thread of its own (the transport's I/O thread
  // hands frames to the loop's).
  kThreadPerComponent,
  // As kShareWhenSafe, and the loop (with the writer and applier that share
  // it) runs on the transport's I/O thread when the transport has one
  // (Transport::make_io_executor; TcpTransport does), so that a frame read
  // from a socket is stepped, and answered, without waking another thread
  // (BENCHMARKS.md, "Cluster"); not under an Env driven by its caller
  // (ManualEnv), whose time is not the transport's. then() callbacks and a
  // quick FSM then run on the I/O thread and hold up every connection.
  // Not the default yet: the server may then be destroyed on the I/O
  // thread, and with it the transport, on a thread started for that.
  kShareWithTransport,
};

struct Config {
  // This server's id; must appear in the cluster configuration.
  ServerId id;

  // --- timing -----------------------------------------------------------------
  // A leader sends heartbeats this often. It is also the runtime's tick: every
  // protocol timeout is counted in heartbeat intervals. [1 ms, 60 s]
  std::chrono::milliseconds heartbeat_interval{100};
  // A follower that hears nothing from a leader for a random time between this
  // and twice this starts an election.
  // [3 heartbeat intervals, 1000 heartbeat intervals], at most 10 min.
  std::chrono::milliseconds election_timeout{1000};
  // Lease reads (Consistency::kLease): how long after a quorum confirmed its
  // leadership a leader answers reads without asking again. 0 disables lease
  // reads; otherwise at least one heartbeat interval, and it must leave room
  // for clock drift below the election timeout:
  //   lease_timeout * (100 + clock_drift_percent) / 100
  //     <= election_timeout - 2 * heartbeat_interval
  std::chrono::milliseconds lease_timeout{500};
  // A leader reports a follower it has not heard from for this long
  // (Observation::kPeerContactLost), and again once it answers
  // (kPeerContactResumed). 0: the election timeout. 0 or
  // [1 heartbeat interval, 1 hour]
  std::chrono::milliseconds peer_contact_timeout{0};
  // The largest rate difference assumed between any two servers' clocks, in
  // percent. [0, 100]
  std::uint32_t clock_drift_percent = 10;
  // A read forwarded to the leader is asked again if no answer came within
  // this many heartbeat intervals (a lost frame then costs about that much,
  // not an election timeout). [1, 1000]
  std::uint32_t forwarded_read_retry_heartbeats = 2;
  // When a leader's commit index moves and a follower has been sent no
  // append that carries it, the leader tells that follower with an empty
  // append (a commit notice), so it applies, and serves follower reads,
  // without waiting for the next heartbeat. The leader waits this long
  // first: under load the next append carries the commit meanwhile and no
  // notice is needed (each one costs every follower a wake-up). 0 sends
  // the notice at once. [0, heartbeat_interval]
  std::chrono::microseconds commit_notice_delay{1000};

  // Which components share a thread (see ThreadPolicy).
  ThreadPolicy thread_policy = ThreadPolicy::kShareWhenSafe;

  // --- protocol ------------------------------------------------------------------
  bool pre_vote = true;      // see thesis §9.6; keep on
  bool check_quorum = true;  // leaders step down without a quorum; needed by leases

  // --- bounds (each at least 1) ------------------------------------------------
  // Entries and bytes in one append message. [1, 100'000] and [1, 1 GiB]
  std::size_t max_append_entries = 64;
  std::uint64_t max_append_bytes = 1ULL << 20;
  // Appends and bytes sent to one follower and not yet acknowledged.
  // [1, 100'000] and [1, 64 GiB]
  std::size_t max_inflight_appends = 256;
  std::uint64_t max_inflight_bytes = 32ULL << 20;
  // Proposals (apply, barrier) accepted but not yet resolved; more are refused
  // with ResourceExhausted. [1, 10'000'000]
  std::size_t max_pending_proposals = 16384;
  // Bytes of entries proposed by this leader and not yet committed.
  // [1, 64 GiB]
  std::uint64_t max_uncommitted_bytes = 64ULL << 20;
  // One command's size; larger ones are refused with InvalidArgument.
  // [1, 1 GiB]
  std::uint64_t max_command_bytes = 8ULL << 20;
  // Committed entries handed to the FSM in one batch. [1, 1'000'000]
  std::size_t max_apply_batch = 1024;
  // Reads (linearizable, lease, verify_leader) waiting at once.
  // [1, 10'000'000]
  std::size_t max_pending_reads = 16384;
  // Events waiting for one slow observer; beyond this the oldest are dropped
  // and counted, kLeaderReady last of all (Raft never waits for an observer).
  // [1, 1'000'000]
  std::size_t observer_queue_capacity = 1024;
  // Observer subscriptions at once; each has a thread of its own (see
  // Raft::subscribe). [1, 4096]
  std::size_t max_subscriptions = 64;
  // shutdown() called from your own thread waits at most this long for
  // observer callbacks still running to return (see Raft::shutdown). [0, 60 s]
  std::chrono::milliseconds observer_shutdown_wait{1000};
  // Entries per log-store append: many proposals, one durable write.
  // [1, 1'000'000]
  std::size_t max_write_batch_entries = 4096;

  // --- snapshots and compaction (see keel/fsm.h) ------------------------------
  // A snapshot is taken once this many entries were applied since the last
  // one... [1, 1'000'000'000]
  std::uint64_t snapshot_threshold_entries = 8192;
  // ...or once the entries applied since the last one hold this many bytes
  // (whichever comes first). [1, 1 TiB]
  std::uint64_t snapshot_threshold_bytes = 256ULL << 20;
  // How often the thresholds are checked, besides after each applied batch
  // (which keeps a fast-growing log near the threshold): what the interval
  // adds is a snapshot of a log whose bytes grew without applies reaching
  // it. [1 heartbeat interval, 1 day]
  std::chrono::milliseconds snapshot_interval{5000};
  // Entries kept in the log before a new snapshot's index when the log is
  // cut after it, so that a follower a little behind catches up from the
  // log rather than by a whole snapshot. [0, 1'000'000'000]
  std::uint64_t trailing_log_entries = 10240;
  // A snapshot is sent to a follower in chunks of this many bytes, on the
  // replication lane... [1 KiB, 64 MiB]
  std::uint64_t max_snapshot_chunk_bytes = 1ULL << 20;
  // ...with at most this many chunks sent and not yet acknowledged.
  // [1, 1024]
  std::size_t max_inflight_snapshot_chunks = 4;
  // A transfer that makes no progress (no chunk acknowledged) for this long
  // is abandoned by the leader, which starts over; the receiver keeps what
  // it holds for twice as long (no chunk received), so that the new attempt
  // resumes from there, then drops it.
  // Measured from the last progress, never from the start: a large
  // snapshot on a slow link takes as long as it takes. [1 heartbeat
  // interval, 1 hour]
  std::chrono::milliseconds snapshot_transfer_idle_timeout{10000};
  // The largest snapshot Raft::restore() accepts. A restore travels through
  // the log, so every server holds its bytes in memory (in its log) until the
  // snapshot taken at its end lets the log be cut. [0, 16 GiB]
  std::uint64_t max_restore_bytes = 256ULL << 20;
  // On open, restore the FSM from the newest valid snapshot (true), or
  // leave it as constructed (false: an FSM that keeps its own durable state
  // and already reflects at least that snapshot; applying resumes after it).
  bool restore_snapshot_on_start = true;
  // Snapshots kept in the store: after each one stored (taken, received
  // from a leader, staged by a restore), those beyond the newest this many
  // are removed, except any still open for reading (a transfer to a
  // follower, a reader from Raft::open_snapshot), which go once closed,
  // and any past the FSM's applied index (a leader's, received and not yet
  // installed). A second one is a fallback if the newest is damaged.
  // [1, 1000]
  std::size_t snapshot_retain = 2;

  // --- membership --------------------------------------------------------
  // Raft::add_voter makes a new server a learner first and promotes it once
  // it has caught up: its log within this many entries of the leader's...
  // [0, 1'000'000'000]
  std::uint64_t promotion_max_lag_entries = 1024;
  // ...at this many checks in a row, one per heartbeat interval (a server
  // that keeps up, not one that passed by once). [1, 1000]
  std::uint32_t promotion_rounds = 3;
  // A server that learns it was removed from the configuration shuts itself
  // down (after the kRemoved observation); false leaves it running as a
  // non-member that never campaigns (stats().removed).
  bool shutdown_on_remove = true;

#ifdef KEEL_CANARIES
  // Test builds only (-DKEEL_CANARIES=ON): a protocol rule to break on
  // purpose, so that the simulator can show it catches the breakage. See
  // src/core/canary.h; 0 breaks nothing.
  std::uint8_t canary = 0;
#endif

  Status validate() const;
};

}  // namespace keel
