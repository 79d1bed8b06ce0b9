#include "bench/driver.h"

#include <algorithm>
#include <utility>

#include "base/assert.h"

namespace chorus::bench {

Result<std::vector<Endpoint>> parse_endpoints(std::string_view list) {
  std::vector<Endpoint> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    const std::string_view item = list.substr(start, comma - start);
    Result<Endpoint> ep = Endpoint::parse(item);
    if (!ep.is_ok()) return Status::invalid_argument("endpoint " + ep.status().message());
    // Port 0 means "any free port" when listening; a client cannot connect to it.
    if (ep->port == 0) {
      return Status::invalid_argument("endpoint '" + std::string(item) +
                                      "': port must be 1..65535");
    }
    out.push_back(std::move(ep).value());
    start = comma + 1;
  }
  return out;
}

const Endpoint& endpoint_for_client(const DriverOptions& opts, int client) {
  CHORUS_ASSERT(!opts.endpoints.empty() && client >= 0);
  if (opts.policy == EndpointPolicy::kFirst) return opts.endpoints.front();
  return opts.endpoints[static_cast<size_t>(client) % opts.endpoints.size()];
}

Status Driver::send(const Op&) {
  CHORUS_ASSERT(false && "send() on a driver without pipelining");
  return Status::ok();
}

Reply Driver::receive() {
  CHORUS_ASSERT(false && "receive() on a driver without pipelining");
  return {};
}

void DriverRegistry::add(DriverInfo info) {
  CHORUS_ASSERT(find(info.name) == nullptr);
  CHORUS_ASSERT(static_cast<bool>(info.make));
  drivers_.push_back(std::move(info));
}

const DriverInfo* DriverRegistry::find(std::string_view name) const {
  for (const auto& d : drivers_) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

std::vector<std::string> DriverRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& d : drivers_) out.push_back(d.name);
  return out;
}

Status DriverRegistry::check_params(const DriverInfo& info, const DriverOptions& opts) const {
  for (const auto& [key, value] : opts.params) {
    bool known = false;
    for (const auto& p : info.params) known = known || p.first == key;
    if (!known) {
      std::string accepted;
      for (const auto& p : info.params) accepted += (accepted.empty() ? "" : ", ") + p.first;
      return Status::invalid_argument("driver " + info.name + " has no option '" + key +
                                      "' (accepted: " + (accepted.empty() ? "none" : accepted) +
                                      ")");
    }
  }
  return Status::ok();
}

const DriverRegistry& builtin_drivers() {
  static const DriverRegistry registry = [] {
    DriverRegistry r;
    register_builtin_drivers(r);
    return r;
  }();
  return registry;
}

}  // namespace chorus::bench
