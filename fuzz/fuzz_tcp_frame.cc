// libFuzzer target: the TCP transport's frame parser over an arbitrary byte
// stream, driven as an inbound connection drives it (frames one after
// another from the front until more bytes are needed or one is bad).
// Properties: nothing is read past the input, a parsed frame re-encodes to
// exactly the bytes it was parsed from.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "transport/tcp_frame.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  for (;;) {
    const keel::transport::ParsedFrame parsed = keel::transport::parse_frame(input, 1 << 16);
    if (parsed.outcome != keel::transport::ParsedFrame::Outcome::kFrame) break;
    if (parsed.consumed > input.size()) std::abort();
    const std::string again = keel::transport::encode_frame_header(parsed.kind, parsed.payload) +
                              std::string(parsed.payload);
    if (again != input.substr(0, parsed.consumed)) std::abort();
    input.remove_prefix(parsed.consumed);
  }
  return 0;
}
