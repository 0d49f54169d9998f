// SnapshotTransfers between a leader's and a follower's shell, on a
// ManualEnv: chunks within the bounds, a damaged chunk re-sent, a transfer
// that resumes where the follower is, a damaged whole refused with nothing
// installed, a leader change mid-transfer, and the idle timeout.
#include "runtime/snapshot_transfer.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "keel/env.h"
#include "keel/snapshot_store.h"

namespace keel::runtime {
namespace {

using namespace std::chrono_literals;

constexpr ServerId kLeader{1};
constexpr ServerId kFollower{2};

Config transfer_config() {
  Config config;
  config.max_snapshot_chunk_bytes = 1024;
  config.max_inflight_snapshot_chunks = 2;
  config.snapshot_transfer_idle_timeout = 500ms;
  return config;
}

// A snapshot of `size` patterned bytes in `store`.
SnapshotMeta store_snapshot(SnapshotStore& store, std::size_t size, Index index = Index{40},
                            Term term = Term{3}) {
  SnapshotMeta meta;
  meta.index = index;
  meta.term = term;
  meta.configuration.servers = {Server{kLeader, "a"}, Server{kFollower, "b"}};
  meta.configuration_index = Index{1};
  auto sink = store.create(meta).value();
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>('a' + i % 23);
  EXPECT_TRUE(sink->write(bytes).is_ok());
  return sink->commit().value();
}

core::Message request_for(const SnapshotMeta& meta, Term leader_term = Term{5}) {
  core::Message m;
  m.type = core::MessageType::kSnapshotRequest;
  m.from = kLeader;
  m.to = kFollower;
  m.term = leader_term;
  m.prev_log_index = meta.index;
  m.prev_log_term = meta.term;
  m.commit = meta.index;
  return m;
}

// A leader's and a follower's SnapshotTransfers, wired through a network
// that a test can filter.
struct Pair {
  ManualEnv env{7};
  std::shared_ptr<Executor> loop = env.make_executor("loop");
  MemorySnapshotStore leader_store;
  MemorySnapshotStore follower_store;
  std::unique_ptr<SnapshotTransfers> leader;
  std::unique_ptr<SnapshotTransfers> follower;
  Term term{5};
  ServerId follows = kLeader;
  std::function<bool(const core::Message&)> lose;  // frames lost on the way
  std::vector<core::Message> chunks_seen;
  std::vector<ServerId> failed;
  std::vector<core::Message> installs;
  std::vector<SnapshotMeta> received;

  SnapshotTransfers::Hooks hooks(bool is_leader) {
    SnapshotTransfers::Hooks h;
    h.send = [this](const core::Message& m) {
      if (lose && lose(m)) return;
      loop->post([this, m] { deliver(m); });
    };
    h.post_to_loop = [this](std::function<void()> task) { loop->post(std::move(task)); };
    h.post_to_loop_after = [this](Duration delay, std::function<void()> task) {
      loop->post_after(delay, std::move(task));
    };
    h.send_failed = [this](ServerId peer) { failed.push_back(peer); };
    h.received = [this](const core::Message& install, const SnapshotMeta& meta, Duration) {
      installs.push_back(install);
      received.push_back(meta);
    };
    h.log = [](const std::string&) {};
    h.now = [this] { return env.now(); };
    (void)is_leader;
    return h;
  }

  Pair() {
    leader = std::make_unique<SnapshotTransfers>(
        kLeader, transfer_config(), std::shared_ptr<SnapshotStore>(&leader_store, [](auto*) {}),
        env.make_executor("leader-io"), hooks(true));
    follower = std::make_unique<SnapshotTransfers>(
        kFollower, transfer_config(), std::shared_ptr<SnapshotStore>(&follower_store, [](auto*) {}),
        env.make_executor("follower-io"), hooks(false));
  }

  void deliver(const core::Message& m) {
    if (m.type == core::MessageType::kSnapshotChunk) {
      chunks_seen.push_back(m);
      follower->on_chunk(m, term, follows);
    } else {
      leader->on_chunk_response(m);
    }
  }

  void run() { env.run_until_idle(); }
  // Past the heartbeat interval after which an abandoned transfer is reported.
  void settle() {
    env.advance(200ms);
    env.run_until_idle();
  }

