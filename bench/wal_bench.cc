// bench/wal_bench.cc — the WAL on the real disk, next to the floor it cannot
// beat. BENCHMARKS.md records the figures and how they were taken.
//
//   BM_WalAppend/batch:N     WalLogStore::append of N entries of 256 bytes:
//                            one write and one fdatasync per call.
//   BM_WriteFdatasync/batch:N  the floor: a plain loop of write(N * 256 bytes)
//                            + fdatasync on an appended file, same bytes per
//                            sync, no framing, no checksums, no index.
//   BM_WalVsFloor/batch:N    both of the above in one loop, alternating (one
//                            append, then one floor write + fdatasync), each
//                            timed on its own: on a shared or noisy disk the
//                            two see the same conditions, so their ratio
//                            (wal_vs_floor = floor time / WAL time; 1.0 means
//                            as fast as the floor) is the figure to quote.
//   BM_WalRecovery/batch:B   WalLogStore::open of a 1,000,000-entry log
//                            appended B entries at a time (so 1,000,000 / B
//                            records): every record is read and
//                            checksummed and the index rebuilt. "warm" reads
//                            from the page cache, "cold" first evicts the
//                            segment files from it (posix_fadvise DONTNEED).
//
// Files go to $KEEL_BENCH_DIR (default /tmp), in a directory of their own
// that is removed at exit. Items are entries, bytes are entry payload bytes,
// so the WAL and the floor report the same bytes per second for the same
// work.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include <keel/file_stores.h>
#include <keel/log_store.h>

#include "storage/file_stores_fs.h"
#include "storage/fs.h"

namespace {

using keel::Index;
using keel::LogEntry;
using keel::Term;

constexpr std::size_t kEntryBytes = 256;
constexpr std::uint64_t kRecoveryEntries = 1'000'000;

// A directory for this process's files, removed when the process ends.
class BenchDir {
 public:
  BenchDir() {
    const char* base = std::getenv("KEEL_BENCH_DIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/keel-wal-bench-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("keel-wal-bench: mkdtemp");
      std::exit(1);
    }
    path_ = pattern;
  }
  ~BenchDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string fresh(const std::string& name) {
    return path_ + "/" + name + "-" + std::to_string(++count_);
  }

 private:
  std::string path_;
  int count_ = 0;
};

BenchDir& bench_dir() {
  static BenchDir dir;  // NOLINT: one per process, removed at exit
  return dir;
}

// A benchmark's own files, removed when it ends (a run can write gigabytes).
class ScopedPath {
 public:
  explicit ScopedPath(const std::string& name) : path_(bench_dir().fresh(name)) {}
  ~ScopedPath() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScopedPath(const ScopedPath&) = delete;
  ScopedPath& operator=(const ScopedPath&) = delete;
  const std::string& str() const { return path_; }

 private:
  std::string path_;
};

std::vector<LogEntry> make_batch(std::size_t size) {
  std::vector<LogEntry> batch(size);
  for (std::size_t i = 0; i < size; ++i) {
    batch[i].term = Term(1);
    batch[i].data = std::string(kEntryBytes, static_cast<char>('a' + i % 26));
  }
  return batch;
}

void number_from(std::vector<LogEntry>& batch, std::uint64_t first) {
  for (std::size_t i = 0; i < batch.size(); ++i) batch[i].index = Index(first + i);
}

void BM_WalAppend(benchmark::State& state) {
  const auto batch_size = static_cast<std::size_t>(state.range(0));
  const ScopedPath dir("wal");
  auto wal = keel::WalLogStore::open(dir.str());
  if (!wal.is_ok()) {
    state.SkipWithError(wal.status().to_string().c_str());
    return;
  }
  std::vector<LogEntry> batch = make_batch(batch_size);
  std::uint64_t next = 1;
  for (auto _ : state) {
    number_from(batch, next);
    keel::Status status = (*wal)->append(batch);
    if (!status.is_ok()) {
      state.SkipWithError(status.to_string().c_str());
      return;
    }
    next += batch_size;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(next - 1));
  state.SetBytesProcessed(static_cast<std::int64_t>((next - 1) * kEntryBytes));
}

void BM_WriteFdatasync(benchmark::State& state) {
  const auto batch_size = static_cast<std::size_t>(state.range(0));
  const ScopedPath path("floor");
  const int fd = ::open(path.str().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    state.SkipWithError("open failed");
    return;
  }
  const std::string bytes(batch_size * kEntryBytes, 'x');
  std::uint64_t entries = 0;
  for (auto _ : state) {
    if (::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()) ||
        ::fdatasync(fd) != 0) {
      state.SkipWithError("write or fdatasync failed");
      break;
    }
    entries += batch_size;
  }
  ::close(fd);
  state.SetItemsProcessed(static_cast<std::int64_t>(entries));
  state.SetBytesProcessed(static_cast<std::int64_t>(entries * kEntryBytes));
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void BM_WalVsFloor(benchmark::State& state) {
  const auto batch_size = static_cast<std::size_t>(state.range(0));
  const ScopedPath dir("wal");
  const ScopedPath floor_path("floor");
  auto wal = keel::WalLogStore::open(dir.str());
  const int fd = ::open(floor_path.str().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (!wal.is_ok() || fd < 0) {
    state.SkipWithError("could not open the WAL or the floor file");
    return;
  }
  std::vector<LogEntry> batch = make_batch(batch_size);
  const std::string bytes(batch_size * kEntryBytes, 'x');
  std::uint64_t next = 1;
  double wal_seconds = 0;
  double floor_seconds = 0;
  for (auto _ : state) {
    number_from(batch, next);
    auto start = std::chrono::steady_clock::now();
    const bool appended = (*wal)->append(batch).is_ok();
    wal_seconds += seconds_since(start);
    start = std::chrono::steady_clock::now();
    const bool synced =
        ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()) &&
        ::fdatasync(fd) == 0;
    floor_seconds += seconds_since(start);
    if (!appended || !synced) {
      state.SkipWithError("append or write + fdatasync failed");
      break;
    }
    next += batch_size;
  }
  ::close(fd);
  const double calls = static_cast<double>(state.iterations());
  const double payload_mb = static_cast<double>((next - 1) * kEntryBytes) / 1e6;
  state.counters["wal_appends_per_s"] = calls / wal_seconds;
  state.counters["floor_syncs_per_s"] = calls / floor_seconds;
  state.counters["wal_MB_per_s"] = payload_mb / wal_seconds;
  state.counters["floor_MB_per_s"] = payload_mb / floor_seconds;
  state.counters["wal_vs_floor"] = floor_seconds / wal_seconds;
}

// Writes the recovery fixture quickly: the real disk, but with syncs skipped
// (a million fdatasyncs would take minutes and measure nothing recovery
// does). Recovery reads the same bytes either way.
class NoSyncFileSystem final : public keel::storage::FileSystem {
 public:
  class NoSyncFile final : public keel::storage::File {
   public:
    explicit NoSyncFile(std::unique_ptr<keel::storage::File> inner) : inner_(std::move(inner)) {}
    const std::string& path() const override { return inner_->path(); }
    keel::Status write_at(std::uint64_t offset, std::string_view bytes) override {
      return inner_->write_at(offset, bytes);
    }
    keel::Status append(std::string_view bytes) override { return inner_->append(bytes); }
    keel::Result<std::size_t> read_at(std::uint64_t offset, std::span<char> out) const override {
      return inner_->read_at(offset, out);
    }
    keel::Result<std::uint64_t> size() const override { return inner_->size(); }
    keel::Status allocate(std::uint64_t size_bytes) override {
      return inner_->allocate(size_bytes);
    }
    keel::Status truncate(std::uint64_t size_bytes) override {
      return inner_->truncate(size_bytes);
    }
    keel::Status sync_data() override { return keel::Status::ok(); }
    keel::Status sync() override { return keel::Status::ok(); }

