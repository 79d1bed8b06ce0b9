#include "net/resp/resp_parser.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "base/assert.h"

namespace chorus::net::resp {
namespace {

// isspace() in the C locale, which is what sdssplitargs() skips between
// arguments (without depending on the process locale).
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool is_hex_digit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// The byte a backslash escape in double quotes stands for: \n \r \t \b \a,
// and any other byte for itself (so \" and \\ work).
char unescape(char c) {
  switch (c) {
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'b':
      return '\b';
    case 'a':
      return '\a';
    default:
      return c;
  }
}

// One argument of an inline line, starting at a non-space byte at line[*i].
// Follows sdssplitargs() (Redis src/sds.c) byte for byte, with '\0' standing
// for "past the end" as in the C original. Returns false on unbalanced quotes.
bool split_one(std::string_view line, size_t* i, std::string* current) {
  const auto at = [&](size_t k) { return k < line.size() ? line[k] : '\0'; };
  bool in_double = false;
  bool in_single = false;
  for (bool done = false; !done;) {
    const char c = at(*i);
    if (in_double) {
      if (c == '\\' && at(*i + 1) == 'x' && is_hex_digit(at(*i + 2)) && is_hex_digit(at(*i + 3))) {
        current->push_back(static_cast<char>(hex_value(at(*i + 2)) * 16 + hex_value(at(*i + 3))));
        *i += 3;
      } else if (c == '\\' && at(*i + 1) != '\0') {
        ++*i;
        current->push_back(unescape(line[*i]));
      } else if (c == '"') {
        // The closing quote must be followed by a space or the end.
        if (at(*i + 1) != '\0' && !is_space(at(*i + 1))) return false;
        done = true;
      } else if (c == '\0') {
        return false;  // unterminated quotes
      } else {
        current->push_back(c);
      }
    } else if (in_single) {
      if (c == '\\' && at(*i + 1) == '\'') {
        ++*i;
        current->push_back('\'');
      } else if (c == '\'') {
        if (at(*i + 1) != '\0' && !is_space(at(*i + 1))) return false;
        done = true;
      } else if (c == '\0') {
        return false;
      } else {
        current->push_back(c);
      }
    } else {
      switch (c) {
        case ' ':
        case '\n':
        case '\r':
        case '\t':
        case '\0':
          done = true;
          break;
        case '"':
          in_double = true;
          break;
        case '\'':
          in_single = true;
          break;
        default:
          current->push_back(c);
          break;
      }
    }
    if (*i < line.size()) ++*i;
  }
  return true;
}

// sdssplitargs(): the arguments of an inline line (without its line ending).
// Returns false on unbalanced quotes. A NUL byte ends the text, as in C.
bool split_inline(std::string_view line, std::vector<std::string>* args) {
  line = line.substr(0, line.find('\0'));
  size_t i = 0;
  for (;;) {
    while (i < line.size() && is_space(line[i])) ++i;
    if (i == line.size()) return true;
    std::string current;
    if (!split_one(line, &i, &current)) return false;
    args->push_back(std::move(current));
  }
}

// A count or length line: an integer followed by CR (the LF is already gone).
std::optional<int64_t> parse_number_line(std::string_view line) {
  if (line.empty() || line.back() != '\r') return std::nullopt;
  line.remove_suffix(1);
  return parse_integer(line);
}

std::string printable_byte(char c) {
  if (c >= 0x20 && c < 0x7f) return std::string(1, c);
  static constexpr char kHex[] = "0123456789abcdef";
  const auto u = static_cast<unsigned char>(c);
  return std::string{'\\', 'x', kHex[u >> 4], kHex[u & 0xf]};
}

}  // namespace

std::optional<int64_t> parse_integer(std::string_view s) {
  // string2ll() rejects 21+ bytes (LONG_STR_SIZE) and anything but the
  // canonical spelling, so "007", "+7", " 7" and "-0" are not numbers.
  if (s.empty() || s.size() > 20) return std::nullopt;
  if (s == "0") return 0;
  size_t i = 0;
  const bool negative = s[0] == '-';
  if (negative) ++i;
  if (i == s.size() || s[i] < '1' || s[i] > '9') return std::nullopt;
  uint64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    const auto d = static_cast<uint64_t>(s[i] - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (negative) {
    if (v > kMax + 1) return std::nullopt;
    return static_cast<int64_t>(0 - v);  // modular: 2^63 becomes INT64_MIN
  }
  if (v > kMax) return std::nullopt;
  return static_cast<int64_t>(v);
}

ParseResult Parser::parse(std::string_view input) {
  ParseResult result;
  size_t pos = 0;
  Step s = Step::kContinue;
  while (s == Step::kContinue) s = step(input, &pos);
  CHORUS_ASSERT(pos <= input.size());
  result.consumed = pos;
  switch (s) {
    case Step::kNeedMore:
      CHORUS_ASSERT(pos == input.size());
      result.kind = ParseResult::Kind::kNeedMore;
      break;
    case Step::kCommand:
      CHORUS_ASSERT(!args_.empty() && state_ == State::kRequestStart);
      result.kind = ParseResult::Kind::kCommand;
      result.args = std::move(args_);
      args_.clear();
      args_expected_ = 0;
      command_bytes_ = 0;
      break;
    case Step::kFailed:
      result.kind = ParseResult::Kind::kError;
      result.error = error_;
      break;
    case Step::kContinue:
      CHORUS_UNREACHABLE();
  }
  return result;
}

Parser::Step Parser::step(std::string_view input, size_t* pos) {
  switch (state_) {
    case State::kRequestStart:
      return step_request_start(input, pos);
    case State::kInline:
      return step_inline(input, pos);
    case State::kCount:
      return step_count(input, pos);
    case State::kBulkStart:
      return step_bulk_start(input, pos);
    case State::kBulkLength:
      return step_bulk_length(input, pos);
    case State::kBulkData:
      return step_bulk_data(input, pos);
    case State::kBulkCr:
    case State::kBulkLf:
      return step_bulk_crlf(input, pos);
    case State::kFailed:
      return Step::kFailed;
  }
  CHORUS_UNREACHABLE();
}

Parser::Step Parser::step_request_start(std::string_view input, size_t* pos) {
  if (*pos == input.size()) return Step::kNeedMore;
  // Redis decides per request: '*' starts a multibulk request, anything else
  // is an inline one.
  if (input[*pos] == '*') {
    ++*pos;
    state_ = State::kCount;
  } else {
    state_ = State::kInline;
  }
  return Step::kContinue;
}

Parser::Step Parser::step_inline(std::string_view input, size_t* pos) {
  std::string_view line;
  switch (take_line(input, pos, limits_.inline_bytes_max, &line)) {
    case Line::kIncomplete:
      return Step::kNeedMore;
    case Line::kTooLong:
      return fail("Protocol error: too big inline request");
    case Line::kComplete:
      break;
  }
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<std::string> args;
  const bool balanced = split_inline(line, &args);
  clear_line();  // `line` may point into line_: used up above
  if (!balanced) return fail("Protocol error: unbalanced quotes in request");
  state_ = State::kRequestStart;
  if (args.empty()) return Step::kContinue;  // blank line: skipped, as in Redis
  args_ = std::move(args);
  return Step::kCommand;
}

Parser::Step Parser::step_count(std::string_view input, size_t* pos) {
  std::string_view line;
  switch (take_line(input, pos, kNumberLineBytesMax, &line)) {
    case Line::kIncomplete:
      return Step::kNeedMore;
    case Line::kTooLong:
      return fail("Protocol error: too big mbulk count string");
    case Line::kComplete:
      break;
  }
  const std::optional<int64_t> count = parse_number_line(line);
  clear_line();
  // The limit is checked before anything is reserved for the arguments.
  if (!count || (*count > 0 && static_cast<uint64_t>(*count) > limits_.args_max)) {
    return fail("Protocol error: invalid multibulk length");
  }
  if (*count <= 0) {  // "*0" and "*-1": an empty request, skipped as in Redis
    state_ = State::kRequestStart;
    return Step::kContinue;
  }
  args_expected_ = static_cast<uint64_t>(*count);
  args_.clear();
  args_.reserve(static_cast<size_t>(std::min<uint64_t>(args_expected_, kReserveArgsMax)));
  command_bytes_ = 0;
  state_ = State::kBulkStart;
  return Step::kContinue;
}

Parser::Step Parser::step_bulk_start(std::string_view input, size_t* pos) {
  if (*pos == input.size()) return Step::kNeedMore;
  const char c = input[*pos];
  if (c != '$') return fail("Protocol error: expected '$', got '" + printable_byte(c) + "'");
  ++*pos;
  state_ = State::kBulkLength;
  return Step::kContinue;
}

Parser::Step Parser::step_bulk_length(std::string_view input, size_t* pos) {
  std::string_view line;
  switch (take_line(input, pos, kNumberLineBytesMax, &line)) {
    case Line::kIncomplete:
      return Step::kNeedMore;
    case Line::kTooLong:
      return fail("Protocol error: too big bulk count string");
    case Line::kComplete:
      break;
  }
  const std::optional<int64_t> length = parse_number_line(line);
  clear_line();
  // Both limits are checked before a byte is reserved for the argument.
  if (!length || *length < 0 || static_cast<uint64_t>(*length) > limits_.bulk_bytes_max) {
    return fail("Protocol error: invalid bulk length");
  }
  const auto n = static_cast<uint64_t>(*length);
  if (command_bytes_ > limits_.command_bytes_max ||
      n > limits_.command_bytes_max - command_bytes_) {
    return fail("Protocol error: too big multibulk request");
  }
  command_bytes_ += n;
  args_.emplace_back();
  args_.back().reserve(static_cast<size_t>(std::min<uint64_t>(n, kReserveBytesMax)));
  bulk_remaining_ = n;
  state_ = State::kBulkData;
  return Step::kContinue;
}

Parser::Step Parser::step_bulk_data(std::string_view input, size_t* pos) {
  const auto take = static_cast<size_t>(std::min<uint64_t>(bulk_remaining_, input.size() - *pos));
  args_.back().append(input.data() + *pos, take);
  *pos += take;
  bulk_remaining_ -= take;
  if (bulk_remaining_ > 0) return Step::kNeedMore;
  state_ = State::kBulkCr;
  return Step::kContinue;
}

Parser::Step Parser::step_bulk_crlf(std::string_view input, size_t* pos) {
  if (*pos == input.size()) return Step::kNeedMore;
  const bool want_cr = state_ == State::kBulkCr;
  if (input[*pos] != (want_cr ? '\r' : '\n')) {
    return fail("Protocol error: expected CRLF after bulk data");
  }
  ++*pos;
  if (want_cr) {
    state_ = State::kBulkLf;
    return Step::kContinue;
  }
  return finish_bulk();
}

Parser::Step Parser::finish_bulk() {
  if (args_.size() < args_expected_) {
    state_ = State::kBulkStart;
    return Step::kContinue;
  }
  state_ = State::kRequestStart;
  return Step::kCommand;
}

Parser::Line Parser::take_line(std::string_view input, size_t* pos, size_t max_bytes,
                               std::string_view* line) {
  // Look at no more than one byte past the limit: the LF may sit just there,
  // and anything beyond it can only make the line too long.
  const size_t room = line_.size() >= max_bytes ? 0 : max_bytes - line_.size();
  const size_t scan = std::min(input.size() - *pos, room + 1);
  const char* begin = input.data() + *pos;
  const void* lf = scan == 0 ? nullptr : std::memchr(begin, '\n', scan);
  if (lf == nullptr) {
    if (scan > room) return Line::kTooLong;
    line_.append(begin, scan);
    *pos += scan;
    return Line::kIncomplete;
  }
  const auto n = static_cast<size_t>(static_cast<const char*>(lf) - begin);
  if (line_.empty()) {
    *line = std::string_view(begin, n);  // the common case: no copy
  } else {
    line_.append(begin, n);
    *line = line_;
  }
  *pos += n + 1;
  return Line::kComplete;
}

void Parser::clear_line() {
  // Do not keep a long inline line's buffer for the connection's lifetime.
  if (line_.capacity() > 4096) {
    std::string().swap(line_);
  } else {
    line_.clear();
  }
}

Parser::Step Parser::fail(std::string message) {
  error_ = std::move(message);
  state_ = State::kFailed;
  std::string().swap(line_);
  std::vector<std::string>().swap(args_);
  command_bytes_ = 0;
  bulk_remaining_ = 0;
  return Step::kFailed;
}

}  // namespace chorus::net::resp
