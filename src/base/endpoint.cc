#include "base/endpoint.h"

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace chorus {
namespace {

// Longest input quoted back in an error message.
constexpr size_t kMaxQuotedBytes = 200;

// `text` in double quotes, with quotes, backslashes and control bytes escaped.
std::string quote(std::string_view text) {
  std::string out = "\"";
  for (unsigned char ch : text.substr(0, kMaxQuotedBytes)) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20 || ch >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", ch);
      out += buf;
    } else {
      out += static_cast<char>(ch);
    }
  }
  if (text.size() > kMaxQuotedBytes) out += "...";
  return out + "\"";
}

bool is_host_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '-' || ch == '.' || ch == '_';
}

bool is_ipv6_char(char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
         ch == ':' || ch == '.';
}

// Splits `text` into host and port text, or explains why it cannot.
Status split_host_port(std::string_view text, std::string* host, std::string_view* port) {
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return Status::invalid_argument("missing ']'");
    *host = std::string(text.substr(1, close - 1));
    if (host->empty() || !std::all_of(host->begin(), host->end(), is_ipv6_char)) {
      return Status::invalid_argument("bad IPv6 address");
    }
    if (close + 1 >= text.size() || text[close + 1] != ':') return Status::invalid_argument("");
    *port = text.substr(close + 2);
    return Status::ok();
  }
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return Status::invalid_argument("");
  *host = std::string(text.substr(0, colon));
  if (host->find(':') != std::string::npos) {
    return Status::invalid_argument("write IPv6 addresses as [addr]:port");
  }
  if (host->empty() || !std::all_of(host->begin(), host->end(), is_host_char)) {
    return Status::invalid_argument("bad host");
  }
  *port = text.substr(colon + 1);
  return Status::ok();
}

Result<uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5 ||
      !std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    return Status::invalid_argument("bad port");
  }
  uint32_t port = 0;
  std::from_chars(text.data(), text.data() + text.size(), port);
  if (port > 65535) return Status::invalid_argument("port above 65535");
  return static_cast<uint16_t>(port);
}

}  // namespace

std::string Endpoint::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<Endpoint> Endpoint::parse(std::string_view text) {
  auto bad = [&](const Status& why) {
    std::string m = quote(text) + " is not host:port";
    if (!why.message().empty()) m += " (" + why.message() + ")";
    return Status::invalid_argument(std::move(m));
  };
  Endpoint ep;
  std::string_view port_text;
  if (Status st = split_host_port(text, &ep.host, &port_text); !st.is_ok()) return bad(st);
  Result<uint16_t> port = parse_port(port_text);
  if (!port.is_ok()) return bad(port.status());
  ep.port = *port;
  return ep;
}

}  // namespace chorus
