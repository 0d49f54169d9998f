// WalLogStore (keel/file_stores.h): the segmented write-ahead log.
//
// Layout: segment files wal-<sequence>.seg in one directory, each a header
// and records (storage/segment.h, docs/formats.md). Appends go to the newest
// ("active") segment; every append is one batch of records, one write and
// one fdatasync. The log is never rewritten in place:
//  - a conflicting suffix is replaced by appending a record that starts at a
//    lower index; recovery replays records in order, so the later one wins;
//  - a prefix is removed by appending a marker record, then deleting the
//    segments that hold no live entry any more.
// So a crash can only ever cut the end of the newest segment, and the index
// in memory (storage/wal_index.h) is what replaying the files would give.
#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/check.h"
#include "keel/file_stores.h"
#include "storage/file_stores_fs.h"
#include "storage/fs.h"
#include "storage/record_cache.h"
#include "storage/segment.h"
#include "storage/segment_scanner.h"
#include "storage/wal_index.h"

namespace keel {

namespace storage {
namespace {

constexpr std::string_view kTemporarySuffix = ".tmp";
// Offsets in the index are 32-bit: no segment may grow beyond this.
constexpr std::uint64_t kMaxSegmentBytes = 0xFFFFFFFFull;
constexpr std::uint64_t kMinSegmentBytes = 128;

std::string text(std::uint64_t value) { return std::to_string(value); }

// Entries [begin, end) of a batch that go into one record.
struct PlannedRecord {
  std::size_t begin = 0;
  std::size_t end = 0;
  std::uint64_t payload_bytes = 0;
};

// Packs entries greedily into records of at most max_record_bytes payload
// bytes; an entry larger than that gets a record of its own.
std::vector<PlannedRecord> plan_records(std::span<const LogEntry> entries,
                                        std::uint64_t max_record_bytes) {
  std::vector<PlannedRecord> records;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::uint64_t bytes = encoded_entry_bytes(entries[i]);
    if (records.empty() || records.back().payload_bytes + bytes > max_record_bytes) {
      records.push_back(PlannedRecord{i, i, 0});
    }
    records.back().end = i + 1;
    records.back().payload_bytes += bytes;
  }
  return records;
}

std::uint64_t batch_bytes(const std::vector<PlannedRecord>& records) {
  std::uint64_t bytes = 0;
  for (const PlannedRecord& record : records) bytes += kRecordHeaderBytes + record.payload_bytes;
  return bytes;
}

// A record of a batch seen by recovery, waiting for the batch's last record.
struct PendingRecord {
  RecordHeader header;
  std::uint64_t offset = 0;
};

struct Segment {
  std::string path;
  std::unique_ptr<File> file;
};

class Wal final : public WalLogStore {
 public:
  Wal(std::string dir, WalOptions options, std::shared_ptr<FileSystem> fs)
      : dir_(std::move(dir)),
        options_(std::move(options)),
        fs_(std::move(fs)),
        cache_(options_.read_cache_bytes) {}

  Status recover();

  Index first_index() const override {
    std::lock_guard lock(mutex_);
    return index_.empty() && index_.base().is_zero() ? Index(0) : index_.base().next();
  }

  Index last_index() const override {
    std::lock_guard lock(mutex_);
    return index_.last();
  }

  std::size_t segment_count() const override {
    std::lock_guard lock(mutex_);
    return segments_.size();
  }

  Result<std::vector<LogEntry>> read(Index from, Index to) const override;
  Status append(std::span<const LogEntry> entries) override;
  Status truncate_prefix(Index up_to) override;
  Status reset(Index base) override;

