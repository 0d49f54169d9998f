// core/codec.h — keel's versioned binary encodings of the values that leave
// a node: wire messages (what transports carry), the hard state (what the
// stable store keeps) and cluster configurations (the payload of
// kConfiguration entries and of snapshots). docs/formats.md gives the byte
// layouts.
//
// Encoding cannot fail. Decoding treats its input as hostile (DESIGN §2.4):
// a frame comes from the network or the disk, and a peer running a newer
// version, a bit flip or an attacker must cost one rejected frame, never a
// crash or a huge allocation. So decode checks every length against the bytes
// that remain and against DecodeLimits, rejects unknown versions, types and
// enum values and trailing bytes, and returns Status::corruption naming what
// was wrong and at which byte. It accepts only the canonical encoding, so for
// any frame it accepts, encode(decode(frame)) == frame.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/message.h"
#include "core/ready.h"
#include "keel/status.h"
#include "keel/types.h"

namespace keel::core {

// The first byte of every encoding. A decoder refuses versions it does not
// know instead of guessing at a layout it has never seen.
inline constexpr std::uint8_t kMessageFormatVersion = 1;
inline constexpr std::uint8_t kHardStateFormatVersion = 1;
// The hard state of a server still catching up after starting empty.
inline constexpr std::uint8_t kHardStateWithFloorFormatVersion = 2;
inline constexpr std::uint8_t kConfigurationFormatVersion = 1;
// A joint configuration (thesis §4.3): version 1's servers, then the
// outgoing voters. Written only for a joint configuration.
inline constexpr std::uint8_t kJointConfigurationFormatVersion = 2;

// Bounds on what a decoder accepts. Each stops a forged length or count from
// making the receiver allocate or loop far beyond what a correct peer sends;
// the defaults leave room above Config's defaults (64 entries and 1 MiB per
// append, 8 MiB per command). A runtime that raises those raises these too.
struct DecodeLimits {
  // The whole frame; checked before anything else is read.
  std::uint64_t max_frame_bytes = 64ULL << 20;
  // Entries in one append message.
  std::uint64_t max_entries_per_message = 4096;
  // The data of one log entry.
  std::uint64_t max_entry_bytes = 16ULL << 20;
  // Servers in one configuration.
  std::uint64_t max_servers = 1024;
  // One server's address ("host:port", a DNS name, ...).
  std::uint64_t max_address_bytes = 1024;
  // The bytes of one snapshot chunk.
  std::uint64_t max_chunk_bytes = 16ULL << 20;
};

std::string encode(const Message& message);
Result<Message> decode(std::string_view frame, const DecodeLimits& limits = {});

std::string encode_hard_state(const HardState& state);
Result<HardState> decode_hard_state(std::string_view bytes, const DecodeLimits& limits = {});

std::string encode_configuration(const Configuration& configuration);
// Also rejects a server id of 0 (kNoServer) and a server listed twice: no
// correct writer produces them, and the protocol would misbehave on them.
Result<Configuration> decode_configuration(std::string_view bytes, const DecodeLimits& limits = {});

}  // namespace keel::core
