// Which snapshots a server keeps (runtime/snapshot_retention.h, ctest -L
// snapshot): the newest Config::snapshot_retain of those the FSM has applied
// past, any still open for reading, any still to be restored from, and the
// one just committed; a failed removal is logged and ends that prune.
#include "runtime/snapshot_retention.h"

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace keel::runtime {
namespace {

std::string commit(SnapshotStore& store, std::uint64_t index) {
  SnapshotMeta meta;
  meta.index = Index{index};
  meta.term = Term{1};
  Result<std::unique_ptr<SnapshotSink>> sink = store.create(meta);
  EXPECT_TRUE(sink.is_ok()) << sink.status();
  if (!sink.is_ok()) return "";
  EXPECT_TRUE((*sink)->write("state at " + std::to_string(index)).is_ok());
  Result<SnapshotMeta> committed = (*sink)->commit();
  EXPECT_TRUE(committed.is_ok()) << committed.status();
  return committed.is_ok() ? committed->id : "";
}

std::vector<Index> listed(const SnapshotStore& store) {
  std::vector<Index> indices;
  Result<SnapshotList> all = store.list();
  EXPECT_TRUE(all.is_ok()) << all.status();
  if (!all.is_ok()) return indices;
  for (const SnapshotMeta& meta : all->snapshots) indices.push_back(meta.index);
  return indices;
}

// A store whose removals fail (after a number that pass), to see the prune
// stop and say why.
class FailingRemovals final : public SnapshotStore {
 public:
  explicit FailingRemovals(int pass) : pass_(pass) {}
  Result<std::unique_ptr<SnapshotSink>> create(const SnapshotMeta& meta) override {
    return inner_.create(meta);
  }
  Result<SnapshotList> list() const override { return inner_.list(); }
  Result<Opened> open(const std::string& id) override { return inner_.open(id); }
  Status remove(const std::string& id) override {
    ++attempts;
    if (pass_-- > 0) return inner_.remove(id);
    return Status::io_error("injected: cannot remove " + id);
  }
  int attempts = 0;

 private:
  MemorySnapshotStore inner_;
  int pass_;
};

struct Logged {
  std::vector<std::string> lines;
  RetainingSnapshotStore::Log log() {
    return [this](const std::string& line) { lines.push_back(line); };
  }
};

TEST(SnapshotRetention, KeepsTheNewestRetainedOnceApplied) {
  Logged logged;
  auto store =
      RetainingSnapshotStore::make(std::make_shared<MemorySnapshotStore>(), 2, logged.log());
  store->set_applied(Index{100});
  for (std::uint64_t index : {10, 20, 30, 40}) commit(*store, index);
  EXPECT_EQ(listed(*store), (std::vector<Index>{Index{40}, Index{30}}));
  EXPECT_TRUE(logged.lines.empty());
}

TEST(SnapshotRetention, ASnapshotPastTheAppliedIndexStaysUntilAppliedPast) {
  auto store = RetainingSnapshotStore::make(std::make_shared<MemorySnapshotStore>(), 1, nullptr);
  store->set_applied(Index{10});
  commit(*store, 10);
  // A leader's snapshot, received, not installed yet; then a newer one.
  commit(*store, 50);
  commit(*store, 60);
  EXPECT_EQ(listed(*store), (std::vector<Index>{Index{60}, Index{50}, Index{10}}))
      << "the FSM will restore from one of them";
  store->set_applied(Index{60});
  commit(*store, 70);  // taken locally... but 70 is past 60 too
  EXPECT_EQ(listed(*store).size(), 2u) << "70 (not applied past) and 60 (the newest applied)";
  store->set_applied(Index{71});
  commit(*store, 71);
  EXPECT_EQ(listed(*store), (std::vector<Index>{Index{71}}));
}

TEST(SnapshotRetention, TheSnapshotJustCommittedIsNeverItsOwnPrunesVictim) {
  auto store = RetainingSnapshotStore::make(std::make_shared<MemorySnapshotStore>(), 1, nullptr);
  store->set_applied(Index{100});
  commit(*store, 90);
  // Committed after a newer one: older by index, yet its caller was told it
  // is there.
  const std::string late = commit(*store, 40);
  EXPECT_EQ(listed(*store), (std::vector<Index>{Index{90}, Index{40}}));
  EXPECT_TRUE(store->open(late).is_ok());
  commit(*store, 95);
  EXPECT_EQ(listed(*store), (std::vector<Index>{Index{95}}));
}

TEST(SnapshotRetention, AnOpenReaderHoldsItsSnapshotUntilClosed) {
  auto store = RetainingSnapshotStore::make(std::make_shared<MemorySnapshotStore>(), 1, nullptr);
  store->set_applied(Index{100});
  const std::string first = commit(*store, 10);
  Result<SnapshotStore::Opened> reader = store->open(first);
  ASSERT_TRUE(reader.is_ok()) << reader.status();
  EXPECT_EQ(store->readers_open(first), 1u);
  commit(*store, 20);
  commit(*store, 30);
  EXPECT_EQ(listed(*store), (std::vector<Index>{Index{30}, Index{10}}));
  EXPECT_EQ(store->remove(first).code(), StatusCode::kUnavailable) << "open for reading";
  // Closed on another thread (the raft loop, say): then the next commit
  // removes it.
  std::thread([&] { reader->reader.reset(); }).join();
  EXPECT_EQ(store->readers_open(first), 0u);
  commit(*store, 40);
  EXPECT_EQ(listed(*store), (std::vector<Index>{Index{40}}));
  // An open that fails holds nothing.
  EXPECT_EQ(store->open(first).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->readers_open(first), 0u);
}

TEST(SnapshotRetention, AFailedRemovalIsLoggedAndEndsThatPrune) {
  Logged logged;
  auto failing = std::make_shared<FailingRemovals>(0);
  auto store = RetainingSnapshotStore::make(failing, 1, logged.log());
  store->set_applied(Index{100});
  commit(*store, 10);
  commit(*store, 20);
  commit(*store, 30);  // two to remove: the first fails, the second is not tried
  EXPECT_EQ(listed(*store).size(), 3u);
  ASSERT_FALSE(logged.lines.empty());
  EXPECT_NE(logged.lines.back().find("injected: cannot remove"), std::string::npos)
      << logged.lines.back();
  EXPECT_EQ(failing->attempts, 2) << "one per commit, none after a failure within one";
}

}  // namespace
}  // namespace keel::runtime
