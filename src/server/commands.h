// The command layer: turns one parsed RESP command (its arguments) into a Plan
// that the node executes. It decides nothing about replication or timing; it
// only says what a command means:
//
//   ImmediateReply  answered at once from the session and the ServerView
//                   (PING, ECHO, HELLO, CLIENT, CONFIG GET, every error found
//                   in the arguments...);
//   WriteOp         a kvpb::Command to replicate, and how to turn its applied
//                   kvpb::Result into the RESP reply;
//   ReadOp          a function run against the local state machine once the
//                   session's consistency mode allows a read there.
//
// Why a plan instead of executing: the node must replicate a write before
// answering it, possibly forward it to the leader, and delay a read until a
// ReadIndex or lease says the local state is fresh enough. Keeping those
// decisions out of here keeps this layer a pure function of (arguments,
// session, view) that is tested without a node, a socket or a clock.
//
// Semantics are Redis 7's, down to the error strings, so that redis-cli,
// redis-benchmark and client libraries work unchanged. Deliberate differences
// are listed in commands*.cc next to the command. RESP2 only: HELLO 3 is refused.
//
// Threading: not thread-safe. plan_command and every closure of the Plan it
// returns must run on the thread that owns the Session (the connection's event
// loop). A ReadOp of SCAN keeps the session's cursor table alive by itself
// (shared_ptr), so it may run after the connection closed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "chorus/kv.pb.h"
#include "host/consistency.h"
#include "server/keyspaces.h"
#include "storage/kv/state_machine.h"

namespace chorus::server {

// A connection's read mode (CHORUS.CONSISTENCY); kLease only when the
// group's engine has lease reads configured (raft.lease_reads).
using Consistency = host::Consistency;

// The cursors SCAN handed out on one connection: cursor -> the key the next
// page starts at. Redis cursors are numbers (redis-cli parses them with
// strtoull), but our keyspace is ordered by key, so the table maps each
// number back to a key.
//
// Cursors are unique across sessions (with ids below 2^39): a cursor encodes
// (session id, counter) through a bijection on 63 bits, so a cursor sent on
// another connection (a client pool) is unknown here and refused ("invalid
// cursor") instead of silently resuming at some other key. They stay below
// 2^63 for clients that parse them as signed 64-bit integers. Never 0 (0
// means start / done).
//
// Bounded: at most kCursorsMax cursors and kKeyBytesMax bytes of keys; the
// oldest cursor is evicted first. A cursor stays valid after use, so a client
// may retry a page.
class ScanCursorTable {
 public:
  static constexpr size_t kCursorsMax = 64;
  static constexpr size_t kKeyBytesMax = size_t{1} << 20;

  // Remembers `next_key` and returns a fresh cursor for it.
  uint64_t add(uint64_t session_id, std::string next_key);
  // The key `cursor` stands for; nullopt if never handed out here, or evicted.
  std::optional<std::string> find(uint64_t cursor) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    uint64_t cursor;
    std::string key;
  };
  uint64_t counter_ = 0;
  // Oldest first; linear lookups are fine at kCursorsMax entries.
  // Invariant: key_bytes_ == sum of entries_[i].key.size().
  std::deque<Entry> entries_;
  size_t key_bytes_ = 0;
};

// The log position of one completed write: the keyspace it went to, the
// term (Raft) or epoch of the entry, and its index in that keyspace's log.
// Printed as "keyspace:term:index" (CHORUS.TOKEN); keyspace names may hold
// ':', so the two numbers are taken from the right when parsed back.
struct WriteToken {
  std::string keyspace;
  uint64_t term = 0;
  uint64_t index = 0;
  // The write's outcome is unknown (-UNCERTAIN): it may still commit, at a
  // position nobody told this connection. term and index are 0; it has no
  // printable token, and WAIT counts 0 replicas for its keyspace until the
  // connection's next completed write there.
  bool uncertain = false;

  std::string to_string() const;
  // nullopt when `s` is not "keyspace:term:index" with a non-empty keyspace,
  // decimal numbers and index >= 1.
  static std::optional<WriteToken> parse(std::string_view s);
  bool operator==(const WriteToken&) const = default;
};

// Per-connection state, owned by the connection.
struct Session {
  uint64_t id = 0;                    // CLIENT ID; also the exactly-once session id the node uses
  std::string name;                   // CLIENT SETNAME / HELLO SETNAME; "" = none
  std::string lib_name, lib_version;  // CLIENT SETINFO
  Consistency consistency = Consistency::kLinearizable;
  std::shared_ptr<ScanCursorTable> scan_cursors = std::make_shared<ScanCursorTable>();
  // The connection's last write (CHORUS.TOKEN), and its last write
  // in each keyspace it wrote to (WAIT waits for all of them). Bounded by the
  // number of keyspaces (KeyspaceTable's kMaxKeyspaces + default); the
  // node forgets a dropped keyspace's entry when WAIT meets it.
  std::optional<WriteToken> last_write;
  std::map<std::string, WriteToken, std::less<>> last_write_by_keyspace;
};

