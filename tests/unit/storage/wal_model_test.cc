// Property test: random operations on a WalLogStore and on MemoryLogStore
// (the model) must give the same answers, across reopens and crashes (after
// which nothing acknowledged may be missing). Fixed seeds, so a failure
// replays exactly.
#include <gtest/gtest.h>

#include "core/prng.h"
#include "storage_test_util.h"

namespace keel::storage {
namespace {

using testing::entries;
using testing::open_wal;
using testing::read_all;

constexpr char kDir[] = "/wal";

class Model {
 public:
  Model(std::uint64_t seed) : prng_(seed), fs_(std::make_shared<SimFileSystem>(seed)) {
    options_.segment_size_bytes = 128 + prng_.uniform(0, 4096);
    options_.max_record_bytes = 1 + prng_.uniform(0, 600);
    options_.read_cache_bytes = prng_.uniform(0, 4) == 0 ? 0 : prng_.uniform(100, 20000);
    wal_ = open_wal(kDir, options_, fs_);
  }

  void step() {
    switch (prng_.uniform(0, 10)) {
      case 0:
        return compact();
      case 1:
        return reopen();
      case 2:
        return read_range();
      case 3:
        return invalid_append();
      case 4:
        return prng_.uniform(0, 2) == 0 ? reset() : append();
      default:
        return append();
    }
  }

  void check_equal(const char* when) {
    ASSERT_EQ(wal_->first_index(), model_.first_index()) << when;
    ASSERT_EQ(wal_->last_index(), model_.last_index()) << when;
    ASSERT_EQ(read_all(*wal_), read_all(model_)) << when;
  }

 private:
  Index first() const { return model_.first_index().is_zero() ? Index(1) : model_.first_index(); }
  bool has_entries() const { return model_.last_index() >= first(); }

  void append() {
    Index start = model_.last_index().next();
    if (has_entries() && prng_.uniform(0, 3) == 0) {  // a conflicting suffix
      start = first() + prng_.uniform(0, model_.last_index() - first() + 1);
      ++term_;
    }
    const std::size_t size =
        prng_.uniform(0, 5) == 0 ? prng_.uniform(500, 3000) : prng_.uniform(0, 100);
    const auto batch = entries(start.value, start.value + prng_.uniform(0, 20), term_, size);
    ASSERT_TRUE(wal_->append(batch).is_ok());
    ASSERT_TRUE(model_.append(batch).is_ok());
  }

  void invalid_append() {
    const Index start = model_.last_index() + 2 + prng_.uniform(0, 3);  // leaves a gap
    const auto batch = entries(start.value, start.value, term_);
    ASSERT_EQ(wal_->append(batch).code(), StatusCode::kInvalidArgument);
    ASSERT_EQ(model_.append(batch).code(), StatusCode::kInvalidArgument);
  }

  void compact() {
    const std::uint64_t low = first().value > 2 ? first().value - 2 : 0;
    const Index up_to(low + prng_.uniform(0, model_.last_index().value + 4 - low));
    ASSERT_TRUE(wal_->truncate_prefix(up_to).is_ok());
    ASSERT_TRUE(model_.truncate_prefix(up_to).is_ok());
  }

  // A snapshot install: everything goes, the log continues after `base`,
  // below the old end or beyond it.
  void reset() {
    const std::uint64_t low = first().value > 3 ? first().value - 3 : 0;
    const Index base(low + prng_.uniform(0, model_.last_index().value + 6 - low));
    ASSERT_TRUE(wal_->reset(base).is_ok());
    ASSERT_TRUE(model_.reset(base).is_ok());
    ++term_;
  }

  void reopen() {
    wal_.reset();
    if (prng_.uniform(0, 2) == 0) fs_->crash_and_tear();  // everything acknowledged is synced
    wal_ = open_wal(kDir, options_, fs_);
    ASSERT_TRUE(wal_);
    check_equal("after reopen");
  }

  void read_range() {
    if (!has_entries()) return;
    const Index from = first() + prng_.uniform(0, model_.last_index() - first() + 1);
    const Index to = from + prng_.uniform(0, model_.last_index() - from + 1);
    Result<std::vector<LogEntry>> got = wal_->read(from, to);
    ASSERT_TRUE(got.is_ok()) << got.status();
    ASSERT_EQ(*got, *model_.read(from, to));
    ASSERT_EQ(wal_->read(from, model_.last_index().next()).status().code(), StatusCode::kNotFound);
  }

  core::Prng prng_;
  std::shared_ptr<SimFileSystem> fs_;
  WalOptions options_;
  std::shared_ptr<WalLogStore> wal_;
  MemoryLogStore model_;
  std::uint64_t term_ = 1;
};

TEST(WalModel, RandomOperationsAgreeWithTheMemoryStore) {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Model model(seed);
    for (int step = 0; step < 250; ++step) {
      model.step();
      if (::testing::Test::HasFatalFailure()) return;
    }
    model.check_equal("at the end");
  }
}

}  // namespace
}  // namespace keel::storage
