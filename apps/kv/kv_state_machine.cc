// apps/kv/kv_state_machine.cc — see kv_state_machine.h. Encodings: docs/kv.md.
#include "kv/kv_state_machine.h"

#include <cstring>
#include <utility>

namespace keel::kv {
namespace {

constexpr std::uint8_t kCommandFormat = 1;
constexpr std::uint8_t kSnapshotFormat = 1;

enum class Op : std::uint8_t { kPut = 1, kDelete = 2, kSetHttpAddress = 3 };

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_bytes(std::string& out, std::string_view bytes) {
  put_u64(out, bytes.size());
  out.append(bytes);
}

// Reads what put_u64 / put_bytes wrote; every read fails past the end.
class Decoder {
 public:
  explicit Decoder(std::string_view bytes) : bytes_(bytes) {}
  bool u8(std::uint8_t& v) {
    if (bytes_.empty()) return false;
    v = static_cast<std::uint8_t>(bytes_.front());
    bytes_.remove_prefix(1);
    return true;
  }
  bool u64(std::uint64_t& v) {
    if (bytes_.size() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<std::uint8_t>(bytes_[i])} << (8 * i);
    bytes_.remove_prefix(8);
    return true;
  }
  bool bytes(std::string& v) {
    std::uint64_t size = 0;
    if (!u64(size) || size > bytes_.size()) return false;
    v.assign(bytes_.substr(0, size));
    bytes_.remove_prefix(size);
    return true;
  }
  bool done() const { return bytes_.empty(); }

 private:
  std::string_view bytes_;
};

std::string encode_write(Op op, std::string_view key, std::string_view value,
                         std::optional<std::uint64_t> cas) {
  std::string out;
  out.reserve(2 + 9 + 16 + key.size() + value.size());
  out.push_back(static_cast<char>(kCommandFormat));
  out.push_back(static_cast<char>(op));
  out.push_back(cas ? 1 : 0);
  put_u64(out, cas.value_or(0));
  put_bytes(out, key);
  put_bytes(out, value);
  return out;
}

class MapSnapshot final : public FsmSnapshot {
 public:
  explicit MapSnapshot(std::string bytes) : bytes_(std::move(bytes)) {}
  Status persist(SnapshotWriter& out) override {
    constexpr std::size_t kPiece = 1 << 20;
    for (std::size_t at = 0; at < bytes_.size(); at += kPiece) {
      Status s = out.write(std::string_view(bytes_).substr(at, kPiece));
      if (!s.is_ok()) return s;
    }
    return Status();
  }

 private:
  std::string bytes_;
};

}  // namespace

std::string encode_put(std::string_view key, std::string_view value,
                       std::optional<std::uint64_t> cas) {
  return encode_write(Op::kPut, key, value, cas);
}

std::string encode_delete(std::string_view key, std::optional<std::uint64_t> cas) {
  return encode_write(Op::kDelete, key, {}, cas);
}

std::string encode_set_http_address(std::uint64_t id, std::string_view address) {
  std::string out;
  out.push_back(static_cast<char>(kCommandFormat));
  out.push_back(static_cast<char>(Op::kSetHttpAddress));
  put_u64(out, id);
  put_bytes(out, address);
  return out;
}

std::string encode_outcome(const ApplyOutcome& outcome) {
  std::string out;
  out.push_back(static_cast<char>(outcome.code));
  put_u64(out, outcome.version);
  return out;
}

Result<ApplyOutcome> decode_outcome(std::string_view bytes) {
  Decoder in(bytes);
  std::uint8_t code = 0;
  ApplyOutcome outcome;
  if (!in.u8(code) || !in.u64(outcome.version) || !in.done() || code > 2) {
    return Status::corruption("keel-kv: a response that is not an apply outcome");
  }
  outcome.code = static_cast<ApplyOutcome::Code>(code);
  return outcome;
}

KvStateMachine::KvStateMachine(std::uint64_t max_snapshot_bytes)
    : max_snapshot_bytes_(max_snapshot_bytes) {}

std::string KvStateMachine::apply(const LogEntry& entry) {
  const std::uint64_t index = entry.index.value;
  Decoder in(entry.data.view());
  std::uint8_t format = 0;
  std::uint8_t op = 0;
  if (!in.u8(format) || format != kCommandFormat || !in.u8(op)) {
    return encode_outcome({ApplyOutcome::Code::kBadCommand, 0});
  }
  if (op == static_cast<std::uint8_t>(Op::kSetHttpAddress)) {
    std::uint64_t id = 0;
    std::string address;
    if (!in.u64(id) || !in.bytes(address) || !in.done()) {
      return encode_outcome({ApplyOutcome::Code::kBadCommand, 0});
    }
    std::unique_lock lock(mutex_);
    http_addresses_[id] = std::move(address);
    return encode_outcome({ApplyOutcome::Code::kOk, index});
  }
  std::uint8_t has_cas = 0;
  std::uint64_t cas = 0;
  std::string key;
  std::string value;
  if ((op != static_cast<std::uint8_t>(Op::kPut) && op != static_cast<std::uint8_t>(Op::kDelete)) ||
      !in.u8(has_cas) || has_cas > 1 || !in.u64(cas) || !in.bytes(key) || !in.bytes(value) ||
      !in.done()) {
    return encode_outcome({ApplyOutcome::Code::kBadCommand, 0});
  }
  {
    std::unique_lock lock(mutex_);
    auto it = data_.find(key);
    const std::uint64_t current = it == data_.end() ? 0 : it->second.version;
    if (has_cas && cas != current) return encode_outcome({ApplyOutcome::Code::kCasFailed, current});
    if (op == static_cast<std::uint8_t>(Op::kPut)) {
      if (it == data_.end()) {
        data_.emplace(key, KeyValue{std::move(value), index});
      } else {
        it->second = KeyValue{std::move(value), index};
      }
    } else if (it != data_.end()) {
      data_.erase(it);
    }
  }
  note_change(key);
  return encode_outcome({ApplyOutcome::Code::kOk, index});
}

Result<std::unique_ptr<FsmSnapshot>> KvStateMachine::snapshot() {
  // Encoded here, on the applier's thread: a copy of the state as of now.
  std::string out;
  out.push_back(static_cast<char>(kSnapshotFormat));
  std::shared_lock lock(mutex_);
  put_u64(out, data_.size());
  for (const auto& [key, kv] : data_) {
    put_bytes(out, key);
    put_bytes(out, kv.value);
    put_u64(out, kv.version);
  }
  put_u64(out, http_addresses_.size());
  for (const auto& [id, address] : http_addresses_) {
    put_u64(out, id);
    put_bytes(out, address);
  }
  return std::unique_ptr<FsmSnapshot>(std::make_unique<MapSnapshot>(std::move(out)));
}

Status KvStateMachine::restore(const SnapshotMeta& /*meta*/, SnapshotReader& reader) {
  Result<std::string> bytes = read_whole_snapshot(reader, max_snapshot_bytes_);
  if (!bytes.is_ok()) return bytes.status();
  Decoder in(*bytes);
  std::uint8_t format = 0;
  std::uint64_t count = 0;
  std::map<std::string, KeyValue> data;
  std::map<std::uint64_t, std::string> addresses;
  if (!in.u8(format) || format != kSnapshotFormat || !in.u64(count)) {
    return Status::corruption("keel-kv: not a keel-kv snapshot (format byte)");
  }
  for (std::uint64_t i = 0; i < count; ++i) {
    std::string key;
    KeyValue kv;
    if (!in.bytes(key) || !in.bytes(kv.value) || !in.u64(kv.version)) {
      return Status::corruption("keel-kv: snapshot cut short in key " + std::to_string(i));
    }
    data.emplace_hint(data.end(), std::move(key), std::move(kv));
  }
  if (!in.u64(count)) return Status::corruption("keel-kv: snapshot without addresses");
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint64_t id = 0;
    std::string address;
    if (!in.u64(id) || !in.bytes(address)) {
      return Status::corruption("keel-kv: snapshot cut short in address " + std::to_string(i));
    }
    addresses.emplace(id, std::move(address));
  }
  if (!in.done()) return Status::corruption("keel-kv: bytes after the end of the snapshot");
  {
    std::unique_lock lock(mutex_);
    data_ = std::move(data);
    http_addresses_ = std::move(addresses);
  }
  // Any watched key may have changed.
  std::lock_guard lock(wait_mutex_);
  wait_cv_.notify_all();
  return Status();
}

