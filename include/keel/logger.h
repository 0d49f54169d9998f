// keel/logger.h — where keel's log lines go: a levelled logger with
// structured key-value fields that the user plugs into keel::Raft
// (RaftDependencies::logger) and the TCP transport
// (TcpTransportOptions::logger), so that keel's lines land in the service's
// own log. Without one, lines of level info and above go to stderr.
//
// keel logs what an operator needs to know and cannot see otherwise: why a
// snapshot, a transfer, a frame or a connection was dropped, membership and
// leadership steps, the reason a server stops. It never logs per command.
//
// Thread safety: log() and enabled() are called from any of keel's threads,
// concurrently; an implementation must be thread-safe, must not block for
// long (it runs on the raft loop too), and must not call back into the Raft
// or the transport that logs.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace keel {

enum class LogLevel : std::uint8_t {
  kDebug,  // for following the protocol step by step
  kInfo,   // the steps an operator reads: transfers, membership, snapshots
  kWarn,   // something was dropped or refused, and keel goes on
  kError,  // this server stops, or data may be at risk
};

const char* to_string(LogLevel level);

// One key-value field of a line: `server=3 peer=2 index=1200`.
struct LogField {
  std::string_view key;
  std::string value;

  LogField(std::string_view k, std::string v) : key(k), value(std::move(v)) {}
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const char* v) : key(k), value(v) {}
  LogField(std::string_view k, std::uint64_t v) : key(k), value(std::to_string(v)) {}
};

class Logger {
 public:
  virtual ~Logger() = default;
  // Whether a line of `level` would be kept: checked before a line is
  // built, so that a discarded line costs nothing.
  virtual bool enabled(LogLevel level) const = 0;
  // `message` says what happened, in words; `fields` name the things it
  // happened to. Both are valid only during the call: a logger that keeps
  // them (writes them later, on another thread) copies them.
  virtual void log(LogLevel level, std::string_view message, std::span<const LogField> fields) = 0;

  // Checks enabled(), then logs.
  void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
    if (enabled(level))
      log(level, message, std::span<const LogField>(fields.begin(), fields.size()));
  }
};

// One line per call on stderr, written whole (lines of concurrent calls never
// interleave): "keel <level> <message> key=value ...", values quoted when
// they hold spaces or quotes. Lines below `min_level` are dropped.
std::shared_ptr<Logger> make_stderr_logger(LogLevel min_level = LogLevel::kInfo);

// Drops every line.
std::shared_ptr<Logger> make_null_logger();

}  // namespace keel