// What the node tells the command layer about itself.
struct ServerView {
  uint64_t node_id = 0;
  std::string role;         // "leader" / "follower" / "candidate" ...; INFO maps leader -> master
  std::string status_json;  // CHORUS.STATUS body
  bool lease_reads_enabled = false;
  // Base for EX/PX: absolute expire_at_ms = time_base_ms + ttl. The node sets
  // max(its clock, state machine now_ms()), so a TTL never counts from a
  // replicated time already passed (docs/formats/kv-command.md).
  int64_t time_base_ms = 0;
  uint64_t max_bulk_bytes = uint64_t{512} << 20;  // CONFIG GET proto-max-bulk-len
  uint64_t max_clients = 10000;                   // CONFIG GET maxclients, INFO
  uint64_t connected_clients = 0;                 // INFO clients
  uint64_t uptime_s = 0;                          // INFO server
  uint16_t tcp_port = 0;                          // INFO server
  std::string version = "0.1.0";                  // chorus_version
};

struct ImmediateReply {
  std::string resp;  // "" = send nothing (an empty command, as Redis ignores "*0")
  bool close_after = false;
};

// A replicated write. The node fills command.client_id/seq/now_ms, replicates
// it, and when it is applied calls reply(result) to produce the RESP bytes.
struct WriteOp {
  kvpb::Command command;
  std::function<std::string(const kvpb::Result&)> reply;
  // The keys it writes (from the command table): the node routes the write
  // to their keyspace, and refuses one whose keys span keyspaces.
  std::vector<std::string> keys;
};

// A read executed against the local state machine once the consistency mode
// allows it. A storage error becomes "-ERR storage error: ...".
struct ReadOp {
  std::function<std::string(const kv::StateMachine&)> run;
  // The keys it reads (from the command table); empty for reads of the
  // whole keyspace (SCAN, DBSIZE), which span every keyspace.
  std::vector<std::string> keys;
  // Diagnostics (INFO): run at once against the local state, without a read
  // barrier, whatever the session's mode, so INFO answers on a node that has
  // no leader.
  bool local_ok = false;
};

// CHORUS.KEYSPACE: run by the node against the metadata group (node.h).
// `reply` turns the outcome into RESP.
struct KeyspaceOp {
  enum class Kind : uint8_t { kCreate, kDrop, kList, kInfo };
  Kind kind = Kind::kList;
  KeyspaceSpec spec;  // kCreate
  std::string name;   // kDrop, kInfo
};

// WAIT numreplicas timeout: the node waits until `numreplicas` replicas hold
// every write in `writes` (the session's last per keyspace), or until
// `timeout_ms` (0: no timeout; the node caps it at its request timeout), and
// answers the count reached as an integer.
struct WaitOp {
  uint64_t numreplicas = 0;
  uint64_t timeout_ms = 0;
  std::vector<WriteToken> writes;
};

// CHORUS.POLL token: the node answers the write's status (committed, pending,
// lost) and how many replicas hold it.
struct PollOp {
  WriteToken token;
};

using Plan = std::variant<ImmediateReply, WriteOp, ReadOp, KeyspaceOp, WaitOp, PollOp>;

// What a KeyspaceOp answers: OK (create, drop), the keyspaces (list), or one
// keyspace's fields (info).
struct KeyspaceFields {
  std::vector<std::pair<std::string, std::string>> fields;
};
using KeyspaceAnswer = std::variant<std::monostate, std::vector<KeyspaceSpec>, KeyspaceFields>;

// The RESP reply for a KeyspaceOp's answer; `error` renders a failure
// ("TRYAGAIN no leader", without "-" and CRLF).
std::string keyspace_reply(const KeyspaceAnswer& answer);

// Plans one command. `args[0]` is the command name (any case). Never fails:
// every error is an ImmediateReply carrying a RESP error.
Plan plan_command(const std::vector<std::string>& args, Session& session, const ServerView& view);

// The number of top-level commands in the table (COMMAND COUNT).
size_t command_count();
// Whether `name` (any case) is a command that proposes a write.
bool command_is_write(std::string_view name);
// A bounded label for metrics: the table's lowercase name, or "unknown".
std::string_view command_metric_name(std::string_view name);

// The mode's name as CHORUS.CONSISTENCY prints and parses it.
std::string_view consistency_name(Consistency c);

}  // namespace chorus::server
