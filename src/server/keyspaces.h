// Keyspaces: the rule that maps keys to replication groups, and the table
// that holds them (docs/design.md, "Keyspaces").
//
// A keyspace is a named key prefix with its own replication group and
// strategy. A key belongs to the keyspace with the longest prefix it starts
// with; keys matching none belong to `default` (group 0, Raft, every node).
// The table lives in the metadata group (group 1, Raft, every node) as one
// value, changed only by compare-and-set of the whole table: a change is
// validated against exactly the table it replaces, so two concurrent CREATEs
// of one name can never both succeed.
//
// Everything here is pure (no I/O): parsing and validating keyspace
// definitions (from the config file or CHORUS.KEYSPACE), building the next
// table, and routing keys.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "chorus/meta.pb.h"

namespace chorus::server {

inline constexpr std::string_view kDefaultKeyspaceName = "default";
inline constexpr GroupId kDefaultGroup{0};
inline constexpr GroupId kMetadataGroup{1};
inline constexpr uint64_t kFirstKeyspaceGroup = 2;
// The metadata group's key that holds the KeyspaceTable.
inline constexpr std::string_view kKeyspaceTableKey = "keyspaces";
inline constexpr size_t kMaxKeyspaces = 1024;  // each is a replication group on every node
inline constexpr size_t kMaxKeyspaceNameBytes = 64;
inline constexpr size_t kMaxPrefixBytes = 256;

// A keyspace as a user asks for it (config file or CHORUS.KEYSPACE CREATE).
struct KeyspaceSpec {
  std::string name;
  std::string prefix;
  std::string strategy;
  std::map<std::string, std::string> options;
  bool operator==(const KeyspaceSpec&) const = default;
};

// The strategies a keyspace may name today (built) and the ones designed
// but not built (refused with a message that says so).
std::vector<std::string_view> built_strategies();
// Checks one spec on its own: name syntax, prefix, strategy, options. The
// error names the offending part ("strategy: 'semi-sync' is not built yet
// (built: raft)", "option 'acks': unknown for strategy raft").
Status validate_keyspace(const KeyspaceSpec& spec);

class KeyspaceTable {
 public:
  KeyspaceTable() { t_.set_next_group_id(kFirstKeyspaceGroup); }
  // The bytes stored under kKeyspaceTableKey; "" (never written) is empty.
  static Result<KeyspaceTable> parse(std::string_view bytes);
  std::string serialize() const;

  // This table plus `spec` (validated, given the next group id), or why not:
  // the name or the prefix is taken, or there are kMaxKeyspaces already.
  Result<KeyspaceTable> with(const KeyspaceSpec& spec) const;
  // This table without keyspace `name` (kNotFound when there is none).
  Result<KeyspaceTable> without(std::string_view name) const;

  const metapb::KeyspaceDef* find(std::string_view name) const;
  // The keyspace `key` belongs to; nullptr for default.
  const metapb::KeyspaceDef* route(std::string_view key) const;
  GroupId group_of(std::string_view key) const;
  std::string_view name_of(std::string_view key) const;

  uint64_t version() const { return t_.version(); }
  const metapb::KeyspaceTable& proto() const { return t_; }
  bool operator==(const KeyspaceTable& o) const { return serialize() == o.serialize(); }

 private:
  metapb::KeyspaceTable t_;
};

// The spec of a stored definition (for LIST/INFO and comparisons).
KeyspaceSpec spec_of(const metapb::KeyspaceDef& d);

}  // namespace chorus::server
