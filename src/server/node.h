// Node: every replication group one chorusd hosts, and the router from keys
// to them (docs/design.md, "Keyspaces").
//
//   group 1  metadata   raft, every node: the keyspace table (keyspaces.h)
//   group 0  default    raft, every node: keys no keyspace prefix matches
//   group N  keyspace   its strategy, every node: keys with its prefix
//
// The keyspace table is one value in the metadata group's state machine.
// Every node follows its own applied copy: after each change it applies
// (checked every tick, and at once after a change it made itself), the node
// creates the groups of new keyspaces and stops and deletes the groups of
// dropped ones. Until this node's metadata group has applied a table, it
// serves no data command (-TRYAGAIN): routing by an unknown table could put
// a key in the wrong group. When the cluster first starts, the metadata
// leader writes the table from the config's [keyspace.*] tables.
//
// Keyspace changes (CHORUS.KEYSPACE CREATE/DROP) read the table with a
// linearizable read barrier, build the next table, and write it with a
// compare-and-set of the whole value: a change validated against a table
// that changed meanwhile fails and is tried again (a few times).
//
// Storage: the metadata group under <data>/meta, default under <data>/raft
// (where a node before keyspaces kept its one group), keyspace N under
// <data>/groups/N. Dropping a keyspace deletes its directory.
//
// Threading: every method runs on the event loop thread.
#pragma once

#include <asio.hpp>
#include <cstdio>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

#include "host/replica_host.h"
#include "net/transport/transport.h"
#include "server/commands.h"
#include "server/config.h"
#include "server/engine_group.h"
#include "server/keyspaces.h"
#include "server/primary_manager.h"
#include "server/progress_queries.h"
#include "server/replica_group.h"
#include "storage/env/env.h"

namespace chorus::server {

class Node {
 public:
  struct Options {
    asio::io_context* io = nullptr;
    const NodeConfig* config = nullptr;
    net::Transport* transport = nullptr;
    StorageExecutor* storage = nullptr;  // shared by every group; outlives the node
    host::HostMetrics* hooks = nullptr;
    storage::Env* env = nullptr;
    uint64_t prng_seed = 0;
    // A write some group dropped from its log (a lost acknowledged write, a
    // rollback, one in doubt), each (keyspace, term, index) once per
    // incarnation; the node has logged it and appended it (unsynced) to
    // <data>/lost-writes.log already.
    std::function<void(std::string_view keyspace, const core::DroppedEntry&)> on_dropped;
  };
  using Done = std::function<void(Result<KeyspaceAnswer>)>;

  // Recovers the metadata and default groups (and, once the table is known,
  // the keyspaces' groups). Fails when a group's storage does not recover.
  static Result<std::unique_ptr<Node>> open(Options opts);
  ~Node();

  void start();
  void stop();
  // A peer message, for whichever group it names (unknown groups: dropped).
  Status deliver(net::IncomingMessage m);

  // False until this node's metadata group has applied a keyspace table.
  bool routing_ready() const { return table_known_; }
  const KeyspaceTable& table() const { return table_; }
  ReplicaGroup& group_for_key(std::string_view key);
  ReplicaGroup* group(GroupId id);
  ReplicaGroup& default_group() { return *default_; }
  ReplicaGroup& metadata_group() { return *meta_; }
  // Asks groups' leaders how far a write has spread (WAIT, CHORUS.POLL) and
  // answers their queries when this node leads.
  ProgressQueries& progress() { return *progress_; }
  // Default and every keyspace's group (not the metadata group).
  std::vector<ReplicaGroup*> data_groups();
  // The same, with each keyspace's name ("default" first).
  std::vector<std::pair<std::string, const ReplicaGroup*>> named_groups() const;

  // CHORUS.KEYSPACE.
  void create_keyspace(KeyspaceSpec spec, Done done);
  void drop_keyspace(std::string name, Done done);
  void list_keyspaces(Done done);
  void keyspace_info(std::string name, Done done);

  // The status document: the default group's fields at the top (as before
  // keyspaces), the metadata group, and every keyspace with its group.
  std::string status_json() const;
  bool healthy() const;
  std::string failure() const;

 private:
  explicit Node(Options opts) : opts_(opts), timer_(*opts.io) {}
  Result<std::unique_ptr<ReplicaGroup>> open_group(GroupId id, std::string_view strategy,
                                                   const std::string& dir,
                                                   const KeyspaceOptions& options = {});
  // Ready::dropped of group `g`: deduplicated, logged, appended to
  // lost-writes.log, then Options::on_dropped.
  void on_dropped(GroupId g, const core::DroppedEntry& d);
  void sync_lost_log();
  std::string keyspace_name(GroupId g) const;
  std::string group_dir(GroupId id) const;
  void on_timer();
  void arm_timer();
  // Follows the applied table: creates and drops groups. Returns whether the
  // table changed.
  bool reconcile();
  void maybe_write_initial_table();
  // Reads the table with a read barrier, computes the next one, and writes
  // it by compare-and-set; `attempts` left when it changed meanwhile.
  void change_table(std::function<Result<KeyspaceTable>(const KeyspaceTable&)> next, int attempts,
                    Done done);
  // A command of this node's own session (exactly once, like a client's).
  kvpb::Command own(kvpb::Command cmd);
  Result<KeyspaceTable> applied_table() const;

  Options opts_;
  asio::steady_timer timer_;
  std::unique_ptr<ReplicaGroup> meta_;
  std::unique_ptr<ReplicaGroup> default_;
  std::map<GroupId, std::unique_ptr<ReplicaGroup>> keyspaces_;  // by group id
  KeyspaceTable table_;
  bool table_known_ = false;
  bool init_in_flight_ = false;
  bool stopped_ = false;
  uint64_t session_ = 0;  // this node's session for its metadata writes
  uint64_t seq_ = 0;
  std::unique_ptr<PrimaryManagers> managers_;
  std::unique_ptr<ProgressQueries> progress_;
  // (group, term, index, kind, range positions) of drops already reported,
  // oldest first (bounded; in memory: a re-report after a restart counts again).
  using DropKey = std::tuple<uint64_t, uint64_t, uint64_t, int, uint64_t>;
  std::set<DropKey> dropped_seen_;
  struct CloseFile {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, CloseFile> lost_log_;  // <data>/lost-writes.log, opened on first use
  bool lost_log_dirty_ = false;                     // written since its last fdatasync
  std::deque<DropKey> dropped_order_;
};

}  // namespace chorus::server