 private:
  // Recovery.
  Status remove_temporary_files(const std::vector<std::string>& names);
  Status replay_segment(std::uint32_t sequence, bool last);
  Status apply_batch(std::uint32_t sequence, const std::vector<PendingRecord>& batch);
  Status check_segment_end(std::uint32_t sequence, const SegmentScan& scan,
                           std::optional<std::uint64_t> open_batch, bool last) const;
  Status settle_last_segment(std::uint32_t sequence, const SegmentScan& scan, std::uint64_t cut_at);
  Status check_log_start(const std::vector<std::uint32_t>& sequences, std::size_t tail) const;
  Status remove_segments_before_hole(const std::vector<std::uint32_t>& sequences, std::size_t tail);

  // Writing.
  Status check_append(std::span<const LogEntry> entries) const;
  Status write_and_sync(const std::string& bytes);
  Status roll_over(std::uint64_t batch_bytes);
  Status remove_dead_segments();
  Status refuse(const char* operation) const;
  Status fail(Status status);

  // Reading.
  Result<std::shared_ptr<const DecodedRecord>> load_record(RecordLocation location) const;
  Status corruption_at(std::uint32_t sequence, std::uint64_t offset, const std::string& what) const;

  const std::string dir_;
  const WalOptions options_;
  const std::shared_ptr<FileSystem> fs_;

