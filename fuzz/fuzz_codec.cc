// libFuzzer target: the wire codec's decoders (messages, hard state,
// configurations) on hostile bytes, with small bounds so that the fuzzer
// reaches them. Property (core/codec.h): whatever decodes re-encodes to the
// very same bytes.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  keel::core::DecodeLimits limits;
  limits.max_frame_bytes = 1 << 16;
  limits.max_entries_per_message = 64;
  limits.max_entry_bytes = 1 << 12;
  limits.max_servers = 16;
  limits.max_address_bytes = 64;
  limits.max_chunk_bytes = 1 << 12;
  if (auto message = keel::core::decode(input, limits); message.is_ok()) {
    if (keel::core::encode(*message) != input) std::abort();
  }
  if (auto state = keel::core::decode_hard_state(input, limits); state.is_ok()) {
    if (keel::core::encode_hard_state(*state) != input) std::abort();
  }
  if (auto configuration = keel::core::decode_configuration(input, limits); configuration.is_ok()) {
    if (keel::core::encode_configuration(*configuration) != input) std::abort();
  }
  return 0;
}
