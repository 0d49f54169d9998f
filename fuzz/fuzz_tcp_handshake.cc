// libFuzzer target: the TCP transport's hello and answer decoders.
// Properties: no crash on any input; what decodes re-encodes to the same
// bytes.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "transport/tcp_frame.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  namespace t = keel::transport;
  if (auto hello = t::decode_hello(input.substr(0, t::kHelloBytes)); hello.is_ok()) {
    if (t::encode_hello(*hello) != input.substr(0, t::kHelloBytes)) std::abort();
  }
  if (auto answer = t::decode_answer(input.substr(0, t::kAnswerBytes)); answer.is_ok()) {
    if (t::encode_answer(*answer).substr(6, 1) != input.substr(6, 1)) std::abort();
  }
  return 0;
}
