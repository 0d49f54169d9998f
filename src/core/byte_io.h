// core/byte_io.h — the primitives of keel's binary formats: a writer that
// appends little-endian integers, varints and length-prefixed byte strings,
// and a reader that takes them apart from untrusted bytes.
//
// The reader treats its input as hostile (DESIGN §2.4): every read is checked
// against the bytes that remain, so a truncated or forged frame can make it
// fail but never read out of bounds. Its error is sticky, like a stream's:
// after the first failure every read returns zero / empty and the first
// failure, with the byte offset where it happened, is what status() reports.
// Callers can therefore read a whole structure and check once, as long as
// they never size an allocation or a loop from a value read after a failure
// without checking ok() (a failed read returns 0, which is always safe).
//
// Varints are LEB128 (7 bits per byte, low bits first). The reader accepts
// only the canonical (shortest) encoding, so one value has exactly one
// encoding and decode-then-encode reproduces the input byte for byte.
//
// Thread safety: values; one object per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "keel/status.h"

namespace keel::core {

// The longest canonical varint of a 64-bit value: ceil(64 / 7) bytes.
inline constexpr std::size_t kMaxVarintBytes = 10;

class ByteWriter {
 public:
  void u8(std::uint8_t value) { bytes_.push_back(static_cast<char>(value)); }
  void fixed64(std::uint64_t value);
  void varint(std::uint64_t value);
  // A varint length, then the bytes.
  void length_prefixed(std::string_view data);

  std::string take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

class ByteReader {
 public:
  // `context` names the structure being decoded ("wire message", "hard
  // state", ...) and starts every error message.
  ByteReader(std::string_view bytes, const char* context) : bytes_(bytes), context_(context) {}

  // Each names the field it reads, for the error message.
  std::uint8_t u8(const char* field);
  std::uint64_t fixed64(const char* field);
  std::uint64_t varint(const char* field);
  // A varint length, at most `max_bytes` (named `bound` in errors), then that
  // many bytes. The view points into the input.
  std::string_view length_prefixed(const char* field, std::uint64_t max_bytes, const char* bound);

  // Names the item of a list being read ("entry", 3), so that an error says
  // which one was bad; clear with within(nullptr, 0).
  void within(const char* item, std::size_t number) {
    item_ = item;
    item_number_ = number;
  }
  // Records a failure at the current offset (only the first one is kept) and
  // stops further reads.
  void fail(const std::string& what);
  // Fails unless every byte was consumed: trailing bytes mean the frame is
  // not what the sender wrote (or was written by a newer format).
  void expect_end();

  bool ok() const { return status_.is_ok(); }
  const Status& status() const { return status_; }
  std::size_t offset() const { return offset_; }
  std::size_t remaining() const { return bytes_.size() - offset_; }

 private:
  std::string_view bytes_;
  const char* context_;
  const char* item_ = nullptr;
  std::size_t item_number_ = 0;
  std::size_t offset_ = 0;
  Status status_;
};

}  // namespace keel::core
