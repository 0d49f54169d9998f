// The payload of kRestore entries (runtime/restore_entry.h): a snapshot cut
// into pieces and put back together, and every malformed piece refused with
// Corruption naming what is wrong.
#include "runtime/restore_entry.h"

#include <gtest/gtest.h>

#include "core/crc32c.h"

namespace keel::runtime {
namespace {

Configuration three() {
  return Configuration{
      {Server{ServerId{1}, "a:1"}, Server{ServerId{2}, "b:2"}, Server{ServerId{3}, "c:3"}}};
}

TEST(RestoreEntry, ASnapshotIsCutIntoPiecesThatAddUpToIt) {
  std::string snapshot;
  for (int i = 0; i < 2500; ++i) snapshot += static_cast<char>('a' + i % 26);
  const std::vector<std::string> entries =
      make_restore_entries(snapshot, Index{40}, 1000, three(), Index{1});
  ASSERT_EQ(entries.size(), 3u);
  std::string joined;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    Result<RestorePiece> piece = decode_restore_piece(entries[i]);
    ASSERT_TRUE(piece.is_ok()) << piece.status();
    EXPECT_EQ(piece->first, Index{40});
    EXPECT_EQ(piece->number, i);
    EXPECT_EQ(piece->count, 3u);
    EXPECT_EQ(piece->last(), Index{42});
    EXPECT_EQ(piece->total_bytes, snapshot.size());
    EXPECT_EQ(piece->crc32c, core::crc32c(snapshot));
    if (i == 0) {
      EXPECT_EQ(piece->configuration, three()) << "the first piece carries the configuration";
      EXPECT_EQ(piece->configuration_index, Index{1});
    } else {
      EXPECT_TRUE(piece->configuration.servers.empty());
    }
    joined += piece->bytes;
  }
  EXPECT_EQ(joined, snapshot);
}

TEST(RestoreEntry, AnEmptySnapshotIsOneEntry) {
  const std::vector<std::string> entries =
      make_restore_entries("", Index{7}, 1024, three(), Index{1});
  ASSERT_EQ(entries.size(), 1u);
  Result<RestorePiece> piece = decode_restore_piece(entries[0]);
  ASSERT_TRUE(piece.is_ok()) << piece.status();
  EXPECT_EQ(piece->count, 1u);
  EXPECT_EQ(piece->total_bytes, 0u);
  EXPECT_TRUE(piece->bytes.empty());
}

void expect_refused(const std::string& bytes, const std::string& what) {
  Result<RestorePiece> piece = decode_restore_piece(bytes);
  ASSERT_FALSE(piece.is_ok()) << "accepted: " << what;
  EXPECT_EQ(piece.status().code(), StatusCode::kCorruption);
  EXPECT_NE(piece.status().message().find(what), std::string::npos) << piece.status();
}

TEST(RestoreEntry, MalformedPiecesAreRefused) {
  RestorePiece piece;
  piece.first = Index{5};
  piece.number = 1;
  piece.count = 2;
  piece.total_bytes = 10;
  piece.bytes = "12345";
  const std::string good = encode_restore_piece(piece);
  ASSERT_TRUE(decode_restore_piece(good).is_ok());

  expect_refused("", "version");
  std::string version = good;
  version[0] = 9;
  expect_refused(version, "unknown format version 9");
  expect_refused(good.substr(0, good.size() - 1), "bytes");
  expect_refused(good + "x", "");

  RestorePiece bad = piece;
  bad.number = 2;  // not below count
  expect_refused(encode_restore_piece(bad), "number not below count");
  bad = piece;
  bad.first = Index{0};
  expect_refused(encode_restore_piece(bad), "first index 0");
  bad = piece;
  bad.total_bytes = 3;  // a piece larger than its snapshot
  expect_refused(encode_restore_piece(bad), "larger than the snapshot");
  bad = piece;
  bad.number = 0;
  bad.count = 0;
  expect_refused(encode_restore_piece(bad), "count 0 out of range");
}

}  // namespace
}  // namespace keel::runtime
