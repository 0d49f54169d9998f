// The out-of-line parts of <keel/types.h>. They live with the core because the
// core is the bottom layer: everything else depends on it, it on nothing.
#include "keel/types.h"

#include <algorithm>

namespace keel {

const char* to_string(EntryType type) {
  switch (type) {
    case EntryType::kCommand: return "cmd";
    case EntryType::kTermStart: return "term-start";
    case EntryType::kBarrier: return "barrier";
    case EntryType::kConfiguration: return "config";
    case EntryType::kRestore: return "restore";
  }
  return "unknown";
}

bool Configuration::contains(ServerId id) const {
  return std::any_of(servers.begin(), servers.end(),
                     [id](const Server& server) { return server.id == id; });
}

bool Configuration::is_voter(ServerId id) const {
  return std::any_of(servers.begin(), servers.end(), [id](const Server& server) {
    return server.id == id && server.suffrage == Suffrage::kVoter;
  });
}

std::vector<ServerId> Configuration::voters() const {
  std::vector<ServerId> ids;
  for (const Server& server : servers) {
    if (server.suffrage == Suffrage::kVoter) ids.push_back(server.id);
  }
  return ids;
}

std::size_t Configuration::voter_count() const {
  return static_cast<std::size_t>(std::count_if(servers.begin(), servers.end(), [](const Server& s) {
    return s.suffrage == Suffrage::kVoter;
  }));
}

}  // namespace keel
