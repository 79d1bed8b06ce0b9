// A deterministic in-memory harness for the pure Paxos core. Header-only,
// test-only (it reports violations through gtest).
//
// A Cluster is N Paxos nodes, each with what a host gives it: a "disk" (the
// promised ballot, the slot log and the snapshot exactly as persisted from
// Readys) and a state machine (the applied slots). Between them sits a
// network that tests drive by hand (deliver_all) or let misbehave from a
// seed: drop, duplicate, delay and reorder messages, cut links. Every Ready
// is handled by the contract in core/common/types.h: send `messages`,
// persist, only then send `messages_after_persist`, apply `committed`,
// advance(). The network is core/common/testing/network.h. hold(id)
// models a slow fsync: the Ready is taken, its `messages` leave, nothing
// else happens until release(id); crash(id) loses a held Ready; restart(id)
// rebuilds the node from its disk and restores its state machine from its
// snapshot.
//
// Checked as it goes: every node applies the same value at every slot, in
// order, and only once it is durable; Prepare, Promise and Accepted leave
// only from messages_after_persist.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/prng.h"
#include "core/common/testing/network.h"
#include "core/common/types.h"
#include "core/paxos/messages.h"
#include "core/paxos/paxos.h"

namespace chorus::paxos::testing {

using core::Entry;
using core::testing::NetFaults;

struct Disk {
  DurableState durable;
  std::optional<core::SnapshotRef> snapshot;
  std::vector<Entry> entries;  // contiguous, after the snapshot
};

struct Applied {
  Term term;
  core::EntryType type;
  std::string data;
  bool operator==(const Applied&) const = default;
};

struct Options {
  size_t nodes = 3;
  uint64_t seed = 1;
  uint32_t election_timeout_ticks = 10;
  size_t max_slots_per_accept = 64;
  size_t max_inflight_slots = 256;
  size_t max_bytes_per_accept = 1 << 20;
  size_t max_bytes_per_decide = 1 << 20;
};

// A client write the test proposed and its fate.
struct Proposal {
  NodeId node;
  LogIndex slot;
  Term origin;
  std::string data;
  bool acknowledged = false;  // the proposing node applied it
};

class Cluster {
 public:
  explicit Cluster(Options o) : opts_(o), prng_(o.seed), net_(prng_) {
    for (size_t i = 1; i <= o.nodes; ++i) ids_.push_back(NodeId(i));
    for (NodeId id : ids_) {
      nodes_[id.value()].node_seed = prng_.next_u64();
      start(id);
    }
  }

  Paxos& px(uint64_t id) { return *nodes_.at(id).px; }
  const std::vector<NodeId>& ids() const { return ids_; }
  const std::map<LogIndex, Applied>& applied(uint64_t id) { return nodes_.at(id).sm; }
  const Disk& disk(uint64_t id) { return nodes_.at(id).disk; }
  bool up(uint64_t id) { return nodes_.at(id).up; }
  std::vector<Proposal>& proposals() { return proposals_; }
  NetFaults& faults() { return net_.faults(); }
  uint64_t now() const { return net_.now(); }
  // Messages sent so far, in send order, for tests that look at the wire.
  std::vector<Message>& sent_log() { return sent_log_; }

  Config config(NodeId id) const {
    Config c;
    c.id = id;
    c.members = ids_;
    c.election_timeout_ticks = opts_.election_timeout_ticks;
    c.max_slots_per_accept = opts_.max_slots_per_accept;
    c.max_inflight_slots = opts_.max_inflight_slots;
    c.max_bytes_per_accept = opts_.max_bytes_per_accept;
    c.max_bytes_per_decide = opts_.max_bytes_per_decide;
    return c;
  }

  // ---- Time and traffic ----------------------------------------------------

  void tick(uint64_t id) {
    if (!nodes_.at(id).up) return;
    px(id).tick();
    pump(id);
  }
  // One tick of network time: every node ticks, then ready messages move.
  void tick_all() {
    net_.tick();
    for (NodeId id : ids_) tick(id.value());
    deliver_due();
  }
  // Moves messages until the network is quiet (no faults may be set that
  // keep it busy forever: duplicates stop after a bounded number of rounds).
  void deliver_all(size_t max_rounds = 10000) {
    net_.deliver_all([this](const Message& m) { receive(m); }, max_rounds);
  }
  // Ticks everyone until `pred` holds, at most max_ticks; true if it held.
  template <class Pred>
  bool run_until(Pred pred, size_t max_ticks = 1000) {
    for (size_t t = 0; t < max_ticks; ++t) {
      if (pred()) return true;
      tick_all();
    }
    return pred();
  }
  // Elects `id`: times it out, delivers until phase 1 finishes.
  bool elect(uint64_t id) {
    for (int i = 0; i < 1000 && px(id).paxos_role() != PaxosRole::kLeader; ++i) {
      while (px(id).paxos_role() == PaxosRole::kFollower) tick(id);
      deliver_all();
      if (px(id).paxos_role() != PaxosRole::kLeader) tick(id);
    }
    deliver_all();
    return px(id).paxos_role() == PaxosRole::kLeader;
  }
  std::optional<uint64_t> leader() {
    for (NodeId id : ids_) {
      if (nodes_.at(id.value()).up && px(id.value()).paxos_role() == PaxosRole::kLeader) {
        return id.value();
      }
    }
    return std::nullopt;
  }

