#include "server/node.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/prng.h"
#include "host/registry.h"
#include "server/primary_setup.h"
#include "storage/kv/rocksdb_state_machine.h"

namespace chorus::server {

namespace {

constexpr auto kTickInterval = std::chrono::milliseconds(20);
constexpr int kTableChangeAttempts = 5;

Result<std::unique_ptr<kv::StateMachine>> open_state_machine(const NodeConfig& c,
                                                             const std::string& dir,
                                                             bool metadata) {
  if (!metadata && c.storage.state_machine == StateMachineKind::kRocksDb) {
    CHORUS_ASSIGN_OR_RETURN(auto sm, kv::RocksDbStateMachine::open(dir + "/rocksdb", {}));
    return std::unique_ptr<kv::StateMachine>(std::move(sm));
  }
  return std::unique_ptr<kv::StateMachine>(std::make_unique<kv::MemoryStateMachine>());
}

// "1,3" for KEYSPACE INFO; [1, 3] for /status.
std::string node_list(const std::vector<NodeId>& v) {
  std::string out;
  for (NodeId n : v) out += fmt::format("{}{}", out.empty() ? "" : ",", n.value());
  return out;
}
std::vector<uint64_t> ids_of(const std::vector<NodeId>& v) {
  std::vector<uint64_t> out;
  for (NodeId n : v) out.push_back(n.value());
  return out;
}

}  // namespace

Result<std::unique_ptr<Node>> Node::open(Options opts) {
  std::unique_ptr<Node> n(new Node(opts));
  Prng prng(opts.prng_seed);
  // 16 bits of node id, 48 random: never repeated across restarts.
  n->session_ = (opts.config->node_id << 48) | (prng.next_u64() >> 16) | 1;
  CHORUS_ASSIGN_OR_RETURN(n->meta_,
                          n->open_group(kMetadataGroup, "raft", n->group_dir(kMetadataGroup)));
  CHORUS_ASSIGN_OR_RETURN(n->default_,
                          n->open_group(kDefaultGroup, "raft", n->group_dir(kDefaultGroup)));
  PrimaryManagers::Deps md;
  md.config = opts.config;
  md.transport = opts.transport;
  md.meta = n->meta_.get();
  md.group = [raw = n.get()](GroupId id) { return raw->group(id); };
  md.table = [raw = n.get()]() -> const KeyspaceTable& { return raw->table_; };
  md.prng_seed = prng.next_u64();
  n->managers_ = std::make_unique<PrimaryManagers>(std::move(md));
  ProgressQueries::Deps pd;
  pd.self = NodeId(opts.config->node_id);
  pd.send = [t = opts.transport](net::OutgoingMessage m) { t->send(std::move(m)); };
  // Data groups only: no write token names the metadata group.
  pd.group = [raw = n.get()](GroupId id) {
    return id == kMetadataGroup ? nullptr : raw->group(id);
  };
  pd.post = [io = opts.io](std::function<void()> f) { asio::post(*io, std::move(f)); };
  pd.first_request_id = prng.next_u64() >> 1;  // room to count up
  n->progress_ = std::make_unique<ProgressQueries>(std::move(pd));
  n->reconcile();
  return n;
}

Node::~Node() {
  stop();
}

std::string Node::group_dir(GroupId id) const {
  const std::string& d = opts_.config->data_dir;
  if (id == kDefaultGroup) return d + "/raft";  // where a node kept its one group before keyspaces
  if (id == kMetadataGroup) return d + "/meta";
  return fmt::format("{}/groups/{}", d, id.value());
}

Result<std::unique_ptr<ReplicaGroup>> Node::open_group(GroupId id, std::string_view strategy,
                                                       const std::string& dir,
                                                       const KeyspaceOptions& options) {
  const NodeConfig& cfg = *opts_.config;
  storage::ReplicaStorageOptions so;
  so.wal.segment_bytes = cfg.storage.wal_segment_bytes;
  host::with_engine(strategy, [&]<class E>() { so.log_matching = E::kCapabilities.log_matching; });
  auto store = storage::ReplicaStorage::open(opts_.env, dir, so);
  if (!store.is_ok()) {
    return Status::corruption(fmt::format("group {} ({}): cannot recover storage: {}", id.value(),
                                          dir, store.status().to_string()));
  }
  auto sm = open_state_machine(cfg, dir, id == kMetadataGroup);
  if (!sm.is_ok()) {
    return Status::io_error(fmt::format("group {}: cannot open the state machine: {}", id.value(),
                                        sm.status().to_string()));
  }
  GroupContext ctx;
  ctx.io = opts_.io;
  ctx.storage = opts_.storage;
  ctx.config = opts_.config;
  ctx.group_id = id;
  ctx.store = std::move(store).value();
  ctx.sm = std::move(sm).value();
  ctx.transport = opts_.transport;
  ctx.metrics = opts_.hooks;
  ctx.prng_seed = opts_.prng_seed ^ (id.value() * 0x9e3779b97f4a7c15ULL);
  ctx.options = options;
  ctx.on_dropped = [this](GroupId g, const core::DroppedEntry& d) { on_dropped(g, d); };
  CHORUS_ASSIGN_OR_RETURN(auto group, make_replica_group(strategy, std::move(ctx)));
  if (Status st = group->init(); !st.is_ok()) {
    return Status(st.code(), fmt::format("group {}: cannot start: {}", id.value(), st.to_string()));
  }
  return group;
}

void Node::start() {
  meta_->start();
  default_->start();
  for (auto& [id, g] : keyspaces_) g->start();
  arm_timer();
}

void Node::stop() {
  if (stopped_) return;
  stopped_ = true;
  timer_.cancel();
  // Its waiting callers count locally and go on.
  if (progress_) progress_->stop();
  for (auto& [id, g] : keyspaces_) g->stop();
  if (default_) default_->stop();
  if (meta_) meta_->stop();
  sync_lost_log();
}

// lost-writes.log reaches the disk within a timer period of a drop (one
// fdatasync for all the drops of that period, on the loop: drops are rare).
void Node::sync_lost_log() {
  if (!lost_log_dirty_ || !lost_log_) return;
  lost_log_dirty_ = false;
  if (::fdatasync(::fileno(lost_log_.get())) != 0) {
    // After a failed fdatasync the kernel may have dropped the dirty pages:
    // a retry proving nothing, the records since the last sync are named
    // here, in the server log, by the lines logged with each drop.
    spdlog::error(
        "cannot sync {}/lost-writes.log: {}; the records since its last sync may be missing "
        "from it (each was also logged when dropped)",
        opts_.config->data_dir, std::strerror(errno));
    lost_log_.reset();
  }
}

Status Node::deliver(net::IncomingMessage m) {
  if (m.message.has_manager()) return managers_->receive(m);
  if (m.message.has_progress()) return progress_->receive(m);
  if (ReplicaGroup* g = group(GroupId(m.message.group_id()))) return g->receive(std::move(m));
  return Status::ok();  // a group this node does not host (yet, or any more): dropped
}

ReplicaGroup* Node::group(GroupId id) {
  if (id == kMetadataGroup) return meta_.get();
  if (id == kDefaultGroup) return default_.get();
  auto it = keyspaces_.find(id);
  return it == keyspaces_.end() ? nullptr : it->second.get();
}

ReplicaGroup& Node::group_for_key(std::string_view key) {
  ReplicaGroup* g = group(table_.group_of(key));
  // A keyspace in the table always has its group here (reconcile creates
  // it before the table is adopted).
  CHORUS_ASSERT(g != nullptr);
  return *g;
}

std::vector<ReplicaGroup*> Node::data_groups() {
  std::vector<ReplicaGroup*> out{default_.get()};
  for (auto& [id, g] : keyspaces_) out.push_back(g.get());
  return out;
}

std::vector<std::pair<std::string, const ReplicaGroup*>> Node::named_groups() const {
  std::vector<std::pair<std::string, const ReplicaGroup*>> out{
      {std::string(kDefaultKeyspaceName), default_.get()}};
  for (const auto& d : table_.proto().keyspaces()) {
    auto it = keyspaces_.find(GroupId(d.group_id()));
    if (it != keyspaces_.end()) out.emplace_back(d.name(), it->second.get());
  }
  return out;
}

// ---------------------------------------------------------------------------
// Following the table

void Node::arm_timer() {
  if (stopped_) return;
  timer_.expires_after(kTickInterval);
  timer_.async_wait([this](std::error_code ec) {
    if (!ec) on_timer();
  });
}

void Node::on_timer() {
  if (stopped_) return;
  reconcile();
  maybe_write_initial_table();
  managers_->tick();
  progress_->expire(std::chrono::steady_clock::now());
  sync_lost_log();
  arm_timer();
}

Result<KeyspaceTable> Node::applied_table() const {
  auto bytes = meta_->state().read(kKeyspaceTableKey);
  if (!bytes.is_ok()) return bytes.status();
  if (!bytes->has_value()) return Status::not_found("no keyspace table yet");
  return KeyspaceTable::parse(**bytes);
}

bool Node::reconcile() {
  auto next = applied_table();
  if (!next.is_ok()) {
    if (next.status().code() != StatusCode::kNotFound) {
      spdlog::error("keyspace table unreadable: {}", next.status().to_string());
    }
    return false;
  }
  if (table_known_ && *next == table_) return false;
  // New keyspaces get their groups before the table routes keys to them.
  for (const auto& d : next->proto().keyspaces()) {
    const GroupId id(d.group_id());
    if (keyspaces_.contains(id)) continue;
    auto g = open_group(id, d.strategy(), group_dir(id),
                        KeyspaceOptions(d.options().begin(), d.options().end()));
    if (!g.is_ok()) {
      // Not adopted: keys keep routing by the old table; tried again next tick.
      spdlog::error("keyspace '{}': {}", d.name(), g.status().to_string());
      return false;
    }
    if (!stopped_) (*g)->start();
    spdlog::info("keyspace '{}' (prefix '{}', {}) served by group {}", d.name(), d.prefix(),
                 d.strategy(), id.value());
    keyspaces_.emplace(id, std::move(g).value());
  }
  // Dropped keyspaces: stop routing to them first, then stop and delete.
  std::vector<GroupId> gone;
  for (const auto& [id, g] : keyspaces_) {
    bool kept = false;
    for (const auto& d : next->proto().keyspaces()) kept = kept || GroupId(d.group_id()) == id;
    if (!kept) gone.push_back(id);
  }
  table_ = std::move(next).value();
  table_known_ = true;
  for (GroupId id : gone) {
    keyspaces_[id]->stop();
    keyspaces_.erase(id);
    std::error_code ec;
    std::filesystem::remove_all(group_dir(id), ec);
    spdlog::info("keyspace group {} dropped{}", id.value(),
                 ec ? "; its directory could not be removed: " + ec.message() : "");
  }
  return true;
}

kvpb::Command Node::own(kvpb::Command cmd) {
  cmd.set_client_id(session_);
  cmd.set_seq(++seq_);
  return cmd;
}

// When the cluster first starts, the metadata leader writes the table from
// the config (if-absent: a table written meanwhile by another leader wins).
void Node::maybe_write_initial_table() {
  if (table_known_ || init_in_flight_ || !meta_->healthy() ||
      meta_->soft_state().role != core::Role::kLeader) {
    return;
  }
  KeyspaceTable t;
  for (const KeyspaceSpec& k : opts_.config->keyspaces) {
    auto next = t.with(k);
    if (!next.is_ok()) {
      spdlog::error("config keyspace '{}': {}", k.name, next.status().to_string());
      return;
    }
    t = std::move(next).value();
  }
  kvpb::Command cmd = kv::make_put(std::string(kKeyspaceTableKey), t.serialize());
  cmd.mutable_put()->set_condition(kvpb::Put::IF_ABSENT);
  init_in_flight_ = true;
  meta_->write(own(std::move(cmd)), [this](Result<kvpb::Result> r) {
    init_in_flight_ = false;
    if (!r.is_ok()) {
      spdlog::warn("writing the initial keyspace table: {}", r.status().to_string());
      return;
    }
    if (reconcile()) {
      spdlog::info("keyspace table initialized: {} keyspace(s) from the config",
                   table_.proto().keyspaces_size());
    }
  });
}

// ---------------------------------------------------------------------------
// CHORUS.KEYSPACE

void Node::change_table(std::function<Result<KeyspaceTable>(const KeyspaceTable&)> next,
                        int attempts, Done done) {
  meta_->read(host::Consistency::kLinearizable, [this, next = std::move(next), attempts,
                                                 done = std::move(done)](Result<LogIndex> r) {
    if (!r.is_ok()) return done(r.status());
    auto current_bytes = meta_->state().read(kKeyspaceTableKey);
    if (!current_bytes.is_ok()) return done(current_bytes.status());
    if (!current_bytes->has_value())
      return done(Status::unavailable("keyspace table not written yet"));
    auto current = KeyspaceTable::parse(**current_bytes);
    if (!current.is_ok()) return done(current.status());
    auto wanted = next(*current);
    if (!wanted.is_ok()) return done(wanted.status());
    kvpb::Command cas =
        kv::make_cas(std::string(kKeyspaceTableKey), **current_bytes, wanted->serialize());
    meta_->write(own(std::move(cas)), [this, next, attempts, done](Result<kvpb::Result> w) mutable {
      if (!w.is_ok()) return done(w.status());
      if (w->code() == kvpb::Result::CONDITION_FAILED) {
        // The table changed between our read and our write: start over.
        if (attempts > 1) return change_table(std::move(next), attempts - 1, std::move(done));
        return done(Status::busy("the keyspace table kept changing; try again"));
      }
      if (w->code() != kvpb::Result::OK) {
        return done(Status::invalid_argument(
            fmt::format("keyspace table write refused ({})", kvpb::Result::Code_Name(w->code()))));
      }
      // Applied here: follow it now, so this node routes by it before the
      // client hears OK.
      reconcile();
      done(KeyspaceAnswer{});
    });
  });
}

void Node::create_keyspace(KeyspaceSpec spec, Done done) {
  if (is_primary_strategy(spec.strategy)) {
    // What only a node knows: its cluster's size and tick.
    if (Status st = primary_settings(spec.strategy, spec.options, *opts_.config).status();
        !st.is_ok() && validate_keyspace(spec).is_ok()) {
      return done(st);
    }
  }
  if (spec.strategy == paxos::Paxos::kName && validate_keyspace(spec).is_ok()) {
    // Paxos packs node ids into 16 bits of a ballot: a cluster with larger
    // ids cannot run it, and should hear so now rather than from each node.
    if (Status st = EngineSetup<paxos::Paxos>::engine_config(*opts_.config).status(); !st.is_ok())
      return done(st);
  }
  change_table([spec](const KeyspaceTable& t) { return t.with(spec); }, kTableChangeAttempts,
               std::move(done));
}

void Node::drop_keyspace(std::string name, Done done) {
  change_table([name](const KeyspaceTable& t) { return t.without(name); }, kTableChangeAttempts,
               std::move(done));
}

void Node::list_keyspaces(Done done) {
  meta_->read(host::Consistency::kLinearizable, [this, done = std::move(done)](Result<LogIndex> r) {
    if (!r.is_ok()) return done(r.status());
    auto t = applied_table();
    if (!t.is_ok()) return done(t.status());
    std::vector<KeyspaceSpec> out{KeyspaceSpec{std::string(kDefaultKeyspaceName), "", "raft", {}}};
    for (const auto& d : t->proto().keyspaces()) out.push_back(spec_of(d));
    done(KeyspaceAnswer{std::move(out)});
  });
}

void Node::keyspace_info(std::string name, Done done) {
  meta_->read(host::Consistency::kLinearizable, [this, name = std::move(name),
                                                 done = std::move(done)](Result<LogIndex> r) {
    if (!r.is_ok()) return done(r.status());
    reconcile();
    GroupId id = kDefaultGroup;
    KeyspaceSpec spec{std::string(kDefaultKeyspaceName), "", "raft", {}};
    if (name != kDefaultKeyspaceName) {
      const auto* d = table_.find(name);
      if (d == nullptr) return done(Status::not_found("no keyspace '" + name + "'"));
      spec = spec_of(*d);
      id = GroupId(d->group_id());
    }
    ReplicaGroup* g = group(id);
    if (g == nullptr) return done(Status::unavailable("its group is starting"));
    const host::HostStatus s = g->status();
    KeyspaceFields f;
    f.fields = {{"name", spec.name},
                {"prefix", spec.prefix},
                {"strategy", spec.strategy},
                {"group", std::to_string(id.value())},
                {"role", std::string(core::role_name(s.engine.soft.role))},
                {"leader", std::to_string(s.engine.soft.leader.value())},
                {"term", std::to_string(s.engine.soft.term.value())},
                {"commit_index", std::to_string(s.engine.commit_index.value())},
                {"applied_index", std::to_string(s.applied_index.value())}};
    for (const auto& [k, v] : spec.options) f.fields.emplace_back("option." + k, v);
    if (auto ms = managers_->status(id)) {
      // Only the metadata leader runs the managers.
      f.fields.emplace_back("manager.phase", std::string(primary::phase_name(ms->phase)));
      f.fields.emplace_back("manager.epoch", std::to_string(ms->config.epoch.value()));
      f.fields.emplace_back("manager.primary", std::to_string(ms->config.primary.value()));
      f.fields.emplace_back("manager.members", node_list(ms->config.members));
      f.fields.emplace_back("manager.learners", node_list(ms->config.learners));
      f.fields.emplace_back("manager.reason", ms->reason);
    }
    done(KeyspaceAnswer{std::move(f)});
  });
}

// ---------------------------------------------------------------------------
// Dropped writes

namespace {

constexpr size_t kDroppedRemembered = 1 << 16;

}  // namespace

std::string Node::keyspace_name(GroupId g) const {
  if (g == kDefaultGroup) return std::string(kDefaultKeyspaceName);
  for (const auto& d : table_.proto().keyspaces()) {
    if (GroupId(d.group_id()) == g) return d.name();
  }
  return fmt::format("group-{}", g.value());
}

void Node::on_dropped(GroupId g, const core::DroppedEntry& d) {
  // Each node reports its own drops; one entry may be reported again while
  // this process runs (a truncation redone): count it once per kind.
  const DropKey id{g.value(), d.entry.term.value(), d.entry.index.value(), static_cast<int>(d.kind),
                   d.range_positions};
  if (!dropped_seen_.insert(id).second) return;
  dropped_order_.push_back(id);
  if (dropped_order_.size() > kDroppedRemembered) {
    dropped_seen_.erase(dropped_order_.front());
    dropped_order_.pop_front();
  }
  const std::string ks = keyspace_name(g);
  // One JSON object per line (docs/strategies.md, "Loss is counted"): tools
  // such as the nemesis match lost writes by key and value.
  nlohmann::json j{{"ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count()},
                   {"keyspace", ks},
                   {"term", d.entry.term.value()},
                   {"index", d.entry.index.value()},
                   {"kind", std::string(core::drop_kind_name(d.kind))}};
  std::string what = "no-op";
  kvpb::Command cmd;
  if (d.range_positions > 0) {
    j["positions"] = d.range_positions;
    what = fmt::format("{} log positions from here (inside a snapshot; not enumerable)",
                       d.range_positions);
  } else if (d.entry.type == core::EntryType::kNormal) {
    if (cmd.ParseFromString(d.entry.data)) {
      what = cmd.ShortDebugString();
      j["command"] = what;
      if (cmd.has_put()) {
        j["op"] = "put";
        j["key"] = cmd.put().key();
        j["value"] = cmd.put().value();
      } else if (cmd.has_cas()) {
        j["op"] = "cas";
        j["key"] = cmd.cas().key();
        j["value"] = cmd.cas().value();
      } else if (cmd.has_append()) {
        j["op"] = "append";
        j["key"] = cmd.append().key();
        j["value"] = cmd.append().value();
      }
    } else {
      what = "(undecodable command)";
    }
  }
  const std::string line =
      fmt::format("keyspace={} term={} index={} kind={} {}", ks, d.entry.term.value(),
                  d.entry.index.value(), core::drop_kind_name(d.kind), what);
  if (d.kind == core::DropKind::kLostAcknowledged) {
    spdlog::warn("lost acknowledged write: {}", line);
  } else {
    spdlog::info("dropped write: {}", line);
  }
  // Opened once: one Ready may drop hundreds of entries.
  const std::string path = opts_.config->data_dir + "/lost-writes.log";
  if (!lost_log_) {
    const bool existed = std::filesystem::exists(path);
    lost_log_.reset(std::fopen(path.c_str(), "a"));
    // A new file survives a power failure only once its directory entry does.
    if (lost_log_ && !existed && opts_.env != nullptr) {
      if (Status st = opts_.env->sync_dir(opts_.config->data_dir); !st.is_ok()) {
        spdlog::error("lost-writes.log created but its directory not synced: {}", st.to_string());
      }
    }
  }
  if (lost_log_) {
    const std::string text =
        j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    // Flushed, it survives the process; synced (sync_lost_log()), the host.
    if (std::fwrite(text.data(), 1, text.size(), lost_log_.get()) != text.size() ||
        std::fflush(lost_log_.get()) != 0) {
      spdlog::error("cannot append to {}: {}; the record is only in this log: {}", path,
                    std::strerror(errno), line);
      lost_log_.reset();  // reopened (and appended to) at the next drop
    } else {
      lost_log_dirty_ = true;
    }
  } else {
    spdlog::error("cannot open {}: {}; the record is only in this log: {}", path,
                  std::strerror(errno), line);
  }
  if (opts_.on_dropped) opts_.on_dropped(ks, d);
}

// ---------------------------------------------------------------------------
// Status

std::string Node::status_json() const {
  nlohmann::json j = nlohmann::json::parse(server::status_json(*default_, opts_.config->node_id));
  j["metadata"] = nlohmann::json::parse(server::status_json(*meta_, opts_.config->node_id));
  nlohmann::json ks = nlohmann::json::array();
  ks.push_back({{"name", std::string(kDefaultKeyspaceName)},
                {"prefix", ""},
                {"strategy", "raft"},
                {"group", j}});
  for (const auto& d : table_.proto().keyspaces()) {
    auto it = keyspaces_.find(GroupId(d.group_id()));
    nlohmann::json g =
        it == keyspaces_.end()
            ? nlohmann::json::object()
            : nlohmann::json::parse(server::status_json(*it->second, opts_.config->node_id));
    nlohmann::json entry{{"name", d.name()},
                         {"prefix", d.prefix()},
                         {"strategy", d.strategy()},
                         {"group", std::move(g)}};
    if (auto ms = managers_->status(GroupId(d.group_id()))) {
      entry["manager"] = {{"phase", std::string(primary::phase_name(ms->phase))},
                          {"epoch", ms->config.epoch.value()},
                          {"primary", ms->config.primary.value()},
                          {"version", ms->config.version},
                          {"members", ids_of(ms->config.members)},
                          {"learners", ids_of(ms->config.learners)},
                          {"reason", ms->reason}};
    }
    ks.push_back(std::move(entry));
  }
  j["keyspaces"] = std::move(ks);
  j["keyspace_table_version"] = table_.version();
  j["routing_ready"] = table_known_;
  // Prefixes are bytes: anything that is not UTF-8 is shown as U+FFFD.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool Node::healthy() const {
  if (!meta_->healthy() || !default_->healthy()) return false;
  for (const auto& [id, g] : keyspaces_) {
    if (!g->healthy()) return false;
  }
  return true;
}

std::string Node::failure() const {
  if (!meta_->healthy()) return "metadata group: " + meta_->failure().to_string();
  if (!default_->healthy()) return "default group: " + default_->failure().to_string();
  for (const auto& [id, g] : keyspaces_) {
    if (!g->healthy()) return fmt::format("group {}: {}", id.value(), g->failure().to_string());
  }
  return "";
}

}  // namespace chorus::server
