// The leader-ready event (DESIGN §1): a new leader says "ready" only once its
// term-start entry is committed and applied locally, so its state machine
// reflects every committed entry.
#include <gtest/gtest.h>

#include "test_util.h"

namespace keel::core {
namespace {

using namespace testutil;  // NOLINT(google-build-using-namespace): test vocabulary

std::vector<Event> leader_ready_events(const std::vector<Event>& events) {
  std::vector<Event> out;
  for (const Event& event : events) {
    if (event.kind == EventKind::kLeaderReady) out.push_back(event);
  }
  return out;
}

TEST(LeaderReady, AnnouncedOnlyOnceTheTermStartEntryIsCommittedAndApplied) {
  Node leader = make_node(1, 3);
  Ready elected = make_leader(leader);  // term-start entry written, not committed
  EXPECT_FALSE(has_event(elected.events, EventKind::kLeaderReady));

  leader.step(append_ack(2, 1, 1, 1));
  ASSERT_EQ(leader.commit_index(), I(1));
  Ready committed = leader.ready();
  ASSERT_EQ(committed.committed_entries.size(), 1u);
  EXPECT_EQ(committed.committed_entries[0].type, EntryType::kTermStart);
  EXPECT_FALSE(has_event(committed.events, EventKind::kLeaderReady));  // not applied yet
  leader.tick();
  EXPECT_FALSE(has_event(leader.ready().events, EventKind::kLeaderReady));

  leader.on_applied(I(1));
  std::vector<Event> ready = leader_ready_events(leader.ready().events);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].term, T(1));
  EXPECT_EQ(ready[0].index, I(1));
  EXPECT_EQ(ready[0].leader, S(1));
}

TEST(LeaderReady, NotAnnouncedWhileOnlyEntriesOfEarlierTermsAreApplied) {
  // Entries 1..2 of term 1 are on node 2 too, but the term-start 3/2 is not.
  Node leader = make_node(1, 3, plain_config(), log_with_terms({1, 1}));
  make_leader(leader);
  leader.step(append_ack(2, 1, 2, 2));
  EXPECT_EQ(leader.commit_index(), I(0));  // Figure 8: not by counting
  EXPECT_FALSE(has_event(drain(leader).events, EventKind::kLeaderReady));
  leader.step(append_ack(2, 1, 2, 3));
  Ready committed = drain(leader);  // commits 1..3; drain applies them
  EXPECT_EQ(committed.committed_entries.size(), 3u);
  EXPECT_EQ(leader_ready_events(leader.ready().events).size(), 1u);
}

TEST(LeaderReady, WaitsForTheLeadersOwnWriteEvenWhenFollowersCommittedTheEntry) {
  sim::CoreCluster cluster(cluster_options(3));
  cluster.set_manual_persist(S(1), true);
  cluster.campaign(S(1));
  for (int round = 0; round < 10 && !cluster.node(S(1)).is_leader(); ++round) {
    cluster.persist(S(1));  // term and vote, so the vote requests may leave
    cluster.deliver();
  }
  ASSERT_TRUE(cluster.node(S(1)).is_leader());
  ASSERT_TRUE(cluster.stabilize());
  EXPECT_EQ(cluster.node(S(1)).commit_index(), I(1));  // followers 2 and 3 wrote it
  EXPECT_TRUE(leader_ready_events(cluster.events(S(1))).empty());

  cluster.persist(S(1));
  std::vector<Event> ready = leader_ready_events(cluster.events(S(1)));
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].index, I(1));
}

TEST(LeaderReady, AnnouncedOncePerTermAndOnlyByTheLeader) {
  sim::CoreCluster cluster(cluster_options(3));
  elect_and_settle(cluster, S(1));
  for (int tick = 0; tick < 20; ++tick) {
    cluster.tick_all();
    cluster.stabilize();
  }
  EXPECT_EQ(leader_ready_events(cluster.events(S(1))).size(), 1u);
  EXPECT_TRUE(leader_ready_events(cluster.events(S(2))).empty());
  EXPECT_TRUE(leader_ready_events(cluster.events(S(3))).empty());
}

}  // namespace
}  // namespace keel::core