  mutable std::mutex mutex_;
  std::map<std::uint32_t, Segment> segments_;  // by sequence, all open
  WalIndex index_;
  mutable RecordCache cache_;
  std::uint32_t active_ = 0;           // the segment appends go to (0: none yet)
  std::uint64_t write_offset_ = 0;     // where the next record goes in it
  std::uint64_t active_capacity_ = 0;  // its preallocated size
  // Set by the first failed write or sync; every later write refuses.
  std::optional<Status> failure_;
  std::string write_buffer_;  // reused by every append: no allocation per batch
};

// ---- recovery ----------------------------------------------------------------

Status Wal::recover() {
  Result<std::vector<std::string>> names = fs_->list_dir(dir_);
  if (!names.is_ok()) return names.status();
  Status cleaned = remove_temporary_files(*names);
  if (!cleaned.is_ok()) return cleaned;
  std::vector<std::uint32_t> sequences;
  for (const std::string& name : *names) {
    std::optional<std::uint64_t> sequence = parse_segment_file_name(name);
    if (!sequence) continue;
    if (*sequence == 0 || *sequence > 0xFFFFFFFFull) {
      return Status::corruption("WAL " + dir_ + ": segment " + name +
                                " has an impossible sequence");
    }
    sequences.push_back(static_cast<std::uint32_t>(*sequence));
  }
  std::sort(sequences.begin(), sequences.end());
  // Compaction deletes segments oldest first and syncs the directory once,
  // so a crash can persist the unlinks in any order: a hole may separate
  // segments that were being deleted from the rest. Replay the consecutive
  // run after the last hole; what lies before it must prove dead (below).
  std::size_t tail = 0;
  for (std::size_t i = 1; i < sequences.size(); ++i) {
    if (sequences[i] != sequences[i - 1] + 1) tail = i;
  }
  for (std::size_t i = tail; i < sequences.size(); ++i) {
    Status replayed = replay_segment(sequences[i], i + 1 == sequences.size());
    if (!replayed.is_ok()) return replayed;
  }
  index_.finish_replay();
  Status whole = check_log_start(sequences, tail);
  if (!whole.is_ok()) return whole;
  if (tail > 0) {
    Status removed = remove_segments_before_hole(sequences, tail);
    if (!removed.is_ok()) return removed;
  }
  if (active_ == 0 && !sequences.empty()) active_ = sequences.back();
  if (write_offset_ == 0) return roll_over(0);  // no segment appends can continue in
  return Status::ok();
}

// The replayed log must start right after the newest prefix-removal marker
// (at entry 1 if no prefix was ever removed). A later start means entries
// that were live sat in a segment that is gone: a hole above the marker, or
// a missing oldest segment. Segments before a hole hold nothing live only
// if the run after it reaches back to the marker.
Status Wal::check_log_start(const std::vector<std::uint32_t>& sequences, std::size_t tail) const {
  const std::optional<Index> marker = index_.newest_marker();
  const Index expected = marker.value_or(Index(0));
  if (index_.base() == expected) return Status::ok();
  std::string where;
  if (tail > 0) {
    where = "segment " + segment_file_name(sequences[tail - 1] + 1) + " is missing between " +
            segment_file_name(sequences[tail - 1]) + " and " + segment_file_name(sequences[tail]);
  } else {
    where = "the oldest segment left, " + segment_file_name(sequences.front()) +
            ", starts after entry " + text(index_.base().value);
  }
  const std::string why =
      marker ? "the newest prefix-removal marker says the log starts after entry " +
                   text(expected.value)
             : "no prefix was ever removed, so the log starts at entry 1";
  return Status::corruption("WAL " + dir_ + ": " + where + ", but " + why + ": entries " +
                            text(expected.next().value) + ".." + text(index_.base().value) +
                            " cannot all be recovered; refusing to open");
}

// Finishes the compaction a crash interrupted: the segments before the
// hole hold nothing live (check_log_start proved it).
Status Wal::remove_segments_before_hole(const std::vector<std::uint32_t>& sequences,
                                        std::size_t tail) {
  for (std::size_t i = 0; i < tail; ++i) {
    Status status = fs_->remove(join_path(dir_, segment_file_name(sequences[i])));
    if (!status.is_ok()) return status;
  }
  return fs_->sync_dir(dir_);
}

// A segment still named *.tmp was never renamed into place, so it holds no
// record: rollover writes records only after the rename is durable.
Status Wal::remove_temporary_files(const std::vector<std::string>& names) {
  bool removed = false;
  for (const std::string& name : names) {
    if (name.size() <= kTemporarySuffix.size() || !name.ends_with(kTemporarySuffix)) continue;
    if (!parse_segment_file_name(name.substr(0, name.size() - kTemporarySuffix.size()))) continue;
    Status status = fs_->remove(join_path(dir_, name));
    if (!status.is_ok()) return status;
    removed = true;
  }
  return removed ? fs_->sync_dir(dir_) : Status::ok();
}

Status Wal::replay_segment(std::uint32_t sequence, bool last) {
  const std::string path = join_path(dir_, segment_file_name(sequence));
  Result<std::unique_ptr<File>> file =
      fs_->open(path, last ? OpenMode::kReadWrite : OpenMode::kRead);
  if (!file.is_ok()) return file.status();
  std::string header(kSegmentHeaderBytes, '\0');
  Result<std::size_t> read = (*file)->read_at(0, std::span<char>(header.data(), header.size()));
  if (!read.is_ok()) return read.status();
  header.resize(*read);
  Status valid = check_segment_header(header, sequence, path);
  if (!valid.is_ok()) return valid;
  segments_[sequence] = Segment{path, std::move(file).value()};

  // Records are applied a whole batch at a time: a batch whose last record
  // is missing was never acknowledged and must not be half-present.
  std::vector<PendingRecord> batch;
  std::uint64_t batch_start = 0;
  Result<SegmentScan> scan = scan_segment(
      *segments_[sequence].file, sequence, options_.recovery_read_chunk_bytes,
      [&](const ScannedRecord& record) -> Status {
        if (batch.empty()) batch_start = record.offset;
        if (record.offset - record.header.batch_offset_back != batch_start) {
          return corruption_at(sequence, record.offset,
                               "record belongs to a batch starting at offset " +
                                   text(record.offset - record.header.batch_offset_back) +
                                   ", but the open batch starts at " + text(batch_start));
        }
        batch.push_back(PendingRecord{record.header, record.offset});
        if (!record.header.batch_end()) return Status::ok();
        Status applied = apply_batch(sequence, batch);
        batch.clear();
        return applied;
      });
  if (!scan.is_ok()) return scan.status();
  const std::optional<std::uint64_t> open_batch =
      batch.empty() ? std::nullopt : std::optional<std::uint64_t>(batch_start);
  Status end = check_segment_end(sequence, *scan, open_batch, last);
  if (!end.is_ok() || !last) return end;
  return settle_last_segment(sequence, *scan, open_batch.value_or(scan->valid_end));
}

// Where a segment stops holding valid records decides between a torn write
// (allowed only at the very end of the log) and damage (docs/formats.md,
// "Recovery"). `open_batch` is the offset of a batch whose last record
// never came.
Status Wal::check_segment_end(std::uint32_t sequence, const SegmentScan& scan,
                              std::optional<std::uint64_t> open_batch, bool last) const {
  if (scan.end == SegmentEnd::kDamaged && (!last || scan.later_batch_record)) {
    std::string why = "damaged record";
    if (scan.later_batch_record) {
      why += " (a record written after it, at offset " + text(*scan.later_batch_record) +
             ", is intact, so this was acknowledged data, not a torn write)";
    } else {
      why += " in a segment that is not the last";
    }
    return corruption_at(sequence, scan.valid_end, why + "; refusing to open");
  }
  if (open_batch && !last) {
    return corruption_at(sequence, *open_batch,
                         "batch is cut short in a segment that is not the last");
  }
  return Status::ok();
}

Status Wal::apply_batch(std::uint32_t sequence, const std::vector<PendingRecord>& batch) {
  for (const PendingRecord& record : batch) {
    if (record.header.kind == RecordKind::kPrefixRemoved) {
      index_.replay_prefix_removed(Index(record.header.first_index));
      continue;
    }
    if (record.header.kind == RecordKind::kReset) {
      index_.replay_reset(Index(record.header.first_index));
      continue;
    }
    const RecordLocation location{sequence, static_cast<std::uint32_t>(record.offset)};
    Status replayed =
        index_.replay_record(Index(record.header.first_index), record.header.entry_count, location);
    if (!replayed.is_ok()) return corruption_at(sequence, record.offset, replayed.message());
  }
  return Status::ok();
}

// The newest segment may end in a torn batch (cut it off and sync, so that
// the next open sees a clean end) or in preallocated zeros (appends continue
// there). A segment that ends exactly at its data gets a successor.
Status Wal::settle_last_segment(std::uint32_t sequence, const SegmentScan& scan,
                                std::uint64_t cut_at) {
  const bool torn = scan.end == SegmentEnd::kDamaged || cut_at < scan.valid_end;
  if (!torn) {
    if (scan.end == SegmentEnd::kZeros) {
      active_ = sequence;
      write_offset_ = scan.valid_end;
      active_capacity_ = scan.file_bytes;
    }
    return Status::ok();
  }
  File& file = *segments_[sequence].file;
  Status cut = file.truncate(cut_at);
  if (!cut.is_ok()) return cut;
  return file.sync();
}

// ---- writing -----------------------------------------------------------------

Status Wal::refuse(const char* operation) const {
  return Status::io_error(
      std::string(operation) + ": the WAL in " + dir_ +
      " refuses writes after an earlier failure (fail-stop): " + failure_->message());
}

// After a failed write or sync the page cache may hold bytes the disk never
// got, and a retried fsync can report success without writing them (Linux
// clears the error once reported). So the first failure is final: the
// caller must reopen, which recovers from what the disk really holds.
Status Wal::fail(Status status) {
  if (!failure_) failure_ = status;
  return status;
}

Status Wal::check_append(std::span<const LogEntry> entries) const {
  const Index first = entries.front().index;
  if (first <= index_.base() || first > index_.last().next()) {
    return Status::invalid_argument("append: first entry " + text(first.value) + " must be in [" +
                                    text(index_.base().next().value) + ", " +
                                    text(index_.last().next().value) + "]");
  }
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (i > 0 && entries[i].index != entries[i - 1].index.next()) {
      return Status::invalid_argument("append: entry " + text(entries[i].index.value) +
                                      " does not follow entry " + text(entries[i - 1].index.value));
    }
    if (encoded_entry_bytes(entries[i]) > kMaxRecordPayloadBytes) {
      return Status::invalid_argument("append: entry " + text(entries[i].index.value) + " of " +
                                      text(entries[i].data.size()) + " bytes exceeds the WAL's " +
                                      text(kMaxRecordPayloadBytes) + "-byte record limit");
    }
  }
  return Status::ok();
}

// Group commit: one write and one fdatasync for the whole batch, whatever
// its size (the segment was preallocated, so the sync writes no metadata).
Status Wal::write_and_sync(const std::string& bytes) {
  File& file = *segments_.at(active_).file;
  Status written = file.write_at(write_offset_, bytes);
  if (!written.is_ok()) return fail(written);
  Status synced = file.sync_data();
  if (!synced.is_ok()) return fail(synced);
  write_offset_ += bytes.size();
  return Status::ok();
}

Status Wal::append(std::span<const LogEntry> entries) {
  std::lock_guard lock(mutex_);
  if (failure_) return refuse("append");
  if (entries.empty()) return Status::ok();
  Status valid = check_append(entries);
  if (!valid.is_ok()) return valid;
  const std::vector<PlannedRecord> records = plan_records(entries, options_.max_record_bytes);
  const std::uint64_t bytes = batch_bytes(records);
  if (kSegmentHeaderBytes + bytes > kMaxSegmentBytes) {
    return Status::invalid_argument("append: a batch of " + text(bytes) +
                                    " bytes does not fit in one segment");
  }
  if (write_offset_ + bytes > active_capacity_) {
    Status rolled = roll_over(bytes);
    if (!rolled.is_ok()) return fail(rolled);
  }
  write_buffer_.clear();
  const RecordPlace batch{active_, write_offset_, write_offset_};
  for (std::size_t i = 0; i < records.size(); ++i) {
    const PlannedRecord& record = records[i];
    const RecordPlace place{active_, write_offset_ + write_buffer_.size(), batch.batch_start};
    encode_entries_record(entries.subspan(record.begin, record.end - record.begin),
                          record.payload_bytes, i + 1 == records.size(), place, write_buffer_);
  }
  Status written = write_and_sync(write_buffer_);
  if (!written.is_ok()) return written;
  std::uint64_t offset = batch.batch_start;
  for (const PlannedRecord& record : records) {
    index_.append_record(entries[record.begin].index, record.end - record.begin,
                         RecordLocation{active_, static_cast<std::uint32_t>(offset)});
    offset += kRecordHeaderBytes + record.payload_bytes;
  }
  return Status::ok();
}

Status Wal::truncate_prefix(Index up_to) {
  std::lock_guard lock(mutex_);
  if (failure_) return refuse("truncate_prefix");
  if (up_to <= index_.base()) return Status::ok();
  if (write_offset_ + kRecordHeaderBytes > active_capacity_) {
    Status rolled = roll_over(kRecordHeaderBytes);
    if (!rolled.is_ok()) return fail(rolled);
  }
  write_buffer_.clear();
  encode_prefix_removed_record(up_to, RecordPlace{active_, write_offset_, write_offset_},
                               write_buffer_);
  Status written = write_and_sync(write_buffer_);
  if (!written.is_ok()) return written;
  index_.remove_prefix(up_to);
  Status removed = remove_dead_segments();
  if (!removed.is_ok()) return fail(removed);
  return Status::ok();
}

Status Wal::reset(Index base) {
  std::lock_guard lock(mutex_);
  if (failure_) return refuse("reset");
  if (write_offset_ + kRecordHeaderBytes > active_capacity_) {
    Status rolled = roll_over(kRecordHeaderBytes);
    if (!rolled.is_ok()) return fail(rolled);
  }
  write_buffer_.clear();
  encode_reset_record(base, RecordPlace{active_, write_offset_, write_offset_}, write_buffer_);
  Status written = write_and_sync(write_buffer_);
  if (!written.is_ok()) return written;
  index_.reset(base);
  Status removed = remove_dead_segments();
  if (!removed.is_ok()) return fail(removed);
  return Status::ok();
}

// A new segment is made whole under a temporary name (preallocated, header
// written, synced) and only then renamed into place, and the directory
// synced before any record goes into it. So a segment with its real name
// always has a durable header, and a crash during rollover leaves at most a
// *.tmp file, which recovery deletes.
Status Wal::roll_over(std::uint64_t batch_bytes) {
  if (active_ == 0xFFFFFFFFu)
    return Status::io_error("WAL " + dir_ + ": segment numbers exhausted");
  const std::uint32_t sequence = active_ + 1;
  const std::uint64_t capacity =
      std::max(options_.segment_size_bytes, kSegmentHeaderBytes + batch_bytes);
  const std::string path = join_path(dir_, segment_file_name(sequence));
  const std::string temporary = path + std::string(kTemporarySuffix);
  {
    Result<std::unique_ptr<File>> file = fs_->open(temporary, OpenMode::kCreateNew);
    if (!file.is_ok()) return file.status();
    Status status = (*file)->allocate(capacity);
    if (status.is_ok()) status = (*file)->write_at(0, encode_segment_header(sequence));
    if (status.is_ok()) status = (*file)->sync();
    if (!status.is_ok()) return status;
  }
  Status status = fs_->rename(temporary, path);
  if (status.is_ok()) status = fs_->sync_dir(dir_);
  if (!status.is_ok()) return status;
  Result<std::unique_ptr<File>> file = fs_->open(path, OpenMode::kReadWrite);
  if (!file.is_ok()) return file.status();
  segments_[sequence] = Segment{path, std::move(file).value()};
  active_ = sequence;
  write_offset_ = kSegmentHeaderBytes;
  active_capacity_ = capacity;
  return Status::ok();
}

// Segments older than the one holding the oldest live entry hold nothing
// live. They are removed oldest first, so a crash midway leaves consecutive
// segments, and the directory is synced so that they cannot come back.
Status Wal::remove_dead_segments() {
  const std::uint32_t keep_from = std::min(index_.oldest_segment().value_or(active_), active_);
  bool removed = false;
  while (!segments_.empty() && segments_.begin()->first < keep_from) {
    const std::string path = segments_.begin()->second.path;
    segments_.erase(segments_.begin());
    Status status = fs_->remove(path);
    if (!status.is_ok()) return status;
    removed = true;
  }
  cache_.erase_segments_before(keep_from);
  return removed ? fs_->sync_dir(dir_) : Status::ok();
}

// ---- reading -----------------------------------------------------------------

Status Wal::corruption_at(std::uint32_t sequence, std::uint64_t offset,
                          const std::string& what) const {
  return Status::corruption("WAL segment " + join_path(dir_, segment_file_name(sequence)) +
                            ": record at offset " + text(offset) + ": " + what);
}

Result<std::shared_ptr<const DecodedRecord>> Wal::load_record(RecordLocation location) const {
  if (auto cached = cache_.find(location)) return cached;
  const File& file = *segments_.at(location.segment).file;
  std::string bytes(kRecordHeaderBytes, '\0');
  Result<std::size_t> read =
      file.read_at(location.offset, std::span<char>(bytes.data(), bytes.size()));
  if (!read.is_ok()) return read.status();
  bytes.resize(*read);
  std::optional<RecordHeader> header =
      decode_record_header(bytes, location.segment, location.offset);
  if (!header || header->kind != RecordKind::kEntries) {
    return corruption_at(location.segment, location.offset, "bad record header on read");
  }
  bytes.assign(header->payload_bytes, '\0');
  read = file.read_at(location.offset + kRecordHeaderBytes,
                      std::span<char>(bytes.data(), bytes.size()));
  if (!read.is_ok()) return read.status();
  bytes.resize(*read);
  if (!payload_matches(*header, bytes)) {
    return corruption_at(location.segment, location.offset, "payload checksum mismatch on read");
  }
  Result<std::vector<LogEntry>> entries =
      decode_entries(*header, bytes, "WAL record at offset " + text(location.offset));
  if (!entries.is_ok())
    return corruption_at(location.segment, location.offset, entries.status().message());
  auto record = std::make_shared<const DecodedRecord>(
      DecodedRecord{Index(header->first_index), std::move(entries).value()});
  cache_.insert(location, record);
  return record;
}

Result<std::vector<LogEntry>> Wal::read(Index from, Index to) const {
  std::lock_guard lock(mutex_);
  if (from > to) {
    return Status::invalid_argument("read: empty range [" + text(from.value) + ", " +
                                    text(to.value) + "]");
  }
  if (from <= index_.base() || to > index_.last()) {
    return Status::not_found("read: [" + text(from.value) + ", " + text(to.value) +
                             "] is not within the stored [" + text(index_.base().next().value) +
                             ", " + text(index_.last().value) + "]");
  }
  std::vector<LogEntry> out;
  out.reserve(static_cast<std::size_t>(to - from + 1));
  for (Index next = from; next <= to;) {
    const WalIndex::Found found = index_.find(next);
    Result<std::shared_ptr<const DecodedRecord>> record = load_record(found.location);
    if (!record.is_ok()) return record.status();
    const DecodedRecord& decoded = **record;
    const Index stop = std::min(to, found.run_last);
    if (next < decoded.first || stop - decoded.first >= decoded.entries.size()) {
      return corruption_at(found.location.segment, found.location.offset,
                           "does not hold entries " + text(next.value) + ".." + text(stop.value));
    }
    for (Index i = next; i <= stop; i = i.next()) out.push_back(decoded.entries[i - decoded.first]);
    next = stop.next();
  }
  return out;
}

}  // namespace
}  // namespace storage

