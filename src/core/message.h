// core/message.h — the messages Raft nodes exchange. One flat struct with a
// type tag: easy to encode, print and compare. Fields a type does not use
// stay at their defaults (see the comment on each field).
//
// Thread safety: a value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "keel/types.h"

namespace keel::core {

enum class MessageType : std::uint8_t {
  kAppendRequest,      // leader -> follower: entries after (prev_log_index, prev_log_term)
  kAppendResponse,     // follower -> leader: accepted up to match_index, or rejected with a hint
  kHeartbeatRequest,   // leader -> follower: "I am still leader"; carries commit and read_round
  kHeartbeatResponse,  // follower -> leader: echoes read_round
  kPreVoteRequest,     // would you vote for me at `term` (not yet my term)?
  kPreVoteResponse,
  kVoteRequest,
  kVoteResponse,
  kReadIndexRequest,   // follower -> leader: give me a read index for request_id
  kReadIndexResponse,  // leader -> follower: read_index for request_id, or reject
  kTimeoutNow,         // leader -> transfer target: campaign now, ignoring leases
  // leader -> follower: your next entry is compacted here; install the
  // snapshot that ends at (prev_log_index, prev_log_term). The core emits it;
  // the shell streams the snapshot's bytes (kSnapshotChunk) and, once the
  // follower holds them durably, steps this message into the follower's
  // core, which answers with a kAppendResponse.
  kSnapshotRequest,
  // Between shells, never stepped into a core: one chunk of a snapshot's
  // bytes, and its acknowledgement (see runtime/snapshot_transfer.h).
  kSnapshotChunk,
  kSnapshotChunkResponse,
};

const char* to_string(MessageType type);

struct Message {
  MessageType type = MessageType::kAppendRequest;
  ServerId from;
  ServerId to;
  // The sender's term; for pre-vote requests, the term the sender would take;
  // for a granted pre-vote, the term of the request it grants.
  Term term;

  // kAppendRequest: the entry the new ones follow, and the entries.
  Index prev_log_index;
  Term prev_log_term;
  std::vector<LogEntry> entries;
  // kAppendRequest, kHeartbeatRequest: the leader's commit index. For
  // heartbeats the leader clamps it to what the follower is known to hold.
  Index commit;

  // Responses: the request was refused (append consistency check failed, or
  // a vote / read index was denied).
  bool reject = false;
  // kAppendResponse accepted: the last index now known to match the leader.
  // kAppendResponse rejected: the prev_log_index that failed the check.
  Index match_index;
  // kAppendResponse rejected: where the leader should retry. With hint_term
  // set, hint_index is the follower's first index of hint_term; otherwise the
  // follower's log ends before hint_index.
  Index hint_index;
  Term hint_term;

  // Vote and pre-vote requests: the candidate's last log position (§5.4.1).
  Index last_log_index;
  Term last_log_term;
  // Vote requests sent because of kTimeoutNow: voters set aside leases.
  bool leadership_transfer = false;

  // Heartbeats and their responses: the leader's read round being confirmed.
  std::uint64_t read_round = 0;
  // Heartbeats: the receiver is not in the leader's latest configuration (a
  // removed server being told). A server believes the removal its log
  // commits only with this word from its leader (or at open, from its own
  // stores): one catching up passes its own earlier removal on the way to
  // the entry that adds it back.
  bool removed = false;
  // A leader's appends, heartbeats and snapshot requests, and the answers
  // to them (echoed): the epoch of the follower's progress (progress.h).
  std::uint64_t epoch = 0;
  // A leader's appends, heartbeats and snapshot requests to a follower it
  // has no match for yet: where the follower's present membership began
  // (ConfigurationLog::membership_start). A server that started with empty
  // stores votes only once its log reaches it (Node::catch_up_floor).
  Index catch_up_floor;
  // Read index requests and responses.
  std::uint64_t request_id = 0;
  Index read_index;

  // kSnapshotChunk (the snapshot is named by prev_log_index and
  // prev_log_term): where `chunk` starts in the snapshot's bytes, the whole
  // snapshot's size and CRC-32C, the chunk's own CRC-32C, and whether it is
  // the last chunk. kSnapshotChunkResponse: snapshot_offset is how many
  // bytes the receiver holds (where the sender resumes); last_chunk says the
  // whole snapshot is durable there; reject says the receiver refuses the
  // transfer (another leader or term).
  std::uint64_t snapshot_offset = 0;
  std::uint64_t snapshot_size = 0;
  std::uint64_t snapshot_crc = 0;  // a CRC-32C: below 2^32
  std::uint64_t chunk_crc = 0;     // likewise
  bool last_chunk = false;
  std::string chunk;
  // kSnapshotRequest and kSnapshotChunk: the configuration as of the
  // snapshot's index, and the index of the entry that held it.
  Configuration snapshot_configuration;
  Index snapshot_configuration_index;

  // Set by the sending shell on a leader's messages to a server that may
  // not know the leader yet (one just added, with an empty log): the
  // leader's address, so that it can answer. Never read by a core.
  std::string from_address;

  bool operator==(const Message&) const = default;
};

// One line, stable across runs, for traces and scenario files.
std::string to_string(const Message& message);
std::string to_string(const LogEntry& entry);

// Whether a message is a response that, by itself, makes a node raise its term.
bool is_response(MessageType type);
// Whether a message travels between shells only (snapshot chunks): a core
// never sees one.
bool is_shell_message(MessageType type);

}  // namespace keel::core
