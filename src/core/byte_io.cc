#include "core/byte_io.h"

namespace keel::core {

void ByteWriter::fixed64(std::uint64_t value) {
  for (int shift = 0; shift < 64; shift += 8) u8(static_cast<std::uint8_t>(value >> shift));
}

void ByteWriter::varint(std::uint64_t value) {
  while (value >= 0x80) {
    u8(static_cast<std::uint8_t>(value | 0x80));
    value >>= 7;
  }
  u8(static_cast<std::uint8_t>(value));
}

void ByteWriter::length_prefixed(std::string_view data) {
  varint(data.size());
  bytes_.append(data);
}

void ByteReader::fail(const std::string& what) {
  if (!ok()) return;
  std::string where = std::string(context_) + ": ";
  if (item_ != nullptr) where += std::string(item_) + " " + std::to_string(item_number_) + ": ";
  status_ = Status::corruption(where + what + " at byte " + std::to_string(offset_) + " of " +
                               std::to_string(bytes_.size()));
  offset_ = bytes_.size();  // nothing more is read once the input is known bad
}

std::uint8_t ByteReader::u8(const char* field) {
  if (remaining() < 1) {
    fail(std::string("truncated before ") + field);
    return 0;
  }
  return static_cast<std::uint8_t>(bytes_[offset_++]);
}

std::uint64_t ByteReader::fixed64(const char* field) {
  if (remaining() < 8) {
    fail(std::string("truncated in ") + field + " (8 bytes needed, " + std::to_string(remaining()) +
         " left)");
    return 0;
  }
  std::uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 8) {
    value |= std::uint64_t{static_cast<std::uint8_t>(bytes_[offset_++])} << shift;
  }
  return value;
}

// Rejects what a correct writer never produces: an 11th byte (or a 10th with
// bits above 2^64), and a final zero byte after a continuation (an overlong
// encoding, which would let two different frames mean the same message).
std::uint64_t ByteReader::varint(const char* field) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < kMaxVarintBytes; ++i) {
    if (remaining() < 1) {
      fail(std::string("truncated in varint ") + field);
      return 0;
    }
    const auto byte = static_cast<std::uint8_t>(bytes_[offset_++]);
    if (i == kMaxVarintBytes - 1 && byte > 1) {
      fail(std::string("varint ") + field + " overflows 64 bits");
      return 0;
    }
    value |= std::uint64_t{byte & 0x7fU} << (7 * i);
    if ((byte & 0x80) == 0) {
      if (byte == 0 && i > 0) {
        fail(std::string("overlong varint ") + field);
        return 0;
      }
      return value;
    }
  }
  fail(std::string("varint ") + field + " longer than 10 bytes");
  return 0;
}

std::string_view ByteReader::length_prefixed(const char* field, std::uint64_t max_bytes,
                                             const char* bound) {
  const std::uint64_t length = varint(field);
  if (!ok()) return {};
  if (length > max_bytes) {
    fail(std::string(field) + " length " + std::to_string(length) + " exceeds " + bound + " " +
         std::to_string(max_bytes));
    return {};
  }
  if (length > remaining()) {
    fail(std::string(field) + " length " + std::to_string(length) + " exceeds the " +
         std::to_string(remaining()) + " bytes left");
    return {};
  }
  std::string_view data = bytes_.substr(offset_, static_cast<std::size_t>(length));
  offset_ += data.size();
  return data;
}

void ByteReader::expect_end() {
  if (ok() && remaining() > 0) {
    fail(std::to_string(remaining()) + " trailing bytes");
  }
}

}  // namespace keel::core