   private:
    std::unique_ptr<keel::storage::File> inner_;
  };

  keel::Result<std::unique_ptr<keel::storage::File>> open(const std::string& path,
                                                          keel::storage::OpenMode mode) override {
    auto file = inner_->open(path, mode);
    if (!file.is_ok()) return file.status();
    return std::unique_ptr<keel::storage::File>(
        std::make_unique<NoSyncFile>(std::move(file).value()));
  }
  keel::Status create_dir(const std::string& path) override { return inner_->create_dir(path); }
  keel::Result<std::vector<std::string>> list_dir(const std::string& path) const override {
    return inner_->list_dir(path);
  }
  keel::Result<bool> is_dir(const std::string& path) const override { return inner_->is_dir(path); }
  keel::Result<bool> exists(const std::string& path) const override { return inner_->exists(path); }
  keel::Status rename(const std::string& from, const std::string& to) override {
    return inner_->rename(from, to);
  }
  keel::Status remove(const std::string& path) override { return inner_->remove(path); }
  keel::Status sync_dir(const std::string&) override { return keel::Status::ok(); }

 private:
  std::shared_ptr<keel::storage::FileSystem> inner_ = keel::storage::make_posix_file_system();
};

bool write_recovery_fixture(const std::string& dir, std::uint64_t batch_size) {
  auto wal = keel::storage::open_wal_log_store(dir, {}, std::make_shared<NoSyncFileSystem>());
  if (!wal.is_ok()) return false;
  std::vector<LogEntry> batch = make_batch(batch_size);
  for (std::uint64_t next = 1; next <= kRecoveryEntries; next += batch.size()) {
    number_from(batch, next);
    if (!(*wal)->append(batch).is_ok()) return false;
  }
  ::sync();  // the fixture's bytes on disk before "cold" evicts them
  return true;
}

void evict_from_page_cache(const std::string& dir) {
  for (const auto& file : std::filesystem::directory_iterator(dir)) {
    const int fd = ::open(file.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

void BM_WalRecovery(benchmark::State& state) {
  const auto batch_size = static_cast<std::uint64_t>(state.range(0));
  const bool cold = state.range(1) != 0;
  const ScopedPath fixture("recovery");
  const std::string& dir = fixture.str();
  if (!write_recovery_fixture(dir, batch_size)) {
    state.SkipWithError("could not write the recovery fixture");
    return;
  }
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      evict_from_page_cache(dir);
      state.ResumeTiming();
    }
    auto wal = keel::WalLogStore::open(dir);
    if (!wal.is_ok() || (*wal)->last_index() != Index(kRecoveryEntries)) {
      state.SkipWithError("recovery did not find the whole log");
      return;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kRecoveryEntries));
  state.SetLabel(cold ? "cold" : "warm");
}

BENCHMARK(BM_WalAppend)->ArgName("batch")->Arg(1)->Arg(16)->Arg(256)->UseRealTime();
BENCHMARK(BM_WriteFdatasync)->ArgName("batch")->Arg(1)->Arg(16)->Arg(256)->UseRealTime();
BENCHMARK(BM_WalVsFloor)->ArgName("batch")->Arg(1)->Arg(16)->Arg(256)->UseRealTime();
BENCHMARK(BM_WalRecovery)
    ->ArgNames({"batch", "cold"})  // kRecoveryEntries is a multiple of each batch
    ->Args({1, 0})
    ->Args({1, 1})
    ->Args({250, 0})
    ->Args({250, 1})
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
