// The log writer: group commit, and what its completions promise.
#include "runtime/log_writer.h"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "core/codec.h"
#include "keel/env.h"
#include "keel/log_store.h"

namespace keel::runtime {
namespace {

LogEntry entry(std::uint64_t index, std::uint64_t term) {
  return LogEntry{Term{term}, Index{index}, EntryType::kCommand,
                  std::to_string(index) + "/" + std::to_string(term)};
}

struct Written {
  std::size_t jobs = 0;
  Index store_last;  // what the store held when the completion was reported
};

class LogWriterTest : public ::testing::Test {
 protected:
  LogWriterTest()
      : env_(std::make_shared<ManualEnv>(1)),
        log_(std::make_shared<MemoryLogStore>()),
        stable_(std::make_shared<MemoryStableStore>()),
        writer_(std::make_shared<LogWriter>(
            log_, stable_, env_->make_executor("writer"), 4096, [this](WriteCompletion done) {
              ASSERT_TRUE(done.status.is_ok());
              written_.push_back(Written{done.jobs.size(), log_->last_index()});
            })) {}

  void submit(std::vector<LogEntry> entries) {
    writer_->submit(WriteJob{std::nullopt, std::move(entries), {}});
  }

  std::shared_ptr<ManualEnv> env_;
  std::shared_ptr<MemoryLogStore> log_;
  std::shared_ptr<MemoryStableStore> stable_;
  std::shared_ptr<LogWriter> writer_;
  std::vector<Written> written_;
};

TEST_F(LogWriterTest, JobsQueuedTogetherAreWrittenWithOneAppend) {
  submit({entry(1, 1)});
  submit({entry(2, 1), entry(3, 1)});
  submit({entry(4, 1)});
  env_->run_until_idle();
  ASSERT_EQ(written_.size(), 1u);
  EXPECT_EQ(written_[0].jobs, 3u);
  EXPECT_EQ(log_->append_calls(), 1u);
  EXPECT_EQ(log_->last_index(), Index{4});
}

// A follower queues a write of 2/1 3/1 (its acknowledgement waits for it),
// then a newer leader's 2/2 replaces them before the writer runs. Merged, 3/1
// would never be written, yet the first job's acknowledgement ("I hold 3")
// would go out with the batch. Each job's completion must find its own
// entries stored.
TEST_F(LogWriterTest, AJobOverwrittenByALaterQueuedJobIsWrittenAndReportedFirst) {
  submit({entry(1, 1)});
  env_->run_until_idle();
  submit({entry(2, 1), entry(3, 1)});
  submit({entry(2, 2)});
  env_->run_until_idle();
  ASSERT_EQ(written_.size(), 3u);
  EXPECT_EQ(written_[1].jobs, 1u);
  EXPECT_EQ(written_[1].store_last, Index{3}) << "the acknowledgement of 3/1 left without it";
  EXPECT_EQ(written_[2].store_last, Index{2});
  Result<std::vector<LogEntry>> stored = log_->read(Index{1}, Index{2});
  ASSERT_TRUE(stored.is_ok());
  EXPECT_EQ(stored->back(), entry(2, 2));
}

// The hard state goes first: a crash (here, a failed append) between the two
// writes leaves the term and vote stored, never entries without them.
TEST(LogWriterOrder, TheHardStateIsStoredBeforeTheEntriesOfTheSameWrite) {
  auto env = std::make_shared<ManualEnv>(1);
  auto log = std::make_shared<MemoryLogStore>();
  auto stable = std::make_shared<MemoryStableStore>();
  std::vector<Status> results;
  auto writer =
      std::make_shared<LogWriter>(log, stable, env->make_executor("writer"), 4096,
                                  [&](WriteCompletion done) { results.push_back(done.status); });
  log->fail_appends();
  writer->submit(WriteJob{core::HardState{Term{4}, ServerId{2}, Index{}}, {entry(1, 4)}, {}});
  env->run_until_idle();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(results[0].is_ok());
  Result<std::string> stored = stable->get(kHardStateKey);
  ASSERT_TRUE(stored.is_ok()) << "the entries' append ran before the hard state was stored";
  Result<core::HardState> hard = core::decode_hard_state(*stored);
  ASSERT_TRUE(hard.is_ok());
  EXPECT_EQ(hard->term, Term{4});
  EXPECT_EQ(hard->vote, ServerId{2});
}

// A follower holds 5..10 of term 2, never committed; a term-3 leader's
// append replaces them and commits them (commit 10), and the follower learns
// term 3 from it, so one write carries the hard state and the entries. If
// the hard state reached the disk with commit 10 and the entries did not,
// recovery would apply the stale term-2 entries as committed.
TEST(LogWriterOrder, TheStoredCommitNeverCoversTheEntriesOfTheSameWrite) {
  auto env = std::make_shared<ManualEnv>(1);
  auto log = std::make_shared<MemoryLogStore>();
  auto stable = std::make_shared<MemoryStableStore>();
  std::vector<LogEntry> stale;
  for (std::uint64_t i = 1; i <= 10; ++i) stale.push_back(entry(i, i <= 4 ? 1 : 2));
  ASSERT_TRUE(log->append(stale).is_ok());
  std::vector<Status> results;
  auto writer =
      std::make_shared<LogWriter>(log, stable, env->make_executor("writer"), 4096,
                                  [&](WriteCompletion done) { results.push_back(done.status); });
  log->fail_appends();  // the crash between the two writes
  std::vector<LogEntry> replacing;
  for (std::uint64_t i = 5; i <= 10; ++i) replacing.push_back(entry(i, 3));
  writer->submit(WriteJob{core::HardState{Term{3}, kNoServer, Index{10}}, replacing, {}});
  env->run_until_idle();
  ASSERT_EQ(results.size(), 1u);
  Result<core::HardState> hard = core::decode_hard_state(*stable->get(kHardStateKey));
  ASSERT_TRUE(hard.is_ok());
  EXPECT_EQ(hard->term, Term{3});
  EXPECT_LE(hard->commit, Index{4}) << "the stale 5..10 of term 2 would be taken as committed";
}

}  // namespace
}  // namespace keel::runtime
