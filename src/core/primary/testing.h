// A minimal deterministic driver for unit tests of the primary-backup core:
// N engines, a FIFO network that tests can cut, and for each node what a host
// gives it — a "disk" (log entries, snapshot and durable state exactly as
// persisted from Readys) and a state machine (the commands applied). Test
// only (it reports contract violations through gtest).
//
// Every Ready is handled by the contract in core/common/types.h: send
// `messages`; persist (snapshot, then the entries — truncating from the
// first — then the durable state if it needs a sync, as the host does);
// only then send `messages_after_persist`; apply `committed`; record reads,
// outcomes and dropped entries; advance(); then, if the Ready asks for a
// snapshot, take one (compact(id)). hold(id) models a slow fsync: the
// Ready's `messages` leave, the rest waits for release(id); crash(id) loses
// it. restart(id) rebuilds the node from its disk.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/primary/primary.h"

namespace chorus::primary::testing {

using core::Entry;

struct StateMachine {
  std::vector<std::string> commands;  // the normal entries applied, in order
  LogIndex applied;
  Term applied_term;
};

inline std::string encode_commands(const std::vector<std::string>& cs) {
  std::string out;
  for (const auto& c : cs) out += std::to_string(c.size()) + ":" + c;
  return out;
}
inline std::vector<std::string> decode_commands(const std::string& b) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < b.size()) {
    const size_t colon = b.find(':', pos);
    const size_t n = std::stoul(b.substr(pos, colon - pos));
    out.push_back(b.substr(colon + 1, n));
    pos = colon + 1 + n;
  }
  return out;
}

struct Disk {
  DurableState durable;
  std::optional<core::SnapshotRef> snapshot;
  std::vector<Entry> entries;  // Invariant: contiguous, starting after the snapshot
  LogIndex last_index() const {
    if (!entries.empty()) return entries.back().index;
    return snapshot ? snapshot->meta.index : LogIndex(0);
  }
};

template <AckRule R>
class Group {
 public:
  using E = PrimaryBackup<R>;

  // Nodes 1..n; `tweak` adjusts each node's options.
  explicit Group(size_t n, std::function<void(Options&)> tweak = {}) : tweak_(std::move(tweak)) {
    nodes_.resize(n);
    for (uint64_t id = 1; id <= n; ++id) start(id);
  }

  E& node(uint64_t id) { return *at(id).engine; }
  bool up(uint64_t id) { return at(id).engine != nullptr; }
  const Disk& disk(uint64_t id) { return at(id).disk; }
  const StateMachine& sm(uint64_t id) { return at(id).sm; }
  const std::vector<core::Outcome>& outcomes(uint64_t id) { return at(id).outcomes; }
  const std::vector<core::ReadState>& reads(uint64_t id) { return at(id).reads; }
  const std::vector<core::DroppedEntry>& dropped(uint64_t id) { return at(id).dropped; }
  std::vector<uint64_t> members() const {
    std::vector<uint64_t> ids;
    for (uint64_t id = 1; id <= nodes_.size(); ++id) ids.push_back(id);
    return ids;
  }

  // The configuration manager's decision (every node is a member),
  // delivered by configure() to the running nodes in `to` (default: all);
  // the primary's copy carries the lease.
  void appoint(uint64_t epoch, uint64_t primary, uint64_t lease_ticks = 1000,
               std::vector<uint64_t> to = {}) {
    if (to.empty()) to = members();
    Configuration c{Epoch(epoch), NodeId(primary), {}, lease_ticks};
    for (uint64_t m : members()) c.members.push_back(NodeId(m));
    for (uint64_t m : to) {
      if (!up(m)) continue;
      c.lease_anchor_tick = node(m).ticks();  // granted at once: anchored now
      EXPECT_TRUE(node(m).configure(c).is_ok()) << "n" << m;
    }
  }

