// How a client read is served; one enum for the whole server (the
// connection's mode in commands.h, the host's read path in replica_host.h).
#pragma once

#include <cstdint>

namespace chorus::host {

enum class Consistency : uint8_t {
  kLinearizable,  // a quorum-confirmed read barrier through the leader (the default)
  kLease,         // the leader's lease when it holds, else as kLinearizable
  kFollower,      // whatever the local replica has applied (may be stale)
};

}  // namespace chorus::host