Status WalOptions::validate() const {
  if (segment_size_bytes < storage::kMinSegmentBytes ||
      segment_size_bytes > storage::kMaxSegmentBytes) {
    return Status::invalid_argument("WalOptions: segment_size_bytes must be in [" +
                                    std::to_string(storage::kMinSegmentBytes) + ", " +
                                    std::to_string(storage::kMaxSegmentBytes) + "]");
  }
  if (max_record_bytes == 0 || max_record_bytes > storage::kMaxRecordPayloadBytes) {
    return Status::invalid_argument("WalOptions: max_record_bytes must be in [1, " +
                                    std::to_string(storage::kMaxRecordPayloadBytes) + "]");
  }
  if (recovery_read_chunk_bytes < 4096 || recovery_read_chunk_bytes > (1ULL << 30)) {
    return Status::invalid_argument(
        "WalOptions: recovery_read_chunk_bytes must be in [4096, 1 GiB]");
  }
  return Status::ok();
}

Result<std::shared_ptr<WalLogStore>> storage::open_wal_log_store(
    const std::string& dir, WalOptions options, std::shared_ptr<FileSystem> file_system) {
  KEEL_CHECK("open_wal_log_store is given a file system", file_system != nullptr);
  Status valid = options.validate();
  if (!valid.is_ok()) return valid;
  Status made = create_dirs_durably(*file_system, dir);
  if (!made.is_ok()) return made;
  auto wal = std::make_shared<Wal>(dir, std::move(options), std::move(file_system));
  Status recovered = wal->recover();
  if (!recovered.is_ok()) return recovered;
  return std::shared_ptr<WalLogStore>(std::move(wal));
}

Result<std::shared_ptr<WalLogStore>> WalLogStore::open(const std::string& dir, WalOptions options) {
  return storage::open_wal_log_store(dir, std::move(options), storage::make_posix_file_system());
}

}  // namespace keel
