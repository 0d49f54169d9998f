// transport/tcp_frame.h — the bytes keel's TCP transport puts on a
// connection: a handshake in each direction when it opens, then frames, each
// carrying one message the runtime already encoded (docs/formats.md, "TCP
// transport"). Pure functions over untrusted bytes: nothing here touches a
// socket, so the fuzz targets and unit tests drive exactly what production
// parses.
//
// A connection is one-way for frames: the dialing server sends, the
// listening server receives. Per ordered pair of servers there is one
// connection per lane.
//
//   hello  (dialer -> listener, 36 bytes):
//     "KEEL" | version u16 | lane u8 | flags u8 (0) | cluster id u64 |
//     from u64 | to u64 | crc32c u32 of the 32 bytes before it
//   answer (listener -> dialer, 12 bytes):
//     "KEEL" | version u16 | code u8 | reserved u8 (0) | crc32c u32 of the 8 before
//   frame:
//     length u32 (of the payload) | kind u8 | reserved 3 bytes (0) |
//     crc32c u32 of the 8 header bytes before it followed by the payload | payload
//
// Integers are little-endian. A reader checks every length against its
// bound before it allocates, and every reserved byte is zero.
//
// Thread safety: pure functions and plain values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "keel/status.h"
#include "keel/transport.h"

namespace keel::transport {

inline constexpr std::uint16_t kTcpProtocolVersion = 1;
inline constexpr std::size_t kHelloBytes = 36;
inline constexpr std::size_t kAnswerBytes = 12;
inline constexpr std::size_t kFrameHeaderBytes = 12;

struct Hello {
  std::uint16_t version = kTcpProtocolVersion;
  Lane lane = Lane::kControl;
  std::uint64_t cluster_id = 0;
  std::uint64_t from = 0;
  std::uint64_t to = 0;
};

// The listener's verdict on a hello. Anything but kAccepted closes the
// connection after the answer is sent.
enum class HandshakeCode : std::uint8_t {
  kAccepted = 0,
  kWrongCluster = 1,
  kUnsupportedVersion = 2,
  kWrongDestination = 3,  // the hello names another server as `to`
  kMalformed = 4,         // bad magic, checksum, lane or flags
  kUnknownSender = 5,     // the listener refuses this sender id (0)
};
const char* to_string(HandshakeCode code);

std::string encode_hello(const Hello& hello);
// Exactly kHelloBytes. Corruption with a reason for a wrong magic, checksum,
// lane or reserved field; a hello of another version decodes (its version
// field says so) so the listener can answer kUnsupportedVersion.
Result<Hello> decode_hello(std::string_view bytes);

std::string encode_answer(HandshakeCode code);
// Exactly kAnswerBytes.
Result<HandshakeCode> decode_answer(std::string_view bytes);

enum class FrameKind : std::uint8_t {
  kMessage = 1,    // one encoded keel message
  kKeepalive = 2,  // empty; keeps an idle connection from timing out
};

// The header of a frame carrying `payload` (which is sent after it, from
// its own buffer: payloads are never copied to join their header).
std::string encode_frame_header(FrameKind kind, std::string_view payload);

// What parse_frame found at the front of its input.
struct ParsedFrame {
  enum class Outcome { kNeedMore, kFrame, kError };
  Outcome outcome = Outcome::kNeedMore;
  // kNeedMore: the input holds too few bytes; `needed` is how many the
  // whole frame takes once its header is known (else kFrameHeaderBytes).
  std::size_t needed = kFrameHeaderBytes;
  // kFrame: the frame's kind, its payload (a view into the input) and the
  // bytes it spans, header included.
  FrameKind kind = FrameKind::kMessage;
  std::string_view payload;
  std::size_t consumed = 0;
  // kError: whether the length passed the bound (else the frame is
  // malformed: an unknown kind, a non-zero reserved byte, a checksum
  // mismatch), and why, in words.
  bool oversized = false;
  Status error;
};
// Parses the frame at the front of `input`, whose payload may be at most
// `max_payload_bytes`. A length past the bound fails as soon as the header
// is in, before anything is allocated for the payload.
ParsedFrame parse_frame(std::string_view input, std::size_t max_payload_bytes);

}  // namespace keel::transport
