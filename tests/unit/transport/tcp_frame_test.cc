// The TCP transport's handshake and frame formats (transport/tcp_frame.h):
// round trips, and every rejection a hostile or broken peer can provoke.
#include "transport/tcp_frame.h"

#include <string>

#include <gtest/gtest.h>

namespace keel::transport {
namespace {

Hello sample_hello() { return Hello{kTcpProtocolVersion, Lane::kReplication, 42, 1, 2}; }

TEST(TcpFrame, HelloRoundTrips) {
  const std::string bytes = encode_hello(sample_hello());
  ASSERT_EQ(bytes.size(), kHelloBytes);
  Result<Hello> decoded = decode_hello(bytes);
  ASSERT_TRUE(decoded.is_ok()) << decoded.status().to_string();
  EXPECT_EQ(decoded->lane, Lane::kReplication);
  EXPECT_EQ(decoded->cluster_id, 42u);
  EXPECT_EQ(decoded->from, 1u);
  EXPECT_EQ(decoded->to, 2u);
}

TEST(TcpFrame, HelloRejectsWhatIsNotAKeelPeer) {
  std::string http = "GET /v1/kv/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  http.resize(kHelloBytes);  // what the listener reads as a hello
  EXPECT_NE(decode_hello(http).status().message().find("bad magic"), std::string::npos);
  std::string flipped = encode_hello(sample_hello());
  flipped[12] ^= 1;  // inside the cluster id
  EXPECT_NE(decode_hello(flipped).status().message().find("checksum"), std::string::npos);
  EXPECT_FALSE(decode_hello(encode_hello(sample_hello()).substr(1)).is_ok());
}

TEST(TcpFrame, HelloOfAnotherVersionDecodesSoTheListenerCanSaySo) {
  Hello future = sample_hello();
  future.version = kTcpProtocolVersion + 1;
  Result<Hello> decoded = decode_hello(encode_hello(future));
  ASSERT_TRUE(decoded.is_ok());
  EXPECT_EQ(decoded->version, kTcpProtocolVersion + 1);
}

TEST(TcpFrame, AnswerRoundTripsEveryCode) {
  for (auto code : {HandshakeCode::kAccepted, HandshakeCode::kWrongCluster,
                    HandshakeCode::kUnsupportedVersion, HandshakeCode::kWrongDestination,
                    HandshakeCode::kMalformed, HandshakeCode::kUnknownSender}) {
    Result<HandshakeCode> decoded = decode_answer(encode_answer(code));
    ASSERT_TRUE(decoded.is_ok());
    EXPECT_EQ(*decoded, code);
  }
  std::string bad = encode_answer(HandshakeCode::kAccepted);
  bad[6] = 9;
  EXPECT_FALSE(decode_answer(bad).is_ok());
}

std::string frame(FrameKind kind, const std::string& payload) {
  return encode_frame_header(kind, payload) + payload;
}

TEST(TcpFrame, FramesParseOneAfterAnotherAndAskForWhatIsMissing) {
  const std::string stream = frame(FrameKind::kMessage, "hello") +
                             frame(FrameKind::kKeepalive, "") +
                             frame(FrameKind::kMessage, std::string(1000, 'x'));
  std::string_view rest = stream;
  ParsedFrame a = parse_frame(rest, 4096);
  ASSERT_EQ(a.outcome, ParsedFrame::Outcome::kFrame);
  EXPECT_EQ(a.payload, "hello");
  rest.remove_prefix(a.consumed);
  ParsedFrame b = parse_frame(rest, 4096);
  ASSERT_EQ(b.outcome, ParsedFrame::Outcome::kFrame);
  EXPECT_EQ(b.kind, FrameKind::kKeepalive);
  rest.remove_prefix(b.consumed);
  // Only part of the third: the parser says how much the whole takes.
  ParsedFrame partial = parse_frame(rest.substr(0, 5), 4096);
  EXPECT_EQ(partial.outcome, ParsedFrame::Outcome::kNeedMore);
  EXPECT_EQ(partial.needed, kFrameHeaderBytes);
  partial = parse_frame(rest.substr(0, 100), 4096);
  EXPECT_EQ(partial.outcome, ParsedFrame::Outcome::kNeedMore);
  EXPECT_EQ(partial.needed, kFrameHeaderBytes + 1000);
  ParsedFrame c = parse_frame(rest, 4096);
  ASSERT_EQ(c.outcome, ParsedFrame::Outcome::kFrame);
  EXPECT_EQ(c.payload.size(), 1000u);
  EXPECT_EQ(c.consumed, rest.size());
}

TEST(TcpFrame, OversizedLengthFailsFromTheHeaderAlone) {
  const std::string big = encode_frame_header(FrameKind::kMessage, std::string(5000, 'y'));
  ParsedFrame parsed = parse_frame(big, 4096);  // only the header: the payload never came
  ASSERT_EQ(parsed.outcome, ParsedFrame::Outcome::kError);
  EXPECT_TRUE(parsed.oversized);
  EXPECT_NE(parsed.error.message().find("exceeds max_frame_bytes"), std::string::npos);
}

TEST(TcpFrame, CorruptFramesAreErrorsWithTheirReason) {
  std::string flipped = frame(FrameKind::kMessage, "payload");
  flipped.back() ^= 0x20;
  EXPECT_NE(parse_frame(flipped, 4096).error.message().find("checksum"), std::string::npos);
  EXPECT_FALSE(parse_frame(flipped, 4096).oversized);

  std::string kind = frame(FrameKind::kMessage, "payload");
  kind[4] = 7;
  EXPECT_NE(parse_frame(kind, 4096).error.message().find("unknown kind"), std::string::npos);

  std::string reserved = frame(FrameKind::kMessage, "payload");
  reserved[6] = 1;
  EXPECT_NE(parse_frame(reserved, 4096).error.message().find("reserved"), std::string::npos);

  std::string keepalive = frame(FrameKind::kKeepalive, "");
  keepalive[0] = 3;  // a keepalive claiming a payload
  EXPECT_EQ(parse_frame(keepalive + "abc", 4096).outcome, ParsedFrame::Outcome::kError);
}

TEST(TcpFrame, ChecksumCoversTheHeaderToo) {
  // Same payload, another kind: if the header were not covered, a flipped
  // kind bit would pass as another valid frame.
  std::string message = frame(FrameKind::kMessage, "");
  message[4] = static_cast<char>(FrameKind::kKeepalive);
  EXPECT_EQ(parse_frame(message, 4096).outcome, ParsedFrame::Outcome::kError);
}

}  // namespace
}  // namespace keel::transport
