// A deterministic in-memory harness for the pure Zab core. Header-only,
// test-only (it reports violations through gtest).
//
// A Cluster is N Zab nodes, each with what a host gives it: a "disk" (the
// epochs, the log and the snapshot exactly as persisted from Readys) and a
// state machine (the delivered transactions). Between them sits a network
// (core/common/testing/network.h) the tests drive by hand or let misbehave
// from a seed (drop, duplicate, delay, reorder, cut links), plus `filter`, a
// predicate a test uses to drop precisely the messages of its story. Every
// Ready is handled by the contract in core/common/types.h: send `messages`,
// persist, only then send `messages_after_persist`, apply `committed`,
// advance(). crash(id) loses nothing durable; restart(id) rebuilds the node
// from its disk. hold(id) models a slow fsync: the next Ready is taken and
// its `messages` leave, then nothing of it happens until release(id)
// (messages the node may send meanwhile, take_messages(), still leave);
// crash(id) loses a held Ready.
//
// Checked as it goes (DSN 2011's properties): every node delivers the same
// transaction at each index (agreement, total order), in index order, each
// only once durable, with zxids increasing along the delivered sequence
// (primary order within the history); acknowledgements leave only after
// the state they promise is persisted.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/prng.h"
#include "core/common/testing/network.h"
#include "core/common/types.h"
#include "core/zab/zab.h"

namespace chorus::zab::testing {

using core::Entry;
using core::testing::NetFaults;

struct Disk {
  DurableState durable;
  std::optional<core::SnapshotRef> snapshot;
  std::vector<Entry> entries;  // contiguous, after the snapshot
};

struct Delivered {
  Term zxid;
  core::EntryType type;
  std::string data;
  bool operator==(const Delivered&) const = default;
};

class Cluster {
 public:
  explicit Cluster(size_t n, uint64_t seed = 1, std::function<void(Config&)> tune = {})
      : prng_(seed), net_(prng_), seed_(seed), tune_(std::move(tune)) {
    for (size_t i = 1; i <= n; ++i) ids_.push_back(NodeId(i));
    for (NodeId id : ids_) nodes_[id.value()];
    snapshots_[""] = {};  // empty_snapshot()
  }

  // Nodes start with the given persisted state (default: empty).
  void start_all() {
    for (NodeId id : ids_) restart(id.value());
  }
  Disk& disk(uint64_t id) { return nodes_.at(id).disk; }
  Zab& zab(uint64_t id) { return *nodes_.at(id).zab; }
  bool up(uint64_t id) { return nodes_.at(id).up; }
  const std::map<LogIndex, Delivered>& delivered(uint64_t id) { return nodes_.at(id).sm; }
  NetFaults& faults() { return net_.faults(); }
  std::vector<Message>& sent_log() { return sent_log_; }
  // Messages for which this returns true are dropped.
  std::function<bool(const Message&)> filter;

  Config config(NodeId id) const {
    Config c;
    c.id = id;
    c.members = ids_;
    if (tune_) tune_(c);
    return c;
  }

  void tick_all() {
    net_.tick();
    for (NodeId id : ids_) {
      if (!up(id.value())) continue;
      zab(id.value()).tick();
      pump(id.value());
    }
    deliver_due();
  }
  void deliver_all(size_t max_rounds = 10000) {
    net_.deliver_all([this](const Message& m) { receive(m); }, max_rounds);
  }
  template <class Pred>
  bool run_until(Pred pred, size_t max_ticks = 2000) {
    for (size_t t = 0; t < max_ticks; ++t) {
      if (pred()) return true;
      tick_all();
    }
    return pred();
  }
  // The node leading in broadcast, if exactly one does.
  std::optional<uint64_t> leader() {
    std::optional<uint64_t> found;
    for (NodeId id : ids_) {
      if (!up(id.value())) continue;
      Zab& z = zab(id.value());
      if (z.server_state() == ServerState::kLeading && z.phase() == Phase::kBroadcast) {
        if (found) return std::nullopt;
        found = id.value();
      }
    }
    return found;
  }
  // Every live node is in broadcast behind one leader.
  bool stable() {
    const std::optional<uint64_t> l = leader();
    if (!l) return false;
    for (NodeId id : ids_) {
      if (!up(id.value()) || id.value() == *l) continue;
      Zab& z = zab(id.value());
      if (z.server_state() != ServerState::kFollowing || z.leader() != NodeId(*l) ||
          z.phase() != Phase::kBroadcast) {
        return false;
      }
    }
    return true;
  }
  bool run_until_stable(size_t max_ticks = 2000) {
    return run_until([&] { return stable(); }, max_ticks);
  }
  // One line per node, for failure messages.
  std::string dump() {
    std::string out;
    for (NodeId id : ids_) {
      if (!up(id.value())) {
        out += "n" + std::to_string(id.value()) + " down\n";
        continue;
      }
      Zab& z = zab(id.value());
      const std::optional<Phase> p = z.phase();
      out += "n" + std::to_string(id.value()) + " " +
             std::string(server_state_name(z.server_state())) + " " +
             (p ? std::string(phase_name(*p)) : "-") +
             " leader=" + std::to_string(z.leader().value()) +
             " round=" + std::to_string(z.election_epoch()) + " vote=n" +
             std::to_string(z.vote().leader.value()) + "/" + to_string(z.vote().zxid) + "/" +
             std::to_string(z.vote().peer_epoch) + " epochs=" + std::to_string(z.accepted_epoch()) +
             "/" + std::to_string(z.current_epoch()) + " last=" + to_string(z.last_zxid()) + "@" +
             std::to_string(z.last_index().value()) +
             " commit=" + std::to_string(z.commit_index().value()) + "\n";
    }
    return out;
  }

