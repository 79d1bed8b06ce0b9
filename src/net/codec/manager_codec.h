// The configuration manager's messages and stored state
// (proto/chorus/manager.proto) <-> primary::ReplicaReport, Configuration
// and ManagerState (src/core/primary/config_manager.h). Pure: no I/O.
//
// Decoding treats its input as hostile and refuses with kCorruption what a
// correct sender never produces: a message without exactly one known body;
// from/to zero or equal; a configuration whose epoch is 0 or beyond
// primary::kMaxEpoch, whose members are not distinct nonzero node ids
// (at most kMaxConfigurationMembers), or that does not name its primary
// among them; a report whose last term belongs to an epoch beyond the one it
// reports, or that claims a last index without a term (or the reverse).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "base/ids.h"
#include "base/status.h"
#include "core/primary/config_manager.h"
#include "net/transport/peer_message.h"

namespace chorus::net {

// The manager to a replica: a decision (config set) or a probe (config
// empty). `round` as in manager.proto's Grant.
struct ManagerGrant {
  std::optional<primary::Configuration> config;
  uint64_t round = 0;
};

// A replica's report (node = the sender) or a grant.
using ManagerMessage = std::variant<primary::ReplicaReport, ManagerGrant>;

OutgoingMessage encode_manager_report(GroupId group, NodeId to, const primary::ReplicaReport& r);
OutgoingMessage encode_manager_grant(GroupId group, NodeId to, const ManagerGrant& g);
Result<ManagerMessage> decode_manager_message(const IncomingMessage& in);

// The bytes the metadata group stores for a keyspace (deterministic).
std::string encode_manager_state(const primary::ManagerState& s);
Result<primary::ManagerState> decode_manager_state(std::string_view bytes);

}  // namespace chorus::net