  core::ProposeResult propose(uint64_t id, std::string data) {
    core::ProposeResult r = px(id).propose(data);
    if (r.status == core::ProposeStatus::kAccepted) {
      proposals_.push_back(Proposal{NodeId(id), r.index, r.term, std::move(data)});
    }
    pump(id);
    return r;
  }

  // Several commands offered before the leader's next Ready, as a busy
  // host would: they share Accept messages.
  std::vector<core::ProposeResult> propose_batch(uint64_t id,
                                                 const std::vector<std::string>& data) {
    std::vector<core::ProposeResult> out;
    for (const std::string& d : data) {
      out.push_back(px(id).propose(d));
      if (out.back().status == core::ProposeStatus::kAccepted) {
        proposals_.push_back(Proposal{NodeId(id), out.back().index, out.back().term, d});
      }
    }
    pump(id);
    return out;
  }

  // ---- Faults --------------------------------------------------------------

  void cut(uint64_t a, uint64_t b) { net_.cut(a, b); }
  void isolate(uint64_t a) { net_.isolate(a, ids_); }
  void heal() { net_.heal(); }
  bool is_cut(uint64_t a, uint64_t b) const { return net_.is_cut(a, b); }

  // Slow fsync: the next Ready's messages leave, its persistence waits.
  void hold(uint64_t id) {
    nodes_.at(id).holding = true;
    pump(id);
  }
  void release(uint64_t id) {
    Node& n = nodes_.at(id);
    if (!n.up) return;
    n.holding = false;
    if (n.held) {
      Ready rd = std::move(*n.held);
      n.held.reset();
      finish(id, rd);
    }
    pump(id);
  }
  bool holding_ready(uint64_t id) { return nodes_.at(id).held.has_value(); }

  void crash(uint64_t id) {
    Node& n = nodes_.at(id);
    n.up = false;
    n.holding = false;
    n.held.reset();  // un-synced writes are lost
    n.px.reset();
  }
  void restart(uint64_t id) {
    start(NodeId(id));
    pump(id);
  }

  // The host snapshots its state machine at the slot it applied (never while
  // a Ready is held: what it hands over is not applied yet).
  void compact(uint64_t id) {
    Node& n = nodes_.at(id);
    if (!n.up || n.held || n.sm.empty()) return;
    const LogIndex idx = n.sm.rbegin()->first;
    if (idx <= n.px->status().snapshot_index) return;
    core::SnapshotRef snap{core::SnapshotMeta{idx, *n.px->term_at(idx)}, save_sm(id, idx)};
    n.px->compact(snap);
    n.disk.snapshot = snap;
    std::erase_if(n.disk.entries, [&](const Entry& e) { return e.index <= idx; });
    pump(id);
  }

  // Every acknowledged write is applied, at its slot, by every live node.
  void expect_acknowledged_applied() {
    for (const Proposal& p : proposals_) {
      if (!p.acknowledged) continue;
      for (NodeId id : ids_) {
        Node& n = nodes_.at(id.value());
        if (!n.up) continue;
        auto it = n.sm.find(p.slot);
        ASSERT_NE(it, n.sm.end()) << "seed " << opts_.seed << ": n" << id.value()
                                  << " did not apply acknowledged slot " << p.slot;
        EXPECT_EQ(it->second.data, p.data) << "seed " << opts_.seed;
      }
    }
  }

 private:
  struct Node {
    uint64_t node_seed = 0;
    std::unique_ptr<Paxos> px;
    Disk disk;
    bool up = false;
    bool holding = false;
    std::optional<Ready> held;
    std::map<LogIndex, Applied> sm;  // the state machine: applied slots
  };
  void start(NodeId id) {
    Node& n = nodes_.at(id.value());
    PersistentState st;
    st.durable = n.disk.durable;
    st.snapshot = n.disk.snapshot;
    st.entries = n.disk.entries;
    n.sm.clear();
    if (n.disk.snapshot) {
      n.sm = snapshots_.at(*n.disk.snapshot->data);
      st.applied = n.disk.snapshot->meta.index;
    }
    Prng p(n.node_seed + ++restarts_);
    n.px = std::make_unique<Paxos>(config(id), p, std::move(st));
    n.up = true;
  }

