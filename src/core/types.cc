// The out-of-line parts of <keel/types.h>. They live with the core because the
// core is the bottom layer: everything else depends on it, it on nothing.
#include "keel/types.h"

#include <algorithm>

namespace keel {

const char* to_string(EntryType type) {
  switch (type) {
    case EntryType::kCommand:
      return "cmd";
    case EntryType::kTermStart:
      return "term-start";
    case EntryType::kBarrier:
      return "barrier";
    case EntryType::kConfiguration:
      return "config";
    case EntryType::kRestore:
      return "restore";
  }
  return "unknown";
}

bool Configuration::contains(ServerId id) const { return find(id) != nullptr; }

bool Configuration::is_voter(ServerId id) const {
  auto voter = [id](const Server& server) {
    return server.id == id && server.suffrage == Suffrage::kVoter;
  };
  return std::any_of(servers.begin(), servers.end(), voter) ||
         std::any_of(outgoing.begin(), outgoing.end(), voter);
}

namespace {

std::vector<ServerId> voters_of(const std::vector<Server>& servers) {
  std::vector<ServerId> ids;
  for (const Server& server : servers) {
    if (server.suffrage == Suffrage::kVoter) ids.push_back(server.id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

}  // namespace

std::vector<ServerId> Configuration::voters() const {
  std::vector<ServerId> ids = voters_of(servers);
  for (ServerId id : voters_of(outgoing)) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::vector<ServerId> Configuration::incoming_voters() const { return voters_of(servers); }

std::vector<ServerId> Configuration::outgoing_voters() const { return voters_of(outgoing); }

const Server* Configuration::find(ServerId id) const {
  for (const Server& server : servers) {
    if (server.id == id) return &server;
  }
  for (const Server& server : outgoing) {
    if (server.id == id) return &server;
  }
  return nullptr;
}

std::vector<Server> Configuration::members() const {
  std::vector<Server> all = servers;
  for (const Server& server : outgoing) {
    const bool known =
        std::any_of(all.begin(), all.end(), [&](const Server& s) { return s.id == server.id; });
    if (!known) all.push_back(server);
  }
  return all;
}

const char* to_string(ConfigurationChange::Kind kind) {
  switch (kind) {
    case ConfigurationChange::Kind::kAddVoter:
      return "add-voter";
    case ConfigurationChange::Kind::kAddLearner:
      return "add-learner";
    case ConfigurationChange::Kind::kDemoteVoter:
      return "demote-voter";
    case ConfigurationChange::Kind::kRemoveServer:
      return "remove-server";
  }
  return "unknown";
}

}  // namespace keel
