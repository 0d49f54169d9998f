#include "runtime/snapshot_transfer.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "core/crc32c.h"

namespace keel::runtime {

struct SnapshotReaderBox {
  std::unique_ptr<SnapshotReader> reader;
};

struct SnapshotSinkBox {
  std::unique_ptr<SnapshotSink> sink;
};

namespace {

std::string name_of(const core::Message& m) {
  return "snapshot " + std::to_string(m.prev_log_index.value) + "/" +
         std::to_string(m.prev_log_term.value);
}

// Reads up to `limit` bytes (fewer only at the end).
Result<std::string> read_up_to(SnapshotReader& reader, std::uint64_t limit) {
  std::string out(static_cast<std::size_t>(limit), '\0');
  std::size_t filled = 0;
  while (filled < out.size()) {
    Result<std::size_t> got =
        reader.read(std::span<char>(out.data() + filled, out.size() - filled));
    if (!got.is_ok()) return got.status();
    if (*got == 0) break;
    filled += *got;
  }
  out.resize(filled);
  return out;
}

}  // namespace

SnapshotTransfers::SnapshotTransfers(ServerId self, const Config& config,
                                     std::shared_ptr<SnapshotStore> store,
                                     std::shared_ptr<Executor> io, Hooks hooks)
    : self_(self),
      chunk_bytes_(config.max_snapshot_chunk_bytes),
      max_inflight_(config.max_inflight_snapshot_chunks),
      idle_timeout_(config.snapshot_transfer_idle_timeout),
      retry_delay_(config.heartbeat_interval),
      store_(std::move(store)),
      io_(std::move(io)),
      hooks_(std::move(hooks)) {}

// --- sender ------------------------------------------------------------------------

void SnapshotTransfers::start_sending(const core::Message& request) {
  const ServerId peer = request.to;
  auto existing = outgoing_.find(peer);
  if (existing != outgoing_.end()) {
    // The one under way goes on; one delivered already is replaced only by
    // a request for another snapshot (the follower needs a newer one).
    if (!existing->second.delivered ||
        existing->second.request.prev_log_index == request.prev_log_index) {
      return;
    }
    outgoing_.erase(existing);
  }
  Outgoing& out = outgoing_[peer];
  out.generation = next_generation_++;
  out.request = request;
  out.last_progress = hooks_.now();
  open_for(peer, out.generation, 0);
}

// Opens the snapshot the request names and skips `skip` bytes (a resume),
// on the io executor.
void SnapshotTransfers::open_for(ServerId peer, std::uint64_t generation, std::uint64_t skip) {
  Outgoing& out = outgoing_.at(peer);
  out.busy = true;
  const Index index = out.request.prev_log_index;
  const Term term = out.request.prev_log_term;
  const std::string known_id = out.meta.id;
  io_->post([this, store = store_, peer, generation, index, term, skip, known_id, hooks = hooks_] {
    auto box = std::make_shared<ReaderBox>();
    SnapshotMeta meta;
    Status status;
    std::string id = known_id;
    if (id.empty()) {
      Result<SnapshotList> list = store->list();
      status = list.status();
      if (status.is_ok()) {
        for (const SnapshotMeta& candidate : list->snapshots) {
          if (candidate.index == index && candidate.term == term) {
            id = candidate.id;
            break;
          }
        }
        // Gone (pruned, or damaged): the newest one serves as well, if it
        // covers at least as much; the follower's answer names it.
        if (id.empty() && !list->snapshots.empty() && list->snapshots.front().index >= index) {
          id = list->snapshots.front().id;
        }
        if (id.empty()) status = Status::not_found("the store holds no snapshot that covers it");
      }
    }
    if (status.is_ok()) {
      Result<SnapshotStore::Opened> opened = store->open(id);
      status = opened.status();
      if (status.is_ok()) {
        meta = opened->meta;
        box->reader = std::move(opened->reader);
      }
    }
    for (std::uint64_t left = skip; status.is_ok() && left > 0;) {
      Result<std::string> skipped =
          read_up_to(*box->reader, std::min<std::uint64_t>(left, 1 << 20));
      status = skipped.status();
      if (status.is_ok() && skipped->empty()) status = Status::corruption("shorter than its size");
      if (status.is_ok()) left -= skipped->size();
    }
    hooks.post_to_loop([this, peer, generation, skip, status, meta, box] {
      auto it = outgoing_.find(peer);
      if (it == outgoing_.end() || it->second.generation != generation) return;
      if (!status.is_ok()) {
        abandon_outgoing(peer, "cannot open it: " + status.to_string());
        return;
      }
      it->second.meta = meta;
      it->second.reader = box;
      it->second.read_offset = skip;
      it->second.busy = false;
      // Chunks name the snapshot actually sent.
      it->second.request.prev_log_index = meta.index;
      it->second.request.prev_log_term = meta.term;
      // Opening (which checks the whole snapshot) and skipping take as long
      // as the snapshot is large: not a lack of progress.
      it->second.last_progress = hooks_.now();
      pump(peer);
    });
  });
}

void SnapshotTransfers::pump(ServerId peer) {
  auto it = outgoing_.find(peer);
  if (it == outgoing_.end()) return;
  Outgoing& out = it->second;
  if (out.busy || out.inflight_ends.size() >= max_inflight_) return;
  // An empty snapshot still sends one (last) chunk.
  if (out.read_offset >= out.meta.size_bytes && out.sent_any) return;
  read_next(peer);
}

void SnapshotTransfers::read_next(ServerId peer) {
  Outgoing& reading = outgoing_.at(peer);
  reading.busy = true;
  const std::uint64_t generation = reading.generation;
  const std::uint64_t offset = reading.read_offset;
  const std::uint64_t limit = std::min(chunk_bytes_, reading.meta.size_bytes - offset);
  io_->post([this, peer, generation, offset, limit, box = reading.reader, hooks = hooks_] {
    Result<std::string> chunk = read_up_to(*box->reader, limit);
    hooks.post_to_loop([this, peer, generation, offset, chunk = std::move(chunk)]() mutable {
      auto it = outgoing_.find(peer);
      if (it == outgoing_.end() || it->second.generation != generation) return;
      Outgoing& out = it->second;
      if (!chunk.is_ok()) {
        abandon_outgoing(peer, "reading it failed: " + chunk.status().to_string());
        return;
      }
      const std::uint64_t end = offset + chunk->size();
      if (chunk->size() == 0 && end < out.meta.size_bytes) {
        abandon_outgoing(peer, "it ended before its size");
        return;
      }
      core::Message m = out.request;
      m.type = core::MessageType::kSnapshotChunk;
      m.from = self_;
      m.commit = out.request.commit;
      m.snapshot_offset = offset;
      m.snapshot_size = out.meta.size_bytes;
      m.snapshot_crc = out.meta.crc32c;
      m.chunk_crc = core::crc32c(*chunk);
      m.last_chunk = end == out.meta.size_bytes;
      m.snapshot_configuration = out.meta.configuration;
      m.snapshot_configuration_index = out.meta.configuration_index;
      m.chunk = std::move(chunk).value();
      stats_.bytes_sent += m.chunk.size();
      out.read_offset = end;
      out.sent_any = true;
      out.inflight_ends.push_back(end);
      out.busy = false;
      hooks_.send(m);
      pump(peer);
    });
  });
}

void SnapshotTransfers::on_chunk_response(const core::Message& response) {
  auto it = outgoing_.find(response.from);
  if (it == outgoing_.end()) return;
  Outgoing& out = it->second;
  if (response.term != out.request.term || response.prev_log_index != out.request.prev_log_index ||
      response.prev_log_term != out.request.prev_log_term) {
    return;  // about another transfer
  }
  if (response.reject) {
    abandon_outgoing(response.from, "the follower refused it");
    return;
  }
  if (response.last_chunk) {
    if (!out.delivered) ++stats_.sent;
    out.delivered = true;  // the follower's core answers the core; see release_delivered
    out.last_progress = hooks_.now();
    out.inflight_ends.clear();
    return;
  }
  if (out.delivered) return;
  const std::uint64_t offset = response.snapshot_offset;
  if (offset == out.acked && offset < out.read_offset && !out.busy && out.rewound_to != offset) {
    // The follower answers a later chunk with the same offset again: the
    // chunk there was lost or damaged. Send from there once more.
    out.rewound_to = offset;
    out.inflight_ends.clear();
    out.generation = next_generation_++;
    open_for(response.from, out.generation, offset);
    return;
  }
  if (offset < out.acked && out.sent_any && !out.busy && out.rewound_to != offset &&
      (offset == 0 || offset == out.low_answer)) {
    // The follower holds less than it said (it restarted and lost the part
    // it had): send from where it is now, rather than wait for the idle
    // timeout with every chunk in flight answered the same way.
    out.low_answer = UINT64_MAX;
    out.acked = offset;
    out.rewound_to = offset;
    out.inflight_ends.clear();
    out.generation = next_generation_++;
    out.last_progress = hooks_.now();
    open_for(response.from, out.generation, offset);
    return;
  }
  if (offset < out.acked) out.low_answer = offset;
  if (offset <= out.acked && out.sent_any) return;  // stale, or a repeat
  out.last_progress = hooks_.now();
  out.acked = offset;
  if (std::find(out.inflight_ends.begin(), out.inflight_ends.end(), offset) !=
      out.inflight_ends.end()) {
    while (!out.inflight_ends.empty() && out.inflight_ends.front() <= offset) {
      out.inflight_ends.pop_front();
    }
    pump(response.from);
    return;
  }
  if (offset > out.meta.size_bytes) {
    abandon_outgoing(response.from, "the follower claims more bytes than it has");
    return;
  }
  // The follower holds another amount (part of this snapshot from an
  // earlier attempt): continue from there.
  out.rewound_to = offset;
  out.inflight_ends.clear();
  out.generation = next_generation_++;
  open_for(response.from, out.generation, offset);
}

void SnapshotTransfers::stop_sending() { outgoing_.clear(); }

void SnapshotTransfers::release_delivered(
    const std::function<bool(ServerId peer, Index index)>& caught_up) {
  std::erase_if(outgoing_, [&](const auto& entry) {
    return entry.second.delivered && caught_up(entry.first, entry.second.request.prev_log_index);
  });
}

std::optional<Index> SnapshotTransfers::lowest_index_sent() const {
  std::optional<Index> lowest;
  for (const auto& [peer, out] : outgoing_) {
    if (!lowest || out.request.prev_log_index < *lowest) lowest = out.request.prev_log_index;
  }
  return lowest;
}

void SnapshotTransfers::abandon_outgoing(ServerId peer, const std::string& why) {
  auto it = outgoing_.find(peer);
  if (it == outgoing_.end()) return;
  hooks_.log("stops sending " + name_of(it->second.request) + " to server " +
             std::to_string(peer.value) + ": " + why);
  outgoing_.erase(it);
  ++stats_.abandoned;
  report_failed_later(peer);
}

void SnapshotTransfers::report_failed_later(ServerId peer) {
  hooks_.post_to_loop_after(retry_delay_, [this, peer] {
    if (!outgoing_.contains(peer)) hooks_.send_failed(peer);
  });
}

// --- receiver ----------------------------------------------------------------------

bool SnapshotTransfers::same_snapshot(const core::Message& a, const core::Message& b) {
  return a.prev_log_index == b.prev_log_index && a.prev_log_term == b.prev_log_term &&
         a.snapshot_size == b.snapshot_size && a.snapshot_crc == b.snapshot_crc;
}

void SnapshotTransfers::on_chunk(const core::Message& chunk, Term term, ServerId leader) {
  if (chunk.term < term) {
    acknowledge(chunk, 0, false, /*reject=*/true);  // a deposed leader: it stops
    return;
  }
  // A leader this server does not follow yet (its heartbeat has not
  // arrived): ignored; the sender tries again.
  if (chunk.term != term || chunk.from != leader) return;
  if (chunk.chunk.size() > chunk_bytes_ || chunk.snapshot_offset > chunk.snapshot_size) {
    acknowledge(chunk, 0, false, /*reject=*/true);
    return;
  }
  if (incoming_ && !same_snapshot(incoming_->first, chunk)) {
    abandon_incoming("the leader sends another snapshot", /*refuse=*/false);
  }
  if (!incoming_) {
    start_incoming(chunk);
    return;
  }
  // The same snapshot, perhaps from a newer leader: answers go to it.
  incoming_->first.from = chunk.from;
  incoming_->first.term = chunk.term;
  incoming_->first.commit = std::max(incoming_->first.commit, chunk.commit);
  if (incoming_->queued.size() >= max_inflight_) incoming_->queued.pop_front();
  incoming_->queued.push_back(chunk);
  process_incoming();
}

void SnapshotTransfers::start_incoming(const core::Message& chunk) {
  incoming_.emplace();
  Incoming& in = *incoming_;
  in.generation = next_generation_++;
  in.first = chunk;
  in.first.chunk.clear();
  in.queued.push_back(chunk);
  in.started = hooks_.now();
  in.last_progress = in.started;
  SnapshotMeta meta;
  meta.index = chunk.prev_log_index;
  meta.term = chunk.prev_log_term;
  meta.configuration = chunk.snapshot_configuration;
  meta.configuration_index = chunk.snapshot_configuration_index;
  const std::uint64_t generation = in.generation;
  io_->post([this, store = store_, meta, generation, hooks = hooks_] {
    auto box = std::make_shared<SinkBox>();
    Result<std::unique_ptr<SnapshotSink>> sink = store->create(meta);
    Status status = sink.status();
    if (status.is_ok()) box->sink = std::move(sink).value();
    hooks.post_to_loop([this, generation, status, box] {
      if (!incoming_ || incoming_->generation != generation) return;
      if (!status.is_ok()) {
        abandon_incoming("the store cannot take it: " + status.to_string(), /*refuse=*/true);
        return;
      }
      incoming_->sink = box;
      incoming_->busy = false;
      process_incoming();
    });
  });
}

void SnapshotTransfers::process_incoming() {
  while (incoming_ && !incoming_->busy && !incoming_->queued.empty()) {
    core::Message chunk = std::move(incoming_->queued.front());
    incoming_->queued.pop_front();
    if (chunk.snapshot_offset + chunk.chunk.size() > incoming_->first.snapshot_size) {
      abandon_incoming("a chunk reaches past the snapshot's size", /*refuse=*/true);
      return;
    }
    if (chunk.snapshot_offset != incoming_->received ||
        core::crc32c(chunk.chunk) != chunk.chunk_crc) {
      // Not the next bytes (a resume, a loss, a repeat) or damaged on the
      // way: say where we are.
      acknowledge(incoming_->first, incoming_->received, false, false);
      continue;
    }
    write_chunk(std::move(chunk));
  }
}

void SnapshotTransfers::write_chunk(core::Message chunk) {
  Incoming& writing = *incoming_;
  writing.busy = true;
  const std::uint64_t generation = writing.generation;
  const std::uint32_t crc_before = writing.crc;
  io_->post([this, generation, crc_before, box = writing.sink, chunk = std::move(chunk),
             hooks = hooks_]() mutable {
    Status status = chunk.chunk.empty() ? Status::ok() : box->sink->write(chunk.chunk);
    const std::uint32_t crc =
        core::crc32c_extend(crc_before, chunk.chunk.data(), chunk.chunk.size());
    hooks.post_to_loop([this, generation, status, crc, chunk = std::move(chunk)] {
      if (!incoming_ || incoming_->generation != generation) return;
      Incoming& in = *incoming_;
      if (!status.is_ok()) {
        abandon_incoming("writing it failed: " + status.to_string(), /*refuse=*/true);
        return;
      }
      in.received += chunk.chunk.size();
      in.crc = crc;
      in.last_progress = hooks_.now();
      in.busy = false;
      if (!chunk.last_chunk) {
        acknowledge(in.first, in.received, false, false);
        process_incoming();
        return;
      }
      if (in.received != in.first.snapshot_size || in.crc != in.first.snapshot_crc) {
        abandon_incoming("its size or checksum is wrong (" + std::to_string(in.received) +
                             " bytes received of " + std::to_string(in.first.snapshot_size) + ")",
                         /*refuse=*/true);
        return;
      }
      commit_incoming();
    });
  });
}

void SnapshotTransfers::commit_incoming() {
  Incoming& in = *incoming_;
  in.busy = true;
  const std::uint64_t generation = in.generation;
  io_->post([this, generation, box = in.sink, hooks = hooks_] {
    Result<SnapshotMeta> committed = box->sink->commit();
    hooks.post_to_loop([this, generation, committed = std::move(committed)] {
      if (!incoming_ || incoming_->generation != generation) return;
      if (!committed.is_ok()) {
        abandon_incoming("committing it failed: " + committed.status().to_string(),
                         /*refuse=*/true);
        return;
      }
      core::Message install = incoming_->first;
      install.type = core::MessageType::kSnapshotRequest;
      install.to = self_;
      install.snapshot_offset = 0;
      install.snapshot_size = 0;
      install.snapshot_crc = 0;
      install.chunk_crc = 0;
      install.last_chunk = false;
      install.chunk.clear();
      const core::Message answer_to = incoming_->first;
      const Duration started = incoming_->started;
      incoming_.reset();
      ++stats_.received;
      hooks_.received(install, *committed, started);
      acknowledge(answer_to, answer_to.snapshot_size, /*complete=*/true, false);
    });
  });
}

void SnapshotTransfers::abandon_incoming(const std::string& why, bool refuse) {
  if (!incoming_) return;
  hooks_.log("drops " + name_of(incoming_->first) + " from server " +
             std::to_string(incoming_->first.from.value) + ": " + why);
  const core::Message answer_to = incoming_->first;
  if (std::shared_ptr<SinkBox> box = incoming_->sink) {
    io_->post([box] { box->sink->cancel(); });
  }
  incoming_.reset();
  ++stats_.abandoned;
  if (refuse) acknowledge(answer_to, 0, false, /*reject=*/true);
}

void SnapshotTransfers::acknowledge(const core::Message& to, std::uint64_t offset, bool complete,
                                    bool reject) {
  core::Message ack;
  ack.type = core::MessageType::kSnapshotChunkResponse;
  ack.from = self_;
  ack.to = to.from;
  ack.term = to.term;
  ack.prev_log_index = to.prev_log_index;
  ack.prev_log_term = to.prev_log_term;
  ack.snapshot_offset = offset;
  ack.last_chunk = complete;
  ack.reject = reject;
  hooks_.send(ack);
}

// --- both ----------------------------------------------------------------------------

void SnapshotTransfers::check_idle() {
  const Duration now = hooks_.now();
  std::vector<ServerId> idle;
  for (const auto& [peer, out] : outgoing_) {
    // Time spent on this server's own I/O (opening, reading) is not the
    // follower's lack of progress.
    if (!out.busy && now - out.last_progress > idle_timeout_) idle.push_back(peer);
  }
  for (ServerId peer : idle) {
    if (outgoing_.at(peer).delivered) {
      // Its acknowledgement was lost: the core probes the follower again.
      outgoing_.erase(peer);
      report_failed_later(peer);
    } else {
      abandon_outgoing(peer, "no progress within the idle timeout");
    }
  }
  // The receiver keeps what it holds for twice as long as the sender
  // waits: a sender that gave up on a stalled link starts over within a
  // heartbeat and finds the receiver still holding its part, and resumes
  // (with equal timeouts both would give up together, and every retry
  // would start from nothing).
  if (incoming_ && !incoming_->busy && now - incoming_->last_progress > 2 * idle_timeout_) {
    abandon_incoming("no progress within twice the idle timeout", /*refuse=*/false);
  }
}

}  // namespace keel::runtime
