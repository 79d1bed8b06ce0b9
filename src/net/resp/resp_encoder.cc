#include "net/resp/resp_encoder.h"

#include <charconv>

#include "base/assert.h"

namespace chorus::net::resp {
namespace {

// `prefix` text CRLF, with CR and LF in `text` replaced by spaces.
void append_line(std::string* out, char prefix, std::string_view text) {
  out->push_back(prefix);
  const size_t start = out->size();
  out->append(text);
  for (size_t i = start; i < out->size(); ++i) {
    char& c = (*out)[i];
    if (c == '\r' || c == '\n') c = ' ';
  }
  out->append("\r\n");
}

// `prefix` decimal CRLF.
void append_number(std::string* out, char prefix, int64_t value) {
  char buf[24];  // sign + 19 digits fit
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  CHORUS_ASSERT(ec == std::errc());
  out->push_back(prefix);
  out->append(buf, end);
  out->append("\r\n");
}

}  // namespace

void append_simple_string(std::string* out, std::string_view text) {
  append_line(out, '+', text);
}

void append_error(std::string* out, std::string_view message) {
  append_line(out, '-', message);
}

void append_integer(std::string* out, int64_t value) {
  append_number(out, ':', value);
}

void append_bulk_string(std::string* out, std::string_view bytes) {
  append_number(out, '$', static_cast<int64_t>(bytes.size()));
  out->append(bytes);
  out->append("\r\n");
}

void append_null_bulk(std::string* out) {
  out->append("$-1\r\n");
}

void append_array_header(std::string* out, size_t count) {
  append_number(out, '*', static_cast<int64_t>(count));
}

void append_null_array(std::string* out) {
  out->append("*-1\r\n");
}

void append_command(std::string* out, std::span<const std::string> args) {
  CHORUS_ASSERT(!args.empty());
  append_array_header(out, args.size());
  for (const std::string& a : args) append_bulk_string(out, a);
}

}  // namespace chorus::net::resp
