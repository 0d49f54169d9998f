// CRC-32C: the published check values, and the hardware and portable
// implementations agreeing on every length and alignment.
#include "core/crc32c.h"

#include <string>

#include <gtest/gtest.h>

#include "core/prng.h"

namespace keel::core {
namespace {

TEST(Crc32c, MatchesThePublishedCheckValues) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the standard check string
  // RFC 3720 (iSCSI) appendix B.4.
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(crc32c(""), 0u);
}

TEST(Crc32c, PortableMatchesThePublishedCheckValue) {
  EXPECT_EQ(crc32c_extend_portable(0, "123456789", 9), 0xE3069283u);
}

TEST(Crc32c, HardwareAndPortableAgreeOnEveryLengthAndAlignment) {
  if (!crc32c_hardware_available()) GTEST_SKIP() << "this CPU has no SSE4.2";
  core::Prng prng(7);
  std::string data(4096 + 16, '\0');
  for (char& c : data) c = static_cast<char>(prng.next());
  for (std::size_t offset = 0; offset < 16; ++offset) {
    for (std::size_t size = 0; size <= 1100; ++size) {
      const char* p = data.data() + offset;
      ASSERT_EQ(crc32c_extend_hardware(0, p, size), crc32c_extend_portable(0, p, size))
          << "offset " << offset << " size " << size;
      ASSERT_EQ(crc32c_extend_hardware(0x12345678u, p, size),
                crc32c_extend_portable(0x12345678u, p, size));
    }
  }
  EXPECT_EQ(crc32c_extend_hardware(0, data.data(), data.size()),
            crc32c_extend_portable(0, data.data(), data.size()));
}

TEST(Crc32c, ExtendingEqualsChecksummingTheConcatenation) {
  const std::string a = "the quick brown fox ";
  const std::string b = "jumps over the lazy dog, twice over and once more";
  EXPECT_EQ(crc32c_extend(crc32c(a), b.data(), b.size()), crc32c(a + b));
  EXPECT_EQ(
      crc32c_extend_portable(crc32c_extend_portable(0, a.data(), a.size()), b.data(), b.size()),
      crc32c(a + b));
}

TEST(Crc32c, DetectsEverySingleBitFlip) {
  std::string data(256, 'k');
  const std::uint32_t good = crc32c(data);
  for (std::size_t bit = 0; bit < data.size() * 8; ++bit) {
    std::string flipped = data;
    flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
    ASSERT_NE(crc32c(flipped), good) << "bit " << bit;
  }
}

}  // namespace
}  // namespace keel::core
