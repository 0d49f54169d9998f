#include "sim/history.h"

#include <charconv>
#include <utility>

#include "core/check.h"

namespace keel::sim {

const char* to_string(OpKind kind) {
  switch (kind) {
    case OpKind::kPut:
      return "put";
    case OpKind::kGet:
      return "get";
    case OpKind::kCas:
      return "cas";
    case OpKind::kDelete:
      return "delete";
  }
  return "?";
}

const char* to_string(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kFailed:
      return "failed";
    case Outcome::kUnknown:
      return "unknown";
  }
  return "?";
}

namespace {

// Quotes `text` so that any byte string survives a line-based format: printable
// ASCII stays readable, everything else (newlines, NULs, UTF-8) becomes \xHH.
void append_quoted(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte >= 0x20 && byte < 0x7f) {
      out += c;
    } else {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    }
  }
  out += '"';
}

// --- parsing -------------------------------------------------------------------

struct Token {
  std::string name;   // empty for a bare word
  std::string value;  // the word, or the field's value (unquoted)
  bool quoted = false;
};

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads a quoted string starting at line[pos] == '"'; leaves pos after the
// closing quote.
Status read_quoted(std::string_view line, std::size_t& pos, std::string& out) {
  ++pos;  // opening quote
  while (pos < line.size()) {
    const char c = line[pos++];
    if (c == '"') return Status::ok();
    if (c != '\\') {
      out += c;
      continue;
    }
    if (pos >= line.size()) break;
    const char escaped = line[pos++];
    if (escaped == '"' || escaped == '\\') {
      out += escaped;
    } else if (escaped == 'x' && pos + 2 <= line.size() && hex_digit(line[pos]) >= 0 &&
               hex_digit(line[pos + 1]) >= 0) {
      out += static_cast<char>(hex_digit(line[pos]) * 16 + hex_digit(line[pos + 1]));
      pos += 2;
    } else {
      return Status::invalid_argument("bad escape in quoted string");
    }
  }
  return Status::invalid_argument("unterminated quoted string");
}

Result<std::vector<Token>> tokenize(std::string_view line) {
  std::vector<Token> tokens;
  std::size_t pos = 0;
  while (true) {
    while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
    if (pos >= line.size()) return tokens;
    Token token;
    const std::size_t start = pos;
    while (pos < line.size() && line[pos] != ' ' && line[pos] != '\t' && line[pos] != '=') ++pos;
    std::string word(line.substr(start, pos - start));
    if (pos < line.size() && line[pos] == '=') {
      if (word.empty()) return Status::invalid_argument("a field without a name");
      token.name = std::move(word);
      ++pos;
      if (pos < line.size() && line[pos] == '"') {
        token.quoted = true;
        if (Status s = read_quoted(line, pos, token.value); !s) return s;
        if (pos < line.size() && line[pos] != ' ' && line[pos] != '\t') {
          return Status::invalid_argument("text after the closing quote of '" + token.name + "'");
        }
      } else {
        const std::size_t value_start = pos;
        while (pos < line.size() && line[pos] != ' ' && line[pos] != '\t') ++pos;
        token.value = std::string(line.substr(value_start, pos - value_start));
      }
    } else {
      token.value = std::move(word);
    }
    tokens.push_back(std::move(token));
  }
}

template <typename Int>
Status parse_integer(const Token& token, Int& out) {
  const char* first = token.value.data();
  const char* last = first + token.value.size();
  auto [end, error] = std::from_chars(first, last, out);
  if (token.quoted || error != std::errc() || end != last || first == last) {
    return Status::invalid_argument("'" + token.name + "' is not an integer: " + token.value);
  }
  return Status::ok();
}

Status parse_bool(const Token& token, bool& out) {
  if (!token.quoted && token.value == "true") {
    out = true;
  } else if (!token.quoted && token.value == "false") {
    out = false;
  } else {
    return Status::invalid_argument("'" + token.name + "' is not true or false: " + token.value);
  }
  return Status::ok();
}

Status parse_string(const Token& token, std::string& out) {
  if (!token.quoted) {
    return Status::invalid_argument("'" + token.name + "' must be a quoted string");
  }
  out = token.value;
  return Status::ok();
}

