// The stderr and null loggers (keel/logger.h).
#include "keel/logger.h"

#include <cstdio>
#include <mutex>

namespace keel {

const char* to_string(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

namespace {

// A value as it goes on the line: bare when it cannot be misread, else
// quoted with its quotes and backslashes escaped.
void append_value(std::string& line, const std::string& value) {
  bool plain = !value.empty();
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '\\' || c == '=' || c == '\n' || c == '\t') plain = false;
  }
  if (plain) {
    line += value;
    return;
  }
  line += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') line += '\\';
    line += c == '\n' ? ' ' : c;
  }
  line += '"';
}

class StderrLogger final : public Logger {
 public:
  explicit StderrLogger(LogLevel min_level) : min_level_(min_level) {}
  using Logger::log;

  bool enabled(LogLevel level) const override { return level >= min_level_; }

  void log(LogLevel level, std::string_view message, std::span<const LogField> fields) override {
    if (!enabled(level)) return;
    std::string line = "keel ";
    line += to_string(level);
    line += ' ';
    for (char c : message) line += c == '\n' ? ' ' : c;  // one line, whatever the message
    for (const LogField& field : fields) {
      line += ' ';
      line += field.key;
      line += '=';
      append_value(line, field.value);
    }
    line += '\n';
    // One write per line, under a lock: lines of concurrent callers never
    // interleave.
    std::lock_guard lock(mutex_);
    std::fwrite(line.data(), 1, line.size(), stderr);
  }

 private:
  const LogLevel min_level_;
  std::mutex mutex_;
};

class NullLogger final : public Logger {
 public:
  using Logger::log;
  bool enabled(LogLevel) const override { return false; }
  void log(LogLevel, std::string_view, std::span<const LogField>) override {}
};

}  // namespace

std::shared_ptr<Logger> make_stderr_logger(LogLevel min_level) {
  return std::make_shared<StderrLogger>(min_level);
}

std::shared_ptr<Logger> make_null_logger() { return std::make_shared<NullLogger>(); }

}  // namespace keel