  std::shared_ptr<const std::string> save_sm(uint64_t id, LogIndex idx) {
    std::string key = "n" + std::to_string(id) + "@" + std::to_string(idx.value()) + "#" +
                      std::to_string(snapshots_.size());
    std::map<LogIndex, Applied> sm;
    for (const auto& [s, a] : nodes_.at(id).sm) {
      if (s <= idx) sm[s] = a;
    }
    snapshots_[key] = std::move(sm);
    return std::make_shared<const std::string>(key);
  }

  void pump(uint64_t id) {
    Node& n = nodes_.at(id);
    if (!n.up) return;
    if (n.held) {
      for (Message& m : n.px->take_messages()) send(std::move(m), false);
      return;
    }
    while (n.px->has_ready()) {
      Ready rd = n.px->ready();
      for (const Message& m : rd.messages) send(m, false);
      if (n.holding) {
        n.held = std::move(rd);
        return;
      }
      finish(id, rd);
    }
  }

  // Persist, send what waited for it, apply, advance.
  void finish(uint64_t id, const Ready& rd) {
    Node& n = nodes_.at(id);
    persist(n, rd);
    for (const Message& m : rd.messages_after_persist) send(m, true);
    for (const Entry& e : rd.committed) apply(id, e);
    n.px->advance(rd);
  }

  void persist(Node& n, const Ready& rd) {
    if (rd.snapshot) {
      n.disk.snapshot = rd.snapshot;
      n.disk.entries.clear();
      n.sm = snapshots_.at(*rd.snapshot->data);
    }
    if (!rd.entries.empty()) {
      const LogIndex first = rd.entries.front().index;
      const LogIndex base = n.disk.snapshot ? n.disk.snapshot->meta.index : LogIndex(0);
      ASSERT_GT(first, base);
      ASSERT_LE(first.value(), base.value() + n.disk.entries.size() + 1) << "a gap in the log";
      n.disk.entries.resize(first - base - 1);
      for (const Entry& e : rd.entries) n.disk.entries.push_back(e);
    }
    if (rd.durable_state) n.disk.durable = *rd.durable_state;
  }

  void apply(uint64_t id, const Entry& e) {
    Node& n = nodes_.at(id);
    const LogIndex last = n.sm.empty() ? LogIndex(0) : n.sm.rbegin()->first;
    ASSERT_EQ(e.index, last.next())
        << "seed " << opts_.seed << ": n" << id << " applied out of order";
    // Durable before applied.
    const LogIndex base = n.disk.snapshot ? n.disk.snapshot->meta.index : LogIndex(0);
    ASSERT_GT(e.index, base);
    ASSERT_LE(e.index - base, n.disk.entries.size()) << "applied a slot that is not durable";
    const std::optional<PValue> on_disk = decode_slot(n.disk.entries[e.index - base - 1]);
    ASSERT_TRUE(on_disk.has_value());
    EXPECT_EQ(on_disk->value.data, e.data) << "applied value differs from the durable one";
    const Applied a{e.term, e.type, e.data};
    auto [it, fresh] = chosen_.try_emplace(e.index, a);
    EXPECT_EQ(it->second, a) << "seed " << opts_.seed << ": n" << id
                             << " applied a different value at slot " << e.index;
    n.sm[e.index] = a;
    for (Proposal& p : proposals_) {
      if (p.node.value() == id && p.slot == e.index && p.origin == e.term &&
          e.type == core::EntryType::kNormal) {
        EXPECT_EQ(p.data, e.data);
        p.acknowledged = true;
      }
    }
  }

  void send(const Message& m, bool after_persist) {
    const bool answers = std::holds_alternative<Prepare>(m.body) ||
                         std::holds_alternative<Promise>(m.body) ||
                         std::holds_alternative<Accepted>(m.body);
    EXPECT_TRUE(after_persist || !answers)
        << describe(m) << " left before the acceptor's state was durable";
    sent_log_.push_back(m);
    net_.send(m);
  }

  void deliver_due() {
    net_.deliver_due([this](const Message& m) { receive(m); });
  }

  // A message the network delivers; a node that is down loses it.
  void receive(const Message& m) {
    const uint64_t to = m.to.value();
    if (!nodes_.at(to).up) return;
    px(to).step(m);
    pump(to);
  }

  Options opts_;
  Prng prng_;  // the node seeds, then every message fate
  core::testing::Network<Message> net_;
  std::vector<NodeId> ids_;
  std::map<uint64_t, Node> nodes_;
  std::map<LogIndex, Applied> chosen_;  // the first value any node applied at each slot
  std::map<std::string, std::map<LogIndex, Applied>> snapshots_;
  std::vector<Proposal> proposals_;
  std::vector<Message> sent_log_;
  uint64_t restarts_ = 0;
};

}  // namespace chorus::paxos::testing