Status parse_bare_word(const std::string& word, Operation& op, bool& saw_outcome, bool& saw_kind) {
  static constexpr OpKind kKinds[] = {OpKind::kPut, OpKind::kGet, OpKind::kCas, OpKind::kDelete};
  static constexpr Outcome kOutcomes[] = {Outcome::kOk, Outcome::kFailed, Outcome::kUnknown};
  for (OpKind kind : kKinds) {
    if (word == to_string(kind)) {
      if (saw_kind) return Status::invalid_argument("two operation kinds");
      op.kind = kind;
      saw_kind = true;
      return Status::ok();
    }
  }
  for (Outcome outcome : kOutcomes) {
    if (word == to_string(outcome)) {
      if (saw_outcome) return Status::invalid_argument("two outcomes");
      op.outcome = outcome;
      saw_outcome = true;
      return Status::ok();
    }
  }
  if (word == "unchecked") {
    op.checked = false;
    return Status::ok();
  }
  return Status::invalid_argument("unknown word '" + word + "'");
}

Status parse_field(const Token& token, Operation& op, bool& saw_call, bool& saw_return) {
  const std::string& name = token.name;
  if (name == "client") return parse_integer(token, op.client);
  if (name == "call") {
    saw_call = true;
    return parse_integer(token, op.call_time);
  }
  if (name == "return") {
    saw_return = true;
    return parse_integer(token, op.return_time);
  }
  if (name == "key") return parse_string(token, op.key);
  if (name == "value") return parse_string(token, op.value);
  if (name == "expected") return parse_string(token, op.expected);
  if (name == "succeeded") return parse_bool(token, op.cas_succeeded);
  if (name == "output") {
    if (!token.quoted && token.value == "absent") {
      op.output.reset();
      return Status::ok();
    }
    op.output.emplace();
    return parse_string(token, *op.output);
  }
  return Status::invalid_argument("unknown field '" + name + "'");
}

Result<Operation> parse_operation(std::string_view line) {
  Result<std::vector<Token>> tokens = tokenize(line);
  if (!tokens) return tokens.status();
  Operation op;
  bool saw_outcome = false;
  bool saw_kind = false;
  bool saw_call = false;
  bool saw_return = false;
  for (const Token& token : *tokens) {
    Status s = token.name.empty() ? parse_bare_word(token.value, op, saw_outcome, saw_kind)
                                  : parse_field(token, op, saw_call, saw_return);
    if (!s) return s;
  }
  if (!saw_kind) return Status::invalid_argument("no operation kind (put, get, cas, delete)");
  if (!saw_outcome) return Status::invalid_argument("no outcome (ok, failed, unknown)");
  if (!saw_call || !saw_return) return Status::invalid_argument("needs both call= and return=");
  if (op.return_time < op.call_time) return Status::invalid_argument("returns before its call");
  return op;
}

}  // namespace

std::string quoted(std::string_view text) {
  std::string out;
  append_quoted(out, text);
  return out;
}

std::string to_text(const Operation& op) {
  std::string out = "client=" + std::to_string(op.client) +
                    " call=" + std::to_string(op.call_time) +
                    " return=" + std::to_string(op.return_time) + " " + to_string(op.outcome) +
                    " " + to_string(op.kind) + " key=";
  append_quoted(out, op.key);
  // Each field is written where it means something for the kind, and also
  // wherever it is set, so that the round trip is exact.
  const bool is_cas = op.kind == OpKind::kCas;
  if (is_cas || !op.expected.empty()) {
    out += " expected=";
    append_quoted(out, op.expected);
  }
  if (is_cas || op.kind == OpKind::kPut || !op.value.empty()) {
    out += " value=";
    append_quoted(out, op.value);
  }
  if (op.output.has_value()) {
    out += " output=";
    append_quoted(out, *op.output);
  } else if (op.kind == OpKind::kGet && op.outcome == Outcome::kOk) {
    out += " output=absent";
  }
  if (is_cas || op.cas_succeeded) out += op.cas_succeeded ? " succeeded=true" : " succeeded=false";
  if (!op.checked) out += " unchecked";
  return out;
}

void History::record(Operation operation) {
  KEEL_CHECK("an operation returns no earlier than it was called",
             operation.return_time >= operation.call_time);
  operations_.push_back(std::move(operation));
}

std::string History::to_text() const {
  std::string out = "# keel-sim history: one operation per line (sim/history.h)\n";
  for (const Operation& op : operations_) {
    out += sim::to_text(op);
    out += '\n';
  }
  return out;
}

Result<History> History::from_lines(
    std::string_view text, const std::function<Result<Operation>(std::string_view)>& parse_line,
    const std::function<std::string(std::size_t)>& where) {
  History history;
  std::size_t line_number = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    Result<Operation> op = parse_line(line);
    if (!op) return Status::invalid_argument(where(line_number) + ": " + op.status().message());
    history.record(std::move(op).value());
  }
  return history;
}

Result<History> History::from_text(std::string_view text) {
  return from_lines(text, parse_operation,
                    [](std::size_t line) { return "history line " + std::to_string(line); });
}

}  // namespace keel::sim