  core::ProposeResult propose(uint64_t id, std::string data) {
    return node(id).propose(std::move(data));
  }
  void tick(uint64_t id, int times = 1) {
    for (int i = 0; i < times && up(id); ++i) node(id).tick();
  }
  void tick_all(int times = 1) {
    for (int i = 0; i < times; ++i) {
      for (uint64_t id = 1; id <= nodes_.size(); ++id) tick(id);
    }
  }
  // Ticks everyone and stabilizes, `times` rounds.
  void run(int times) {
    for (int i = 0; i < times; ++i) {
      tick_all();
      stabilize();
    }
  }

  // ---- network ----
  void cut(uint64_t a, uint64_t b) {
    filters_.push_back([a, b](const Message& m) {
      return (m.from.value() == a && m.to.value() == b) ||
             (m.from.value() == b && m.to.value() == a);
    });
  }
  void isolate(uint64_t id) {
    filters_.push_back(
        [id](const Message& m) { return m.from.value() == id || m.to.value() == id; });
  }
  void heal() { filters_.clear(); }
  void inject(const Message& m) { deliver_one(m); }
  const std::deque<Message>& in_flight() const { return in_flight_; }
  // Removes every message in flight (to delay them: inject() them later).
  std::vector<Message> take_in_flight() {
    std::vector<Message> out(in_flight_.begin(), in_flight_.end());
    in_flight_.clear();
    return out;
  }

  // ---- disks, crashes, snapshots ----
  void hold(uint64_t id) { at(id).held = true; }
  void release(uint64_t id) {
    at(id).held = false;
    if (at(id).pending) finish(id);
  }
  void crash(uint64_t id) {
    Node& n = at(id);
    n.engine.reset();
    n.pending.reset();
    n.held = false;
  }
  void restart(uint64_t id) {
    EXPECT_FALSE(up(id));
    start(id);
  }
  // The host snapshots node `id`'s state machine and lets the engine compact.
  void compact(uint64_t id) {
    Node& n = at(id);
    ASSERT_FALSE(n.pending);
    core::SnapshotRef ref{{n.sm.applied, n.sm.applied_term},
                          std::make_shared<const std::string>(encode_commands(n.sm.commands))};
    n.disk.snapshot = ref;
    std::erase_if(n.disk.entries, [&](const Entry& e) { return e.index <= n.sm.applied; });
    n.engine->compact(ref);
  }

  // Whether the host honours Ready::snapshot_wanted (on by default), and
  // how often node `id` asked.
  void set_auto_snapshot(bool on) { auto_snapshot_ = on; }
  size_t snapshots_wanted(uint64_t id) { return at(id).snapshots_wanted; }

  // ---- moving things along ----
  bool process_ready(uint64_t id) {
    Node& n = at(id);
    if (!n.engine || n.pending) return false;
    bool moved = false;
    if (n.engine->has_messages()) {
      for (auto& m : n.engine->take_messages()) send(std::move(m));
      moved = true;
    }
    if (!n.engine->has_ready()) return moved;
    n.pending = std::make_unique<Ready>(n.engine->ready());
    for (auto& m : n.pending->messages) send(std::move(m));
    n.pending->messages.clear();
    if (!n.held) finish(id);
    return true;
  }
  size_t deliver() {
    std::deque<Message> batch;
    batch.swap(in_flight_);
    for (auto& m : batch) deliver_one(m);
    return batch.size();
  }
  void stabilize() {
    for (int round = 0; round < 10000; ++round) {
      bool moved = false;
      for (uint64_t id = 1; id <= nodes_.size(); ++id) moved = process_ready(id) || moved;
      moved = deliver() > 0 || moved;
      if (!moved) return;
    }
    ADD_FAILURE() << "the group did not stabilize";
  }

 private:
  struct Node {
    std::unique_ptr<E> engine;
    Disk disk;
    StateMachine sm;
    std::unique_ptr<Ready> pending;
    bool held = false;
    std::vector<core::Outcome> outcomes;
    std::vector<core::ReadState> reads;
    std::vector<core::DroppedEntry> dropped;
    size_t snapshots_wanted = 0;
  };

