// The TCP transport's handshake and frame formats (transport/tcp_frame.h).
#include "transport/tcp_frame.h"

#include <array>
#include <cstring>

#include "core/crc32c.h"

namespace keel::transport {

namespace {

constexpr char kMagic[4] = {'K', 'E', 'E', 'L'};

void put16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>(v >> 8));
}
void put32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
std::uint64_t get(std::string_view bytes, std::size_t at, int width) {
  std::uint64_t v = 0;
  for (int i = 0; i < width; ++i) {
    v |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
  }
  return v;
}
std::uint32_t crc(std::string_view bytes) { return core::crc32c(bytes); }

}  // namespace

const char* to_string(HandshakeCode code) {
  switch (code) {
    case HandshakeCode::kAccepted:
      return "accepted";
    case HandshakeCode::kWrongCluster:
      return "wrong cluster id";
    case HandshakeCode::kUnsupportedVersion:
      return "unsupported protocol version";
    case HandshakeCode::kWrongDestination:
      return "addressed to another server";
    case HandshakeCode::kMalformed:
      return "malformed hello";
    case HandshakeCode::kUnknownSender:
      return "unknown sender";
  }
  return "unknown handshake code";
}

std::string encode_hello(const Hello& hello) {
  std::string out(kMagic, sizeof kMagic);
  put16(out, hello.version);
  out.push_back(static_cast<char>(hello.lane));
  out.push_back(0);
  put64(out, hello.cluster_id);
  put64(out, hello.from);
  put64(out, hello.to);
  put32(out, crc(out));
  return out;
}

Result<Hello> decode_hello(std::string_view bytes) {
  if (bytes.size() != kHelloBytes) return Status::corruption("tcp hello: wrong size");
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    return Status::corruption("tcp hello: not a keel peer (bad magic)");
  }
  if (get(bytes, 32, 4) != crc(bytes.substr(0, 32))) {
    return Status::corruption("tcp hello: checksum mismatch");
  }
  Hello hello;
  hello.version = static_cast<std::uint16_t>(get(bytes, 4, 2));
  const auto lane = static_cast<std::uint8_t>(bytes[6]);
  if (lane > static_cast<std::uint8_t>(Lane::kReplication)) {
    return Status::corruption("tcp hello: unknown lane " + std::to_string(lane));
  }
  if (bytes[7] != 0) return Status::corruption("tcp hello: non-zero flags");
  hello.lane = static_cast<Lane>(lane);
  hello.cluster_id = get(bytes, 8, 8);
  hello.from = get(bytes, 16, 8);
  hello.to = get(bytes, 24, 8);
  return hello;
}

std::string encode_answer(HandshakeCode code) {
  std::string out(kMagic, sizeof kMagic);
  put16(out, kTcpProtocolVersion);
  out.push_back(static_cast<char>(code));
  out.push_back(0);
  put32(out, crc(out));
  return out;
}

Result<HandshakeCode> decode_answer(std::string_view bytes) {
  if (bytes.size() != kAnswerBytes) return Status::corruption("tcp answer: wrong size");
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    return Status::corruption("tcp answer: not a keel peer (bad magic)");
  }
  if (get(bytes, 8, 4) != crc(bytes.substr(0, 8))) {
    return Status::corruption("tcp answer: checksum mismatch");
  }
  const auto code = static_cast<std::uint8_t>(bytes[6]);
  if (code > static_cast<std::uint8_t>(HandshakeCode::kUnknownSender) || bytes[7] != 0) {
    return Status::corruption("tcp answer: unknown code " + std::to_string(code));
  }
  return static_cast<HandshakeCode>(code);
}

std::string encode_frame_header(FrameKind kind, std::string_view payload) {
  std::string out;
  out.reserve(kFrameHeaderBytes);
  put32(out, static_cast<std::uint32_t>(payload.size()));
  out.push_back(static_cast<char>(kind));
  out.append(3, '\0');
  std::uint32_t sum = core::crc32c_extend(0, out.data(), out.size());
  sum = core::crc32c_extend(sum, payload.data(), payload.size());
  put32(out, sum);
  return out;
}

ParsedFrame parse_frame(std::string_view input, std::size_t max_payload_bytes) {
  ParsedFrame parsed;
  if (input.size() < kFrameHeaderBytes) return parsed;
  const std::uint64_t length = get(input, 0, 4);
  const auto kind = static_cast<std::uint8_t>(input[4]);
  auto fail = [&](std::string why) {
    parsed.outcome = ParsedFrame::Outcome::kError;
    parsed.error = Status::corruption("tcp frame: " + std::move(why));
    return parsed;
  };
  if (length > max_payload_bytes) {
    parsed.oversized = true;
    return fail("payload of " + std::to_string(length) + " bytes exceeds max_frame_bytes (" +
                std::to_string(max_payload_bytes) + ")");
  }
  if (kind != static_cast<std::uint8_t>(FrameKind::kMessage) &&
      kind != static_cast<std::uint8_t>(FrameKind::kKeepalive)) {
    return fail("unknown kind " + std::to_string(kind));
  }
  if (input[5] != 0 || input[6] != 0 || input[7] != 0) return fail("non-zero reserved bytes");
  if (kind == static_cast<std::uint8_t>(FrameKind::kKeepalive) && length != 0) {
    return fail("keepalive with a payload");
  }
  parsed.needed = kFrameHeaderBytes + static_cast<std::size_t>(length);
  if (input.size() < parsed.needed) return parsed;
  const std::string_view payload =
      input.substr(kFrameHeaderBytes, static_cast<std::size_t>(length));
  std::uint32_t sum = core::crc32c_extend(0, input.data(), 8);
  sum = core::crc32c_extend(sum, payload.data(), payload.size());
  if (sum != get(input, 8, 4)) return fail("checksum mismatch");
  parsed.outcome = ParsedFrame::Outcome::kFrame;
  parsed.kind = static_cast<FrameKind>(kind);
  parsed.payload = payload;
  parsed.consumed = parsed.needed;
  return parsed;
}

}  // namespace keel::transport
