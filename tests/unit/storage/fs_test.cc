// The real disk through storage/fs.h: every call does what the interface
// says, and errors name the path.
#include "storage/fs.h"

#include <string>

#include <gtest/gtest.h>

#include "storage_test_util.h"

namespace keel::storage {
namespace {

using testing::TempDir;

std::string read_file(File& file) {
  Result<std::uint64_t> size = file.size();
  EXPECT_TRUE(size.is_ok());
  std::string bytes(*size, '\0');
  Result<std::size_t> read = file.read_at(0, std::span<char>(bytes.data(), bytes.size()));
  EXPECT_TRUE(read.is_ok());
  bytes.resize(*read);
  return bytes;
}

TEST(PathHelpers, JoinAndParent) {
  EXPECT_EQ(join_path("a", "b"), "a/b");
  EXPECT_EQ(join_path("a/", "b"), "a/b");
  EXPECT_EQ(parent_dir("a/b/c"), "a/b");
  EXPECT_EQ(parent_dir("/a"), "/");
  EXPECT_EQ(parent_dir("a"), ".");
  EXPECT_EQ(parent_dir("a/b/"), "a");
}

TEST(PosixFileSystem, WritesReadsAllocatesAndTruncates) {
  TempDir dir;
  auto fs = make_posix_file_system();
  Result<std::unique_ptr<File>> file = fs->open(dir / "f", OpenMode::kCreateNew);
  ASSERT_TRUE(file.is_ok()) << file.status();
  ASSERT_TRUE((*file)->write_at(0, "hello").is_ok());
  ASSERT_TRUE((*file)->append(" world").is_ok());
  ASSERT_TRUE((*file)->write_at(0, "J").is_ok());
  EXPECT_EQ(read_file(**file), "Jello world");
  ASSERT_TRUE((*file)->allocate(4096).is_ok());
  EXPECT_EQ(*(*file)->size(), 4096u);
  EXPECT_EQ(read_file(**file).substr(11), std::string(4096 - 11, '\0'));
  ASSERT_TRUE((*file)->allocate(100).is_ok());  // never shrinks
  EXPECT_EQ(*(*file)->size(), 4096u);
  ASSERT_TRUE((*file)->truncate(5).is_ok());
  ASSERT_TRUE((*file)->sync_data().is_ok());
  ASSERT_TRUE((*file)->sync().is_ok());
  EXPECT_EQ(read_file(**file), "Jello");
  char buffer[16];
  Result<std::size_t> past_end = (*file)->read_at(100, std::span<char>(buffer, sizeof buffer));
  ASSERT_TRUE(past_end.is_ok());
  EXPECT_EQ(*past_end, 0u);
}

TEST(PosixFileSystem, DirectoriesRenamesAndRemovals) {
  TempDir dir;
  auto fs = make_posix_file_system();
  ASSERT_TRUE(fs->create_dir(dir / "sub").is_ok());
  ASSERT_TRUE(fs->create_dir(dir / "sub").is_ok());  // exists: fine
  EXPECT_TRUE(*fs->is_dir(dir / "sub"));
  ASSERT_TRUE(fs->open(dir / "sub/a", OpenMode::kCreateNew).is_ok());
  EXPECT_FALSE(fs->open(dir / "sub/a", OpenMode::kCreateNew).is_ok());
  ASSERT_TRUE(fs->rename(dir / "sub/a", dir / "sub/b").is_ok());
  ASSERT_TRUE(fs->sync_dir(dir / "sub").is_ok());
  EXPECT_EQ(*fs->list_dir(dir / "sub"), std::vector<std::string>{"b"});
  EXPECT_FALSE(*fs->exists(dir / "sub/a"));
  EXPECT_FALSE(fs->rename(dir / "sub/b", dir / "c").is_ok()) << "renames stay in one directory";
  ASSERT_TRUE(fs->remove(dir / "sub/b").is_ok());
  ASSERT_TRUE(fs->remove(dir / "sub").is_ok());
  EXPECT_FALSE(*fs->exists(dir / "sub"));
}

TEST(PosixFileSystem, ErrorsNameThePath) {
  TempDir dir;
  auto fs = make_posix_file_system();
  Result<std::unique_ptr<File>> missing = fs->open(dir / "missing", OpenMode::kRead);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(dir / "missing"), std::string::npos);
  Status removed = fs->remove(dir / "missing");
  EXPECT_EQ(removed.code(), StatusCode::kIoError);
  EXPECT_NE(removed.message().find(dir / "missing"), std::string::npos);
}

TEST(PosixFileSystem, CreateDirsDurablyMakesEveryMissingParent) {
  TempDir dir;
  auto fs = make_posix_file_system();
  ASSERT_TRUE(create_dirs_durably(*fs, dir / "a/b/c").is_ok());
  EXPECT_TRUE(*fs->is_dir(dir / "a/b/c"));
  ASSERT_TRUE(create_dirs_durably(*fs, dir / "a/b/c").is_ok());
}

}  // namespace
}  // namespace keel::storage
