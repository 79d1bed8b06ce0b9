#include "check/history.h"

#include <fmt/format.h>

#include "base/assert.h"

namespace chorus::check {
namespace {

// Values longer than this are cut in reports: an append-heavy key can hold
// kilobytes, and one report line per operation must stay readable.
constexpr size_t kValueBytesShownMax = 64;

bool is_bare_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '/' || c == '+' || c == '-';
}

void append_escaped(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
          out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
}

std::string_view status_name(OpStatus s) {
  switch (s) {
    case OpStatus::kOk:
      return "ok";
    case OpStatus::kFail:
      return "fail";
    case OpStatus::kUnknown:
      return "unknown";
  }
  CHORUS_UNREACHABLE();
}

}  // namespace

std::string_view op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::kGet:
      return "get";
    case OpKind::kPut:
      return "put";
    case OpKind::kCas:
      return "cas";
    case OpKind::kAppend:
      return "append";
  }
  CHORUS_UNREACHABLE();
}

std::string describe_value(std::string_view v) {
  bool bare = !v.empty() && v.size() <= kValueBytesShownMax;
  for (size_t i = 0; bare && i < v.size(); ++i) bare = is_bare_char(v[i]);
  if (bare) return std::string(v);
  std::string out = "\"";
  append_escaped(out, v.substr(0, kValueBytesShownMax));
  out += '"';
  if (v.size() > kValueBytesShownMax) out += fmt::format("...({} bytes)", v.size());
  return out;
}

std::string describe(const Operation& op) {
  std::string out =
      fmt::format("c{} {}({}", op.client, op_kind_name(op.kind), describe_value(op.key));
  switch (op.kind) {
    case OpKind::kGet:
      out += ')';
      break;
    case OpKind::kPut:
    case OpKind::kAppend:
      out += fmt::format(", {})", describe_value(op.value));
      break;
    case OpKind::kCas:
      out += fmt::format(", {}, {})", describe_value(op.expected), describe_value(op.value));
      break;
  }
  // Outputs are only meaningful for an operation that completed.
  if (op.status == OpStatus::kOk) {
    if (op.kind == OpKind::kGet) out += op.found ? " -> " + describe_value(op.output) : " -> nil";
    if (op.kind == OpKind::kCas) out += op.cas_ok ? " -> true" : " -> false";
  }
  out += fmt::format(" {} [{}, ", status_name(op.status), op.invoke_us);
  out += op.status == OpStatus::kUnknown ? std::string("?") : fmt::format("{}", op.complete_us);
  out += ']';
  return out;
}

}  // namespace chorus::check