  std::uint64_t bytes_sent() const {
    std::uint64_t total = 0;
    for (const core::Message& m : chunks_seen) total += m.chunk.size();
    return total;
  }
};

TEST(SnapshotTransfer, SendsTheSnapshotInBoundedChunksAndTheFollowerCommitsIt) {
  Pair pair;
  const SnapshotMeta meta = store_snapshot(pair.leader_store, 5000);
  pair.leader->start_sending(request_for(meta));
  pair.run();
  ASSERT_EQ(pair.installs.size(), 1u);
  EXPECT_EQ(pair.installs[0].type, core::MessageType::kSnapshotRequest);
  EXPECT_EQ(pair.installs[0].prev_log_index, meta.index);
  EXPECT_EQ(pair.installs[0].prev_log_term, meta.term);
  EXPECT_EQ(pair.installs[0].snapshot_configuration, meta.configuration);
  EXPECT_EQ(pair.received[0].crc32c, meta.crc32c);
  EXPECT_EQ(pair.received[0].size_bytes, 5000u);
  EXPECT_EQ(pair.chunks_seen.size(), 5u);  // 4 x 1024 + 904
  for (const core::Message& chunk : pair.chunks_seen) EXPECT_LE(chunk.chunk.size(), 1024u);
  EXPECT_TRUE(pair.chunks_seen.back().last_chunk);
  Result<SnapshotList> listed = pair.follower_store.list();
  ASSERT_EQ(listed->snapshots.size(), 1u);
  EXPECT_EQ(listed->snapshots[0].crc32c, meta.crc32c);
  EXPECT_EQ(pair.leader->stats().sent, 1u);
  EXPECT_EQ(pair.follower->stats().received, 1u);
  // Delivered, it still holds compaction back until the follower's core
  // acknowledges it.
  EXPECT_EQ(pair.leader->lowest_index_sent(), meta.index);
  pair.leader->release_delivered([](ServerId, Index) { return true; });
  EXPECT_EQ(pair.leader->lowest_index_sent(), std::nullopt);
}

TEST(SnapshotTransfer, AnEmptySnapshotIsSentAsOneLastChunk) {
  Pair pair;
  const SnapshotMeta meta = store_snapshot(pair.leader_store, 0);
  pair.leader->start_sending(request_for(meta));
  pair.run();
  ASSERT_EQ(pair.installs.size(), 1u);
  ASSERT_EQ(pair.chunks_seen.size(), 1u);
  EXPECT_TRUE(pair.chunks_seen[0].last_chunk);
}

TEST(SnapshotTransfer, ADamagedChunkIsAnsweredWithWhereTheFollowerIsAndSentAgain) {
  Pair pair;
  const SnapshotMeta meta = store_snapshot(pair.leader_store, 4096);
  bool damaged = false;
  pair.lose = [&](const core::Message& m) {
    if (m.type != core::MessageType::kSnapshotChunk || damaged || m.snapshot_offset != 1024) {
      return false;
    }
    damaged = true;
    core::Message bad = m;
    bad.chunk[10] ^= 0x20;
    pair.loop->post([&pair, bad] { pair.deliver(bad); });
    return true;
  };
  pair.leader->start_sending(request_for(meta));
  // The follower answers the next chunk with 1024 again: the sender sends
  // from there once more, without waiting for the idle timeout.
  pair.run();
  ASSERT_TRUE(damaged);
  EXPECT_TRUE(pair.failed.empty());
  ASSERT_EQ(pair.installs.size(), 1u);
  EXPECT_EQ(pair.received[0].crc32c, meta.crc32c);
}

TEST(SnapshotTransfer, ATransferStartedAgainResumesWhereTheFollowerIs) {
  Pair pair;
  const SnapshotMeta meta = store_snapshot(pair.leader_store, 10 * 1024);
  // The link dies after three chunks.
  int passed = 0;
  pair.lose = [&](const core::Message& m) {
    return m.type == core::MessageType::kSnapshotChunk && ++passed > 3;
  };
  pair.leader->start_sending(request_for(meta));
  pair.run();
  pair.env.advance(600ms);  // idle: the leader gives up...
  pair.leader->check_idle();
  pair.follower->check_idle();  // ...and the follower keeps what it holds
  pair.settle();
  EXPECT_EQ(pair.follower->stats().abandoned, 0u);
  ASSERT_EQ(pair.failed, std::vector<ServerId>{kFollower});
  EXPECT_TRUE(pair.installs.empty());
  EXPECT_TRUE(pair.follower_store.list()->snapshots.empty()) << "nothing half-installed";
  // The core asks again; the follower still holds 3 KiB and says so.
  pair.lose = nullptr;
  pair.chunks_seen.clear();
  pair.leader->start_sending(request_for(meta));
  pair.run();
  ASSERT_EQ(pair.installs.size(), 1u);
  EXPECT_EQ(pair.received[0].crc32c, meta.crc32c);
  // The first chunk (offset 0) went out again before the answer came; the
  // rest started at 3 KiB: far fewer than the whole snapshot's bytes again.
  EXPECT_LE(pair.bytes_sent(), meta.size_bytes - 3 * 1024 + 2 * 1024);
}

TEST(SnapshotTransfer, AFollowerThatLostWhatItHeldIsSentItAgainWithoutWaiting) {
  Pair pair;
  const SnapshotMeta meta = store_snapshot(pair.leader_store, 10 * 1024);
  // After four chunks the follower restarts: what it held is gone, and the
  // chunks still coming are answered with offset 0. (The old receiver stays
  // alive, unreachable, for the tasks it still has queued.)
  std::unique_ptr<SnapshotTransfers> before_restart;
  MemorySnapshotStore fresh_store;
  int passed = 0;
  pair.lose = [&](const core::Message& m) {
    if (m.type == core::MessageType::kSnapshotChunk && ++passed == 5) {
      before_restart = std::move(pair.follower);
      pair.follower = std::make_unique<SnapshotTransfers>(
          kFollower, transfer_config(), std::shared_ptr<SnapshotStore>(&fresh_store, [](auto*) {}),
          pair.env.make_executor("follower-io-restarted"), pair.hooks(false));
    }
    return false;
  };
  pair.leader->start_sending(request_for(meta));
  pair.run();  // no time passes: an idle timeout cannot be what unsticks it
  EXPECT_TRUE(pair.failed.empty());
  ASSERT_EQ(pair.installs.size(), 1u);
  EXPECT_EQ(pair.received[0].crc32c, meta.crc32c);
  EXPECT_EQ(fresh_store.list()->snapshots.size(), 1u);
}

TEST(SnapshotTransfer, AWholeThatDoesNotMatchItsChecksumIsRefusedAndNothingInstalled) {
  Pair pair;
  const SnapshotMeta meta = store_snapshot(pair.leader_store, 3000);
  pair.lose = [&](const core::Message& m) {
    if (m.type != core::MessageType::kSnapshotChunk) return false;
    core::Message lying = m;
    lying.snapshot_crc ^= 1;  // every chunk checks, the whole does not
    pair.loop->post([&pair, lying] { pair.deliver(lying); });
    return true;
  };
  pair.leader->start_sending(request_for(meta));
  pair.run();
  EXPECT_TRUE(pair.installs.empty());
  EXPECT_TRUE(pair.follower_store.list()->snapshots.empty());
  EXPECT_TRUE(pair.failed.empty()) << "reported a heartbeat later, not at once";
  pair.settle();
  EXPECT_EQ(pair.failed, std::vector<ServerId>{kFollower}) << "the refusal stops the sender";
}

TEST(SnapshotTransfer, ChunksFromALeaderTheFollowerDoesNotFollowAreIgnoredOrRefused) {
  Pair pair;
  const SnapshotMeta meta = store_snapshot(pair.leader_store, 2000);
  pair.follows = ServerId{3};  // it follows someone else in this term
  pair.leader->start_sending(request_for(meta));
  pair.run();
  EXPECT_TRUE(pair.installs.empty());
  EXPECT_TRUE(pair.failed.empty());  // ignored: the sender times out and asks again
  // A deposed leader (older term) is refused at once.
  pair.follows = kLeader;
  pair.term = Term{6};
  pair.leader->stop_sending();
  pair.leader->start_sending(request_for(meta, Term{5}));
  pair.settle();
  EXPECT_TRUE(pair.installs.empty());
  EXPECT_EQ(pair.failed, std::vector<ServerId>{kFollower});
}

TEST(SnapshotTransfer, ALeaderChangeMidTransferLeavesNoHalfInstalledState) {
  Pair pair;
  const SnapshotMeta meta = store_snapshot(pair.leader_store, 6000);
  int passed = 0;
  pair.lose = [&](const core::Message& m) {
    return m.type == core::MessageType::kSnapshotChunk && ++passed > 2;
  };
  pair.leader->start_sending(request_for(meta));
  pair.run();
  pair.leader->stop_sending();  // leadership lost
  EXPECT_TRUE(pair.follower_store.list()->snapshots.empty());
  // A new leader (same server id in this harness, next term) sends another
  // snapshot: the partial one is dropped, the new one installed whole.
  pair.term = Term{6};
  pair.lose = nullptr;
  const SnapshotMeta newer = store_snapshot(pair.leader_store, 2500, Index{55}, Term{6});
  pair.leader->start_sending(request_for(newer, Term{6}));
  pair.run();
  ASSERT_EQ(pair.installs.size(), 1u);
  EXPECT_EQ(pair.installs[0].prev_log_index, Index{55});
  Result<SnapshotList> listed = pair.follower_store.list();
  ASSERT_EQ(listed->snapshots.size(), 1u);
  EXPECT_EQ(listed->snapshots[0].index, Index{55});
}

TEST(SnapshotTransfer, AFollowerDropsATransferThatStalls) {
  Pair pair;
  const SnapshotMeta meta = store_snapshot(pair.leader_store, 6000);
  int passed = 0;
  pair.lose = [&](const core::Message& m) {
    return m.type == core::MessageType::kSnapshotChunk && ++passed > 2;
  };
  pair.leader->start_sending(request_for(meta));
  pair.run();
  pair.env.advance(600ms);  // past the idle timeout: the follower still waits
  pair.follower->check_idle();
  pair.run();
  EXPECT_EQ(pair.follower->stats().abandoned, 0u);
  pair.env.advance(500ms);  // past twice the idle timeout
  pair.follower->check_idle();
  pair.run();
  EXPECT_EQ(pair.follower->stats().abandoned, 1u);
  EXPECT_TRUE(pair.follower_store.list()->snapshots.empty());
}

}  // namespace
}  // namespace keel::runtime
