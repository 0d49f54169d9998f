#include "history_json.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace keel::sim {
namespace {

using Json = nlohmann::json;

// A JSON value as an error message shows it: short enough to keep the message
// on one readable line even when a writer put a whole document in a field.
std::string shown(const Json& value) {
  constexpr std::size_t kMaxShownBytes = 40;
  std::string text = value.dump();
  if (text.size() > kMaxShownBytes) text = text.substr(0, kMaxShownBytes) + "...";
  return text;
}

std::string field_name(std::string_view name) { return "\"" + std::string(name) + "\""; }

Status wrong_type(std::string_view name, std::string_view expected, const Json& value) {
  return Status::invalid_argument(field_name(name) + " must be " + std::string(expected) +
                                  ", not " + shown(value));
}

Status missing(std::string_view name, std::string_view when) {
  return Status::invalid_argument("missing " + field_name(name) + " (required" +
                                  (when.empty() ? std::string() : " " + std::string(when)) + ")");
}

// --- typed access to one field; absent gives nullopt, a wrong type an error --

template <typename T>
Result<std::optional<T>> optional_field(const Json& object, std::string_view name);

template <>
Result<std::optional<std::string>> optional_field(const Json& object, std::string_view name) {
  const auto it = object.find(name);
  if (it == object.end()) return std::optional<std::string>();
  if (!it->is_string()) return wrong_type(name, "a string", *it);
  return std::optional<std::string>(it->get<std::string>());
}

template <>
Result<std::optional<bool>> optional_field(const Json& object, std::string_view name) {
  const auto it = object.find(name);
  if (it == object.end()) return std::optional<bool>();
  if (!it->is_boolean()) return wrong_type(name, "true or false", *it);
  return std::optional<bool>(it->get<bool>());
}

template <>
Result<std::optional<std::int64_t>> optional_field(const Json& object, std::string_view name) {
  const auto it = object.find(name);
  if (it == object.end()) return std::optional<std::int64_t>();
  // nlohmann keeps non-negative integers unsigned and negative ones signed.
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (it->is_number_unsigned() && it->get<std::uint64_t>() > kMax) {
    return wrong_type(name, "a 64-bit signed integer", *it);
  }
  if (!it->is_number_integer()) return wrong_type(name, "an integer", *it);
  return std::optional<std::int64_t>(it->get<std::int64_t>());
}

template <>
Result<std::optional<std::uint64_t>> optional_field(const Json& object, std::string_view name) {
  const auto it = object.find(name);
  if (it == object.end()) return std::optional<std::uint64_t>();
  if (!it->is_number_unsigned()) return wrong_type(name, "a non-negative integer", *it);
  return std::optional<std::uint64_t>(it->get<std::uint64_t>());
}

template <typename T>
Result<T> required_field(const Json& object, std::string_view name, std::string_view when = {}) {
  Result<std::optional<T>> field = optional_field<T>(object, name);
  if (!field) return field.status();
  if (!field->has_value()) return missing(name, when);
  return std::move(**field);
}

// --- the enumerations -------------------------------------------------------

Result<OpKind> parse_kind(const Json& object) {
  Result<std::string> name = required_field<std::string>(object, "op");
  if (!name) return name.status();
  for (OpKind kind : {OpKind::kPut, OpKind::kGet, OpKind::kDelete, OpKind::kCas}) {
    if (*name == to_string(kind)) return kind;
  }
  return wrong_type("op", "one of put, get, delete, cas", object.at("op"));
}

Result<Outcome> parse_outcome(const Json& object) {
  Result<std::string> name = required_field<std::string>(object, "outcome");
  if (!name) return name.status();
  for (Outcome outcome : {Outcome::kOk, Outcome::kFailed, Outcome::kUnknown}) {
    if (*name == to_string(outcome)) return outcome;
  }
  return wrong_type("outcome", "one of ok, failed, unknown", object.at("outcome"));
}

// Whether a get is checked: stale reads may return any value some earlier
// write left, so they are recorded but not judged (Operation::checked).
Result<bool> parse_checked(const Json& object) {
  Result<std::optional<std::string>> consistency =
      optional_field<std::string>(object, "consistency");
  if (!consistency) return consistency.status();
  const std::string mode = consistency->value_or("linearizable");
  if (mode == "linearizable" || mode == "lease") return true;
  if (mode == "stale") return false;
  return wrong_type("consistency", "one of linearizable, lease, stale", object.at("consistency"));
}

// The informational fields: ignored, but a writer that gets their type wrong
// has a bug worth hearing about.
Status check_informational_fields(const Json& object) {
  if (Result<std::optional<std::int64_t>> version = optional_field<std::int64_t>(object, "version");
      !version) {
    return version.status();
  }
  if (Result<std::optional<std::string>> error = optional_field<std::string>(object, "error");
      !error) {
    return error.status();
  }
  return Status::ok();
}

// --- one operation ------------------------------------------------------------

Status parse_times(const Json& object, Operation& op) {
  Result<std::int64_t> call = required_field<std::int64_t>(object, "call");
  if (!call) return call.status();
  Result<std::int64_t> ret = required_field<std::int64_t>(object, "return");
  if (!ret) return ret.status();
  // History::record aborts on time running backwards; from a file that is an
  // input error, not a broken invariant.
  if (*ret < *call) {
    return Status::invalid_argument("\"return\" (" + std::to_string(*ret) +
                                    ") is before \"call\" (" + std::to_string(*call) + ")");
  }
  op.call_time = *call;
  op.return_time = *ret;
  return Status::ok();
}

// The value a get with outcome ok read: "found" says whether the key existed,
// and "value" is present exactly when it did.
Status parse_read(const Json& object, const std::optional<std::string>& value, Operation& op) {
  Result<bool> found = required_field<bool>(object, "found", "for a get with outcome ok");
  if (!found) return found.status();
  if (*found && !value)
    return Status::invalid_argument("\"found\" is true but \"value\" is missing");
  if (!*found && value)
    return Status::invalid_argument("\"found\" is false but \"value\" is present");
  op.output = value;
  return Status::ok();
}

// The fields that depend on the kind of operation.
Status parse_arguments(const Json& object, Operation& op) {
  // Known fields are type-checked wherever they appear, even where the kind
  // does not use them.
  Result<std::optional<std::string>> value = optional_field<std::string>(object, "value");
  if (!value) return value.status();
  Result<std::optional<std::string>> expected = optional_field<std::string>(object, "expected");
  if (!expected) return expected.status();
  Result<std::optional<bool>> succeeded = optional_field<bool>(object, "succeeded");
  if (!succeeded) return succeeded.status();
  Result<std::optional<bool>> found = optional_field<bool>(object, "found");
  if (!found) return found.status();
  Result<bool> checked = parse_checked(object);
  if (!checked) return checked.status();

  switch (op.kind) {
    case OpKind::kPut:
      if (!*value) return missing("value", "for put");
      op.value = **value;
      return Status::ok();
    case OpKind::kCas:
      if (!*value) return missing("value", "for cas");
      if (!*expected) return missing("expected", "for cas");
      op.value = **value;
      op.expected = **expected;
      if (op.outcome == Outcome::kOk) {
        if (!*succeeded) return missing("succeeded", "for a cas with outcome ok");
        op.cas_succeeded = **succeeded;
      }
      return Status::ok();
    case OpKind::kGet:
      op.checked = *checked;
      return op.outcome == Outcome::kOk ? parse_read(object, *value, op) : Status::ok();
    case OpKind::kDelete:
      return Status::ok();
  }
  return Status::ok();
}

Result<Operation> parse_operation(const Json& object) {
  if (!object.is_object()) {
    return Status::invalid_argument("not a JSON object but " + shown(object) +
                                    " (each line holds one operation)");
  }
  Operation op;
  Result<std::uint64_t> client = required_field<std::uint64_t>(object, "client");
  if (!client) return client.status();
  op.client = *client;
  Result<OpKind> kind = parse_kind(object);
  if (!kind) return kind.status();
  op.kind = *kind;
  Result<std::string> key = required_field<std::string>(object, "key");
  if (!key) return key.status();
  op.key = std::move(key).value();
  Result<Outcome> outcome = parse_outcome(object);
  if (!outcome) return outcome.status();
  op.outcome = *outcome;
  if (Status s = parse_times(object, op); !s) return s;
  if (Status s = parse_arguments(object, op); !s) return s;
  if (Status s = check_informational_fields(object); !s) return s;
  return op;
}

// nlohmann's message starts "[json.exception.parse_error.101] parse error at
// line 1, column 7: ..."; the line is always 1 here (one line is parsed at a
// time), so only the column and the reason are kept.
std::string syntax_error(const Json::parse_error& error) {
  const std::string what = error.what();
  const std::size_t column = what.find("column ");
  return "not valid JSON: " + (column == std::string::npos ? what : what.substr(column));
}

Result<Operation> parse_line(std::string_view line) {
  Json object;
  try {
    object = Json::parse(line);
  } catch (const Json::parse_error& error) {
    return Status::invalid_argument(syntax_error(error));
  }
  return parse_operation(object);
}

}  // namespace

Result<History> parse_history_json_lines(std::string_view text, std::string_view source_name) {
  return History::from_lines(text, parse_line, [&](std::size_t line) {
    return std::string(source_name) + ":" + std::to_string(line);
  });
}

}  // namespace keel::sim
