// RoutedState: the key-value state of several replication groups seen as
// one state machine, for reads that span keyspaces (MGET across keyspaces,
// EXISTS, SCAN, DBSIZE). Each key is read from the group the keyspace
// table routes it to; a scan merges the groups' pages in key order and
// shows a key only from the group it routes to (a key written to default
// before a keyspace took its prefix stays invisible, as GET would find it
// in the new keyspace).
//
// Read-only: apply_batch, snapshots and restore are not for it (asserted).
// Valid while the groups and the table it was built from live; built per
// read on the event loop.
#pragma once

#include <map>

#include "base/ids.h"
#include "server/keyspaces.h"
#include "storage/kv/state_machine.h"

namespace chorus::server {

class RoutedState final : public kv::StateMachine {
 public:
  // `groups`: every group a key may route to (default included).
  RoutedState(const KeyspaceTable& table, std::map<GroupId, const kv::StateMachine*> groups)
      : table_(table), groups_(std::move(groups)) {}

  Result<std::optional<std::string>> read(std::string_view key) const override;
  Result<uint64_t> key_count() const override;
  Result<ScanPage> scan(std::string_view start, size_t limit) const override;
  int64_t now_ms() const override;
  LogIndex applied_index() const override { return LogIndex(0); }

  Result<std::vector<kvpb::Result>> apply_batch(std::span<const Entry>) override;
  Status save_snapshot(const ChunkSink&) const override;
  Status load_snapshot(const ChunkSource&) override;
  Status sync() override { return Status::ok(); }

 private:
  const KeyspaceTable& table_;
  std::map<GroupId, const kv::StateMachine*> groups_;
};

}  // namespace chorus::server
