#include "sim/kv_fsm.h"

#include <string_view>
#include <vector>

namespace keel::sim {

namespace {

std::vector<std::string> split(std::string_view text) {
  std::vector<std::string> words;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t space = text.find(' ', start);
    const std::size_t end = space == std::string_view::npos ? text.size() : space;
    words.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return words;
}

}  // namespace

std::string KvFsm::apply(const LogEntry& entry) {
  const std::vector<std::string> words = split(entry.data);
  if (words.size() == 3 && words[0] == "put") {
    data_[words[1]] = words[2];
    return "ok";
  }
  if (words.size() == 4 && words[0] == "cas") {
    auto it = data_.find(words[1]);
    if (it == data_.end() || it->second != words[2]) return "unchanged";
    it->second = words[3];
    return "swapped";
  }
  if (words.size() == 2 && words[0] == "del") {
    data_.erase(words[1]);
    return "ok";
  }
  return "error";
}

std::optional<std::string> KvFsm::get(const std::string& key) const {
  auto it = data_.find(key);
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

std::string KvFsm::put_command(const std::string& key, const std::string& value) {
  return "put " + key + " " + value;
}

std::string KvFsm::cas_command(const std::string& key, const std::string& expected,
                               const std::string& value) {
  return "cas " + key + " " + expected + " " + value;
}

std::string KvFsm::delete_command(const std::string& key) { return "del " + key; }

std::string KvFsm::encode_state(const std::map<std::string, std::string>& data) {
  std::string out;
  for (const auto& [key, value] : data) {
    for (const std::string* part : {&key, &value}) {
      out += std::to_string(part->size());
      out += ':';
      out += *part;
    }
  }
  return out;
}

Result<std::map<std::string, std::string>> KvFsm::decode_state(std::string_view bytes) {
  std::map<std::string, std::string> data;
  auto next = [&bytes](std::string& out) -> bool {
    const std::size_t colon = bytes.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 9) return false;
    std::size_t size = 0;
    for (char c : bytes.substr(0, colon)) {
      if (c < '0' || c > '9') return false;
      size = size * 10 + static_cast<std::size_t>(c - '0');
    }
    if (bytes.size() - colon - 1 < size) return false;
    out.assign(bytes.substr(colon + 1, size));
    bytes.remove_prefix(colon + 1 + size);
    return true;
  };
  while (!bytes.empty()) {
    std::string key;
    std::string value;
    if (!next(key) || !next(value)) return Status::corruption("KvFsm: malformed snapshot");
    data[std::move(key)] = std::move(value);
  }
  return data;
}

Result<std::unique_ptr<FsmSnapshot>> KvFsm::snapshot() {
  return std::unique_ptr<FsmSnapshot>(std::make_unique<CopiedSnapshot>(encode_state(data_)));
}

Status KvFsm::restore(const SnapshotMeta& /*meta*/, SnapshotReader& reader) {
  Result<std::string> bytes = read_whole_snapshot(reader, 1ULL << 30);
  if (!bytes.is_ok()) return bytes.status();
  Result<std::map<std::string, std::string>> data = decode_state(*bytes);
  if (!data.is_ok()) return data.status();
  data_ = std::move(data).value();
  return Status::ok();
}

}  // namespace keel::sim