std::optional<KeyValue> KvStateMachine::get(const std::string& key) const {
  std::shared_lock lock(mutex_);
  auto it = data_.find(key);
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

std::uint64_t KvStateMachine::version_of(const std::string& key) const {
  std::shared_lock lock(mutex_);
  auto it = data_.find(key);
  return it == data_.end() ? 0 : it->second.version;
}

ListPage KvStateMachine::list(const std::string& prefix, const std::string& after,
                              std::size_t limit) const {
  ListPage page;
  if (limit == 0) return page;
  std::shared_lock lock(mutex_);
  auto it = after.empty() || after < prefix ? data_.lower_bound(prefix) : data_.upper_bound(after);
  for (; it != data_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    if (page.keys.size() == limit) {
      page.next_after = page.keys.back().first;
      break;
    }
    page.keys.emplace_back(it->first, it->second.version);
  }
  return page;
}

std::optional<std::string> KvStateMachine::http_address(std::uint64_t id) const {
  std::shared_lock lock(mutex_);
  auto it = http_addresses_.find(id);
  if (it == http_addresses_.end()) return std::nullopt;
  return it->second;
}

std::map<std::uint64_t, std::string> KvStateMachine::http_addresses() const {
  std::shared_lock lock(mutex_);
  return http_addresses_;
}

std::size_t KvStateMachine::key_count() const {
  std::shared_lock lock(mutex_);
  return data_.size();
}

bool KvStateMachine::try_begin_wait(std::size_t max_waiters) {
  std::lock_guard lock(wait_mutex_);
  if (waiters_ >= max_waiters) return false;
  ++waiters_;
  return true;
}

void KvStateMachine::end_wait() {
  std::lock_guard lock(wait_mutex_);
  --waiters_;
}

bool KvStateMachine::wait_for_change(const std::string& key, std::uint64_t observed_version,
                                     std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(wait_mutex_);
  ++watched_[key];
  const std::uint64_t epoch = release_epoch_;
  // Registered before looking: a change applied from here on wakes us.
  bool changed = false;
  wait_cv_.wait_until(lock, deadline, [&] {
    changed = version_of(key) != observed_version;
    return changed || release_epoch_ != epoch || closed_;
  });
  auto it = watched_.find(key);
  if (--it->second == 0) watched_.erase(it);
  return changed;
}

void KvStateMachine::note_change(const std::string& key) {
  std::lock_guard lock(wait_mutex_);
  if (watched_.count(key) != 0) wait_cv_.notify_all();
}

void KvStateMachine::release_waiters() {
  std::lock_guard lock(wait_mutex_);
  ++release_epoch_;
  wait_cv_.notify_all();
}

void KvStateMachine::close_waiters() {
  std::lock_guard lock(wait_mutex_);
  closed_ = true;
  wait_cv_.notify_all();
}

std::size_t KvStateMachine::waiters() const {
  std::lock_guard lock(wait_mutex_);
  return waiters_;
}

}  // namespace keel::kv