  Node& at(uint64_t id) {
    CHORUS_ASSERT(id >= 1 && id <= nodes_.size());
    return nodes_[id - 1];
  }

  void start(uint64_t id) {
    Node& n = at(id);
    Options o;
    o.id = NodeId(id);
    o.prepare_timeout_ticks = 10;
    o.ack_timeout_ticks = 10;
    if (tweak_) tweak_(o);
    // The state machine restarts from the snapshot, as an in-memory one does.
    n.sm = {};
    if (n.disk.snapshot) {
      n.sm.commands = decode_commands(*n.disk.snapshot->data);
      n.sm.applied = n.disk.snapshot->meta.index;
      n.sm.applied_term = n.disk.snapshot->meta.term;
    }
    PersistentState ps{n.disk.durable, n.disk.snapshot, n.disk.entries, n.sm.applied};
    n.engine = std::make_unique<E>(o, std::move(ps));
  }

  void send(Message m) {
    for (const auto& f : filters_) {
      if (f(m)) return;
    }
    in_flight_.push_back(std::move(m));
  }
  void deliver_one(const Message& m) {
    for (const auto& f : filters_) {
      if (f(m)) return;
    }
    const uint64_t to = m.to.value();
    if (to >= 1 && to <= nodes_.size() && up(to)) node(to).step(m);
  }

  void persist(Node& n, const Ready& rd) {
    if (rd.snapshot) {
      n.disk.snapshot = rd.snapshot;
      n.disk.entries.clear();
      n.sm.commands = decode_commands(*rd.snapshot->data);
      n.sm.applied = rd.snapshot->meta.index;
      n.sm.applied_term = rd.snapshot->meta.term;
    }
    if (!rd.entries.empty()) {
      const LogIndex from = rd.entries.front().index;
      EXPECT_LE(from, n.disk.last_index().next()) << "a gap in the persisted log";
      std::erase_if(n.disk.entries, [&](const Entry& e) { return e.index >= from; });
      n.disk.entries.insert(n.disk.entries.end(), rd.entries.begin(), rd.entries.end());
    }
    // Like the host: the durable state is written only when it needs a sync.
    if (rd.durable_state && E::durable_needs_sync(n.disk.durable, *rd.durable_state))
      n.disk.durable = *rd.durable_state;
  }

  void apply(Node& n, const std::vector<Entry>& committed) {
    for (const Entry& e : committed) {
      EXPECT_EQ(e.index, n.sm.applied.next()) << "committed entries must be contiguous";
      EXPECT_LE(e.index, n.disk.last_index()) << "applied before it is durable";
      n.sm.applied = e.index;
      n.sm.applied_term = e.term;
      if (e.type == core::EntryType::kNormal) n.sm.commands.push_back(e.data);
    }
  }

  void finish(uint64_t id) {
    Node& n = at(id);
    std::unique_ptr<Ready> rd = std::move(n.pending);
    persist(n, *rd);
    for (auto& m : rd->messages_after_persist) send(std::move(m));
    apply(n, rd->committed);
    n.reads.insert(n.reads.end(), rd->reads.begin(), rd->reads.end());
    n.outcomes.insert(n.outcomes.end(), rd->outcomes.begin(), rd->outcomes.end());
    n.dropped.insert(n.dropped.end(), rd->dropped.begin(), rd->dropped.end());
    n.engine->advance(*rd);
    // Step 6 of the Ready contract; snapshots_wanted counts the requests.
    if (rd->snapshot_wanted) {
      ++n.snapshots_wanted;
      if (auto_snapshot_) compact(id);
    }
  }

  std::function<void(Options&)> tweak_;
  bool auto_snapshot_ = true;
  std::vector<Node> nodes_;
  std::deque<Message> in_flight_;
  std::vector<std::function<bool(const Message&)>> filters_;
};

}  // namespace chorus::primary::testing
