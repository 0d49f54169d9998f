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

}  // namespace keel::sim