  core::ProposeResult propose(uint64_t id, std::string data) {
    core::ProposeResult r = zab(id).propose(std::move(data));
    pump(id);
    return r;
  }

  void cut(uint64_t a, uint64_t b) { net_.cut(a, b); }
  void isolate(uint64_t a) { net_.isolate(a, ids_); }
  void heal() { net_.heal(); }

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
    n.zab.reset();
  }
  void restart(uint64_t id) {
    Node& n = nodes_.at(id);
    PersistentState st;
    st.durable = n.disk.durable;
    st.snapshot = n.disk.snapshot;
    st.entries = n.disk.entries;
    n.sm.clear();
    if (n.disk.snapshot) {
      n.sm = snapshots_.at(*n.disk.snapshot->data);
      st.applied = n.disk.snapshot->meta.index;
    }
    n.zab = std::make_unique<Zab>(config(NodeId(id)), std::move(st));
    n.up = true;
    pump(id);
  }
  // The host snapshots its state machine at its applied index (never while
  // a Ready is held: what it hands over is not applied yet).
  void compact(uint64_t id) {
    Node& n = nodes_.at(id);
    if (!n.up || n.held || n.sm.empty()) return;
    const LogIndex idx = n.sm.rbegin()->first;
    if (idx <= n.zab->status().snapshot_index) return;
    const std::string key = "n" + std::to_string(id) + "@" + std::to_string(idx.value());
    snapshots_[key] = n.sm;
    core::SnapshotRef snap{core::SnapshotMeta{idx, *n.zab->term_at(idx)},
                           std::make_shared<const std::string>(key)};
    n.zab->compact(snap);
    n.disk.snapshot = snap;
    std::erase_if(n.disk.entries, [&](const Entry& e) { return e.index <= idx; });
    pump(id);
  }

  // Every live node delivered the same sequence as far as it got, and the
  // given node delivered `data` somewhere.
  bool delivered_by(uint64_t id, const std::string& data) {
    for (const auto& [i, d] : nodes_.at(id).sm) {
      if (d.data == data) return true;
    }
    return false;
  }

 private:
  struct Node {
    std::unique_ptr<Zab> zab;
    Disk disk;
    bool up = false;
    std::map<LogIndex, Delivered> sm;
    bool holding = false;
    std::optional<Ready> held;
  };
  void pump(uint64_t id) {
    Node& n = nodes_.at(id);
    if (!n.up) return;
    if (n.held) {
      for (const Message& m : n.zab->take_messages()) send(m, false);
      return;
    }
    while (n.zab->has_ready()) {
      Ready rd = n.zab->ready();
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
    for (const Entry& e : rd.committed) deliver(id, e);
    n.zab->advance(rd);
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
    if (rd.durable_state) {
      EXPECT_LE(rd.durable_state->current_epoch, rd.durable_state->accepted_epoch);
      n.disk.durable = *rd.durable_state;
    }
  }

  void deliver(uint64_t id, const Entry& e) {
    Node& n = nodes_.at(id);
    const LogIndex last = n.sm.empty() ? LogIndex(0) : n.sm.rbegin()->first;
    ASSERT_EQ(e.index, last.next()) << "seed " << seed_ << ": n" << id << " delivered out of order";
    if (!n.sm.empty()) {
      EXPECT_GT(e.term, n.sm.rbegin()->second.zxid) << "zxids must increase along the delivery";
    }
    const LogIndex base = n.disk.snapshot ? n.disk.snapshot->meta.index : LogIndex(0);
    ASSERT_GT(e.index, base);
    ASSERT_LE(e.index - base, n.disk.entries.size()) << "delivered an entry that is not durable";
    EXPECT_EQ(n.disk.entries[e.index - base - 1], e) << "delivered entry differs from the log";
    const Delivered d{e.term, e.type, e.data};
    auto [it, fresh] = first_delivered_.try_emplace(e.index, d);
    EXPECT_EQ(it->second.zxid, d.zxid)
        << "seed " << seed_ << ": n" << id << " delivered another transaction at " << e.index;
    EXPECT_EQ(it->second.data, d.data);
    n.sm[e.index] = d;
  }

  void send(const Message& m, bool after_persist) {
    const bool promises =
        std::holds_alternative<AckEpoch>(m.body) || std::holds_alternative<NewLeaderAck>(m.body) ||
        std::holds_alternative<Ack>(m.body) || std::holds_alternative<NewEpoch>(m.body) ||
        std::holds_alternative<NewLeader>(m.body);
    EXPECT_TRUE(after_persist || !promises) << describe(m) << " left before its fsync";
    sent_log_.push_back(m);
    // The filter draws nothing: the messages it drops leave the fates of
    // the others as they were.
    if (filter && filter(m)) return;
    net_.send(m);
  }

  void deliver_due() {
    net_.deliver_due([this](const Message& m) { receive(m); });
  }

  // A message the network delivers; a node that is down loses it.
  void receive(const Message& m) {
    const uint64_t to = m.to.value();
    if (!up(to)) return;
    zab(to).step(m);
    pump(to);
  }

  Prng prng_;  // every message fate
  core::testing::Network<Message> net_;
  uint64_t seed_;
  std::function<void(Config&)> tune_;
  std::vector<NodeId> ids_;
  std::map<uint64_t, Node> nodes_;
  std::map<LogIndex, Delivered> first_delivered_;
  std::map<std::string, std::map<LogIndex, Delivered>> snapshots_;
  std::vector<Message> sent_log_;
};

}  // namespace chorus::zab::testing
