// Endpoint: a network address written "host:port", shared by the node
// config, the peer transport, chorus bench and the tools.
//
// The host is an IPv4 address, a DNS name ([A-Za-z0-9._-]+) or an IPv6
// address. IPv6 is written in brackets, "[::1]:7001", and held without them
// (host == "::1"); to_string() adds them back, so parse(e.to_string()) == e.
//
// parse() checks the form only. What a caller needs beyond it is checked
// where that caller's input enters, not here:
//  - the node config: a peer port >= 1, distinct listen addresses (config.cc);
//  - the peer transport: a numeric IP, since it binds and dials without a
//    resolver (TransportConfig::validate);
//  - chorus bench: a port >= 1 for every endpoint of --endpoints (driver.cc).
//
// Pure; thread-safe as a value.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace chorus {

struct Endpoint {
  std::string host;  // never bracketed
  uint16_t port = 0;

  // "127.0.0.11:7101", "localhost:7001", "[::1]:7001".
  std::string to_string() const;

  // Parses "host:port" (port 0..65535). kInvalidArgument otherwise, with a
  // message of the form `"127.0.0.12" is not host:port` (plus the reason in
  // parentheses when there is a specific one) and no key prefix: the caller
  // adds its own ("config error: peers[2].peer: ...").
  static Result<Endpoint> parse(std::string_view text);

  bool operator==(const Endpoint&) const = default;
};

}  // namespace chorus
