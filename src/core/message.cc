#include "core/message.h"

namespace keel::core {

const char* to_string(MessageType type) {
  switch (type) {
    case MessageType::kAppendRequest:
      return "AppendRequest";
    case MessageType::kAppendResponse:
      return "AppendResponse";
    case MessageType::kHeartbeatRequest:
      return "HeartbeatRequest";
    case MessageType::kHeartbeatResponse:
      return "HeartbeatResponse";
    case MessageType::kPreVoteRequest:
      return "PreVoteRequest";
    case MessageType::kPreVoteResponse:
      return "PreVoteResponse";
    case MessageType::kVoteRequest:
      return "VoteRequest";
    case MessageType::kVoteResponse:
      return "VoteResponse";
    case MessageType::kReadIndexRequest:
      return "ReadIndexRequest";
    case MessageType::kReadIndexResponse:
      return "ReadIndexResponse";
    case MessageType::kTimeoutNow:
      return "TimeoutNow";
    case MessageType::kSnapshotRequest:
      return "SnapshotRequest";
    case MessageType::kSnapshotChunk:
      return "SnapshotChunk";
    case MessageType::kSnapshotChunkResponse:
      return "SnapshotChunkResponse";
  }
  return "Unknown";
}

bool is_response(MessageType type) {
  return type == MessageType::kAppendResponse || type == MessageType::kHeartbeatResponse ||
         type == MessageType::kPreVoteResponse || type == MessageType::kVoteResponse ||
         type == MessageType::kReadIndexResponse;
}

bool is_shell_message(MessageType type) {
  return type == MessageType::kSnapshotChunk || type == MessageType::kSnapshotChunkResponse;
}

std::string to_string(const LogEntry& entry) {
  std::string text = std::to_string(entry.index.value) + "/" + std::to_string(entry.term.value);
  if (entry.type == EntryType::kCommand) {
    text += " \"" + entry.data.str() + "\"";
  } else {
    text += " ";
    text += keel::to_string(entry.type);
  }
  return text;
}

namespace {

std::string pos(Index index, Term term) {
  return std::to_string(index.value) + "/" + std::to_string(term.value);
}

}  // namespace

std::string to_string(const Message& m) {
  std::string text = std::to_string(m.from.value) + "->" + std::to_string(m.to.value) + " " +
                     to_string(m.type) + " term=" + std::to_string(m.term.value);
  switch (m.type) {
    case MessageType::kAppendRequest: {
      text += " prev=" + pos(m.prev_log_index, m.prev_log_term) +
              " commit=" + std::to_string(m.commit.value) + " entries=[";
      for (std::size_t i = 0; i < m.entries.size(); ++i) {
        if (i > 0) text += ", ";
        text += to_string(m.entries[i]);
      }
      text += "]";
      break;
    }
    case MessageType::kAppendResponse:
      if (m.reject) {
        text += " reject prev=" + std::to_string(m.match_index.value) +
                " hint=" + pos(m.hint_index, m.hint_term);
      } else {
        text += " match=" + std::to_string(m.match_index.value);
      }
      break;
    case MessageType::kHeartbeatRequest:
      text +=
          " commit=" + std::to_string(m.commit.value) + " round=" + std::to_string(m.read_round);
      if (m.removed) text += " removed";
      break;
    case MessageType::kHeartbeatResponse:
      text += " round=" + std::to_string(m.read_round);
      break;
    case MessageType::kPreVoteRequest:
    case MessageType::kVoteRequest:
      text += " last=" + pos(m.last_log_index, m.last_log_term);
      if (m.leadership_transfer) text += " transfer";
      break;
    case MessageType::kPreVoteResponse:
    case MessageType::kVoteResponse:
      text += m.reject ? " reject" : " granted";
      break;
    case MessageType::kReadIndexRequest:
      text += " id=" + std::to_string(m.request_id);
      break;
    case MessageType::kReadIndexResponse:
      text += " id=" + std::to_string(m.request_id);
      text += m.reject ? " reject" : " index=" + std::to_string(m.read_index.value);
      break;
    case MessageType::kTimeoutNow:
      break;
    case MessageType::kSnapshotRequest:
      text += " snapshot=" + pos(m.prev_log_index, m.prev_log_term) +
              " commit=" + std::to_string(m.commit.value);
      break;
    case MessageType::kSnapshotChunk:
      text += " snapshot=" + pos(m.prev_log_index, m.prev_log_term) +
              " offset=" + std::to_string(m.snapshot_offset) +
              " bytes=" + std::to_string(m.chunk.size()) + "/" + std::to_string(m.snapshot_size);
      if (m.last_chunk) text += " last";
      break;
    case MessageType::kSnapshotChunkResponse:
      text += " snapshot=" + pos(m.prev_log_index, m.prev_log_term) +
              " offset=" + std::to_string(m.snapshot_offset);
      if (m.last_chunk) text += " complete";
      if (m.reject) text += " reject";
      break;
  }
  return text;
}

}  // namespace keel::core
