// MemoryLogStore and MemoryStableStore keep the LogStore / StableStore
// contracts of keel/log_store.h: contiguous appends that replace a conflicting
// suffix, bounded reads, fail-stop after a failed append, and 8-byte uint64s.
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <keel/log_store.h>

namespace keel {
namespace {

LogEntry entry(std::uint64_t index, std::uint64_t term, std::string data = "") {
  return LogEntry{Term(term), Index(index), EntryType::kCommand, std::move(data)};
}

std::vector<LogEntry> entries(std::uint64_t first, std::uint64_t last, std::uint64_t term) {
  std::vector<LogEntry> out;
  for (std::uint64_t i = first; i <= last; ++i) out.push_back(entry(i, term, std::to_string(i)));
  return out;
}

std::vector<LogEntry> read_all(const MemoryLogStore& store) {
  Result<std::vector<LogEntry>> all = store.read(store.first_index(), store.last_index());
  EXPECT_TRUE(all.is_ok()) << all.status();
  return all.is_ok() ? *all : std::vector<LogEntry>{};
}

// ---- MemoryLogStore --------------------------------------------------------

TEST(MemoryLogStoreTest, new_store_is_empty_with_first_and_last_zero) {
  MemoryLogStore store;
  EXPECT_EQ(store.first_index(), Index(0));
  EXPECT_EQ(store.last_index(), Index(0));
  EXPECT_EQ(store.append_calls(), 0U);
}

TEST(MemoryLogStoreTest, appended_entries_read_back) {
  MemoryLogStore store;
  ASSERT_TRUE(store.append(entries(1, 3, 1)).is_ok());
  ASSERT_TRUE(store.append(entries(4, 5, 2)).is_ok());
  EXPECT_EQ(store.first_index(), Index(1));
  EXPECT_EQ(store.last_index(), Index(5));
  Result<std::vector<LogEntry>> middle = store.read(Index(2), Index(4));
  ASSERT_TRUE(middle.is_ok()) << middle.status();
  EXPECT_EQ(*middle, (std::vector<LogEntry>{entry(2, 1, "2"), entry(3, 1, "3"), entry(4, 2, "4")}));
  EXPECT_EQ(store.append_calls(), 2U);
}

TEST(MemoryLogStoreTest, append_replaces_every_entry_from_the_first_new_index) {
  MemoryLogStore store;
  ASSERT_TRUE(store.append(entries(1, 5, 1)).is_ok());
  // A new leader's entry 3 conflicts: 3, 4 and 5 go, even though only 3 and 4
  // are rewritten (ready.h: drop every stored entry >= the first new index).
  ASSERT_TRUE(store.append(entries(3, 4, 2)).is_ok());
  EXPECT_EQ(store.last_index(), Index(4));
  EXPECT_EQ(read_all(store), (std::vector<LogEntry>{entry(1, 1, "1"), entry(2, 1, "2"),
                                                    entry(3, 2, "3"), entry(4, 2, "4")}));
}

TEST(MemoryLogStoreTest, append_that_leaves_a_gap_is_refused) {
  MemoryLogStore store;
  ASSERT_TRUE(store.append(entries(1, 2, 1)).is_ok());
  EXPECT_EQ(store.append(entries(4, 4, 1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store.last_index(), Index(2));
}

TEST(MemoryLogStoreTest, first_append_must_start_at_index_one) {
  MemoryLogStore store;
  EXPECT_EQ(store.append(entries(0, 1, 1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store.append(entries(2, 3, 1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store.last_index(), Index(0));
}

TEST(MemoryLogStoreTest, non_contiguous_batch_is_refused_and_changes_nothing) {
  MemoryLogStore store;
  ASSERT_TRUE(store.append(entries(1, 3, 1)).is_ok());
  const std::vector<LogEntry> holey = {entry(2, 2), entry(4, 2)};
  EXPECT_EQ(store.append(holey).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(read_all(store), entries(1, 3, 1));
}

TEST(MemoryLogStoreTest, empty_append_succeeds_and_changes_nothing) {
  MemoryLogStore store;
  ASSERT_TRUE(store.append(entries(1, 2, 1)).is_ok());
  EXPECT_TRUE(store.append({}).is_ok());
  EXPECT_EQ(read_all(store), entries(1, 2, 1));
}

TEST(MemoryLogStoreTest, read_outside_the_stored_range_is_not_found) {
  MemoryLogStore store;
  EXPECT_EQ(store.read(Index(1), Index(1)).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store.append(entries(1, 3, 1)).is_ok());
  EXPECT_EQ(store.read(Index(0), Index(2)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.read(Index(2), Index(4)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.read(Index(9), Index(9)).status().code(), StatusCode::kNotFound);
}

TEST(MemoryLogStoreTest, reversed_read_range_is_invalid) {
  MemoryLogStore store;
  ASSERT_TRUE(store.append(entries(1, 3, 1)).is_ok());
  EXPECT_EQ(store.read(Index(3), Index(2)).status().code(), StatusCode::kInvalidArgument);
}

TEST(MemoryLogStoreTest, after_a_failed_append_every_append_fails) {
  MemoryLogStore store;
  ASSERT_TRUE(store.append(entries(1, 2, 1)).is_ok());
  store.fail_appends();
  EXPECT_EQ(store.append(entries(3, 3, 1)).code(), StatusCode::kIoError);
  // Fail-stop: valid appends, empty ones and rewrites are all refused now.
  EXPECT_EQ(store.append(entries(3, 3, 1)).code(), StatusCode::kIoError);
  EXPECT_EQ(store.append({}).code(), StatusCode::kIoError);
  EXPECT_EQ(store.append(entries(1, 1, 2)).code(), StatusCode::kIoError);
  EXPECT_EQ(read_all(store), entries(1, 2, 1));
  EXPECT_EQ(store.append_calls(), 5U);
}

TEST(MemoryLogStoreTest, concurrent_appends_and_reads_are_safe) {
  MemoryLogStore store;
  constexpr std::uint64_t kEntries = 2000;
  std::thread writer([&store] {
    for (std::uint64_t i = 1; i <= kEntries; ++i)
      ASSERT_TRUE(store.append(entries(i, i, 1)).is_ok());
  });
  while (store.last_index() < Index(kEntries)) {
    const Index last = store.last_index();
    if (!last.is_zero()) {
      Result<std::vector<LogEntry>> some = store.read(Index(1), last);
      ASSERT_TRUE(some.is_ok()) << some.status();
      ASSERT_EQ(some->back().index, last);
    }
  }
  writer.join();
  EXPECT_EQ(read_all(store).size(), kEntries);
}

// ---- MemoryStableStore and StableStore's uint64 helpers --------------------

TEST(MemoryStableStoreTest, unset_key_is_not_found) {
  MemoryStableStore store;
  EXPECT_EQ(store.get("term").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.get_uint64("term").status().code(), StatusCode::kNotFound);
}

TEST(MemoryStableStoreTest, set_replaces_the_previous_value) {
  MemoryStableStore store;
  ASSERT_TRUE(store.set("vote", "1").is_ok());
  ASSERT_TRUE(store.set("other", "x").is_ok());
  ASSERT_TRUE(store.set("vote", "2").is_ok());
  EXPECT_EQ(*store.get("vote"), "2");
  EXPECT_EQ(*store.get("other"), "x");
}

TEST(MemoryStableStoreTest, uint64_round_trips_as_eight_little_endian_bytes) {
  MemoryStableStore store;
  ASSERT_TRUE(store.set_uint64("term", 0x0102030405060708ULL).is_ok());
  EXPECT_EQ(*store.get("term"), std::string("\x08\x07\x06\x05\x04\x03\x02\x01", 8));
  EXPECT_EQ(*store.get_uint64("term"), 0x0102030405060708ULL);
  ASSERT_TRUE(store.set_uint64("max", ~0ULL).is_ok());
  EXPECT_EQ(*store.get_uint64("max"), ~0ULL);
}

TEST(MemoryStableStoreTest, uint64_of_the_wrong_size_is_corruption) {
  MemoryStableStore store;
  ASSERT_TRUE(store.set("short", std::string(7, '\0')).is_ok());
  ASSERT_TRUE(store.set("long", std::string(9, '\0')).is_ok());
  ASSERT_TRUE(store.set("empty", "").is_ok());
  EXPECT_EQ(store.get_uint64("short").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(store.get_uint64("long").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(store.get_uint64("empty").status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace keel
