// A tiny in-process harness for unit and paper-conformance tests of the pure
// Raft core. Header-only, test-only (it uses gtest to report violations).
//
// A Cluster is N Raft nodes, each with what a host gives it: a "disk" (the
// durable HardState, log entries and snapshot, exactly as persisted from
// Readys) and a state machine (the applied commands). Between the nodes sits
// a FIFO network that tests can cut. Nothing happens on its own: a test ticks
// nodes, proposes, and moves messages with deliver() or stabilize(), so a
// scenario reads like a story (etcd's interaction tests, Scylla's test_case):
//
//   Cluster c({.nodes = 3});
//   ASSERT_TRUE(c.elect(1));
//   c.isolate(1);
//   c.propose(1, "x");
//   c.stabilize();
//   EXPECT_EQ(c.raft(1).log().committed(), before);   // no quorum, no commit
//
// Every Ready is handled by the contract in core/common/types.h: send
// `messages`; persist (snapshot, then entries, then hard state); only then
// send `messages_after_persist`; apply `committed`; record reads and
// outcomes; advance(). hold(id) models a slow fsync: the node's Ready is taken
// and its `messages` go out, but nothing is persisted (and nothing that
// depends on persistence is sent) until release(id). crash(id) loses a held
// Ready, as a crash loses un-synced writes; restart(id) rebuilds the node from
// its disk.
//
// The harness checks safety as it goes and reports violations as test
// failures: at most one leader per term (Election Safety), every node applies
// the same entry at every index (State Machine Safety), and entries are
// durable before they are applied.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/prng.h"
#include "core/common/types.h"
#include "core/raft/messages.h"
#include "core/raft/raft.h"

namespace chorus::raft::testing {

using core::Entry;

// ---- Small builders for tests that drive one Raft by hand ------------------

inline Entry entry(uint64_t index, uint64_t term, std::string data = {}) {
  return Entry{Term(term), LogIndex(index), core::EntryType::kNormal, std::move(data)};
}

// Entries 1..terms.size() with the given terms; data names the position so
// that entries from different logs are told apart ("3@2" is index 3, term 2).
inline std::vector<Entry> entries_with_terms(const std::vector<uint64_t>& terms,
                                             uint64_t first = 1) {
  std::vector<Entry> out;
  for (size_t k = 0; k < terms.size(); ++k) {
    const uint64_t i = first + k;
    out.push_back(entry(i, terms[k], std::to_string(i) + "@" + std::to_string(terms[k])));
  }
  return out;
}

// Config for node `id` of an n-node cluster {1..n}; `tweak` adjusts it.
inline Config make_config(uint64_t id, size_t n, const std::function<void(Config&)>& tweak = {}) {
  Config cfg;
  cfg.id = NodeId(id);
  for (uint64_t v = 1; v <= n; ++v) cfg.voters.push_back(NodeId(v));
  if (tweak) tweak(cfg);
  return cfg;
}

inline Message msg(uint64_t from, uint64_t to, uint64_t term, Body body) {
  return Message{NodeId(from), NodeId(to), Term(term), std::move(body)};
}

// The messages of type T in `ms`.
template <class T>
std::vector<Message> of_type(const std::vector<Message>& ms) {
  std::vector<Message> out;
  for (const auto& m : ms) {
    if (std::holds_alternative<T>(m.body)) out.push_back(m);
  }
  return out;
}

// Takes the next Ready and advances it at once (a host with an instant disk).
inline Ready take(Raft& r) {
  Ready rd = r.ready();
  r.advance(rd);
  return rd;
}

// All messages a Ready sends, in contract order.
inline std::vector<Message> all_messages(const Ready& rd) {
  std::vector<Message> out = rd.messages;
  out.insert(out.end(), rd.messages_after_persist.begin(), rd.messages_after_persist.end());
  return out;
}

// ---- The cluster ------------------------------------------------------------

// What a scenario declares up front (use designated initializers).
struct ClusterSpec {
  size_t nodes = 3;
  uint64_t seed = 1;
  // logs[k]: terms of the entries already durable on node k+1 (see
  // entries_with_terms). Missing or empty: an empty log.
  std::vector<std::vector<uint64_t>> logs = {};
  // terms[k]: node k+1's durable current_term; defaults to its last log term.
  std::vector<uint64_t> terms = {};
  // Adjusts every node's Config (ids and voters are set by the cluster).
  std::function<void(Config&)> config = {};
  // Print every delivery and drop to stderr (for debugging a scenario).
  bool trace = false;
};

// A node's durable storage: what the host persisted from its Readys.
struct Disk {
  HardState durable;
  std::optional<core::SnapshotRef> snapshot;
  std::vector<Entry> entries;  // Invariant: contiguous, starting after the snapshot.

  LogIndex last_index() const {
    if (!entries.empty()) return entries.back().index;
    return snapshot ? snapshot->meta.index : LogIndex(0);
  }
};

// An in-memory state machine: the commands of the normal entries applied.
struct StateMachine {
  std::vector<std::string> commands;
  LogIndex applied;
  Term applied_term;
};

class Cluster {
 public:
  explicit Cluster(ClusterSpec spec = {}) : spec_(std::move(spec)), prng_(spec_.seed) {
    nodes_.resize(spec_.nodes);
    for (size_t k = 0; k < spec_.nodes; ++k) {
      Node& n = nodes_[k];
      if (k < spec_.logs.size()) n.disk.entries = entries_with_terms(spec_.logs[k]);
      const uint64_t last_term = n.disk.entries.empty() ? 0 : n.disk.entries.back().term.value();
      n.disk.durable.term = Term(k < spec_.terms.size() ? spec_.terms[k] : last_term);
      start(k + 1);
    }
  }

  size_t size() const { return nodes_.size(); }
  Raft& raft(uint64_t id) {
    CHORUS_ASSERT_MSG(node(id).raft, "node is down");
    return *node(id).raft;
  }
  const Disk& disk(uint64_t id) { return node(id).disk; }
  const StateMachine& sm(uint64_t id) { return node(id).sm; }
  bool up(uint64_t id) { return node(id).raft != nullptr; }
  RaftRole role(uint64_t id) { return raft(id).raft_role(); }
  LogIndex committed(uint64_t id) { return raft(id).log().committed(); }
  const std::vector<core::ReadState>& reads(uint64_t id) { return node(id).reads; }
  const std::vector<core::Outcome>& outcomes(uint64_t id) { return node(id).outcomes; }

  // ---- time and elections ----

  void tick(uint64_t id, int times = 1) {
    for (int i = 0; i < times && up(id); ++i) {
      raft(id).tick();
      check_election_safety(id);
    }
  }
  void tick_all(int times = 1) {
    for (int i = 0; i < times; ++i) {
      for (uint64_t id = 1; id <= size(); ++id) tick(id);
    }
  }

  // Ticks node `id` alone until its election timer fires (at most 2T ticks).
  // Returns the number of ticks it took.
  int campaign(uint64_t id) {
    const RaftRole role_before = role(id);
    const Term term_before = raft(id).term();
    const bool ready_before = raft(id).has_ready();
    const int limit = 2 * static_cast<int>(raft(id).config().election_timeout_ticks);
    for (int i = 1; i <= limit; ++i) {
      tick(id);
      if (role(id) != role_before || raft(id).term() != term_before ||
          (!ready_before && raft(id).has_ready())) {
        return i;
      }
    }
    ADD_FAILURE() << "n" << id << " did not campaign within " << limit << " ticks";
    return limit;
  }

  // Makes node `id` campaign and lets the election finish.
  [[nodiscard]] bool elect(uint64_t id) {
    campaign(id);
    stabilize();
    return role(id) == RaftRole::kLeader;
  }

  // Ticks every running node once and stabilizes, until `cond` holds.
  // Returns false if it still does not hold after max_ticks rounds.
  [[nodiscard]] bool run_until(const std::function<bool()>& cond, int max_ticks = 200) {
    for (int i = 0; i < max_ticks; ++i) {
      if (cond()) return true;
      tick_all();
      stabilize();
    }
    return cond();
  }

  // The leader of the highest term among running nodes, if any.
  std::optional<uint64_t> leader() {
    std::optional<uint64_t> best;
    for (uint64_t id = 1; id <= size(); ++id) {
      if (!up(id) || role(id) != RaftRole::kLeader) continue;
      if (!best || raft(id).term() > raft(*best).term()) best = id;
    }
    return best;
  }

  // ---- clients ----

  ProposeResult propose(uint64_t id, std::string data) { return raft(id).propose(std::move(data)); }
  ProposeResult read_index(uint64_t id, uint64_t ctx,
                           core::ReadMode mode = core::ReadMode::kLinearizable) {
    return raft(id).read_index(ctx, mode);
  }
  // Hands a message to its recipient as if it arrived from the network.
  void inject(const Message& m) { step(m); }

  // ---- network ----

  // Drops every message between a and b, both ways.
  void cut(uint64_t a, uint64_t b) {
    drop([a, b](const Message& m) {
      return (m.from.value() == a && m.to.value() == b) ||
             (m.from.value() == b && m.to.value() == a);
    });
  }
  // Cuts `id` from every other node.
  void isolate(uint64_t id) {
    drop([id](const Message& m) { return m.from.value() == id || m.to.value() == id; });
  }
  // Drops every message for which `pred` holds, until heal().
  void drop(std::function<bool(const Message&)> pred) { filters_.push_back(std::move(pred)); }
  void heal() { filters_.clear(); }

  // ---- disks, crashes, snapshots ----

  // Stops persisting node `id`'s Readys (a slow fsync): its `messages` still
  // go out, everything else waits for release(id).
  void hold(uint64_t id) { node(id).held = true; }
  void release(uint64_t id) {
    Node& n = node(id);
    n.held = false;
    if (n.pending) finish_ready(id);
  }

  // The node stops. A held Ready is lost; messages already sent stay in flight.
  void crash(uint64_t id) {
    Node& n = node(id);
    n.raft.reset();
    n.pending.reset();
    n.held = false;
  }
  // Rebuilds the node from its disk; the in-memory state machine restarts
  // from the snapshot.
  void restart(uint64_t id) {
    CHORUS_ASSERT(!up(id));
    start(id);
  }

  // The host snapshots node `id`'s state machine and lets Raft compact.
  void compact(uint64_t id) {
    Node& n = node(id);
    CHORUS_ASSERT(!n.pending);
    core::SnapshotRef ref{{n.sm.applied, n.sm.applied_term},
                          std::make_shared<const std::string>(encode(n.sm.commands))};
    n.disk.snapshot = ref;
    std::erase_if(n.disk.entries, [&](const Entry& e) { return e.index <= n.sm.applied; });
    n.raft->compact(ref);
  }

  // ---- moving things along ----

  // Handles node `id`'s next Ready, if any (the whole contract unless held).
  bool process_ready(uint64_t id) {
    Node& n = node(id);
    if (!n.raft || n.pending || !n.raft->has_ready()) return false;
    n.pending = std::make_unique<Ready>(n.raft->ready());
    check_election_safety(id);
    for (auto& m : n.pending->messages) send(std::move(m));
    n.pending->messages.clear();
    if (!n.held) finish_ready(id);
    return true;
  }

  // Delivers every message in flight now (not those sent as a result).
  size_t deliver() {
    std::deque<Message> batch;
    batch.swap(in_flight_);
    const size_t count = batch.size();
    for (auto& m : batch) step(m);
    return count;
  }

  // Delivers only the messages in flight that match `pred`; the rest stay.
  size_t deliver_if(const std::function<bool(const Message&)>& pred) {
    std::deque<Message> batch;
    std::deque<Message> keep;
    for (auto& m : in_flight_) (pred(m) ? batch : keep).push_back(std::move(m));
    in_flight_.swap(keep);
    for (auto& m : batch) step(m);
    return batch.size();
  }

  // Alternates Ready handling and delivery until nothing moves.
  void stabilize() {
    for (int round = 0; round < 10000; ++round) {
      bool moved = false;
      for (uint64_t id = 1; id <= size(); ++id) moved = process_ready(id) || moved;
      moved = deliver() > 0 || moved;
      if (!moved) return;
    }
    ADD_FAILURE() << "the cluster did not stabilize";
  }

  const std::deque<Message>& in_flight() const { return in_flight_; }

  // ---- what happened ----

  // Every message delivered to a node, in order.
  const std::vector<Message>& delivered() const { return delivered_; }
  void clear_delivered() { delivered_.clear(); }
  template <class T>
  size_t count_delivered(const std::function<bool(const Message&, const T&)>& pred = {}) const {
    size_t k = 0;
    for (const auto& m : delivered_) {
      const T* b = std::get_if<T>(&m.body);
      if (b != nullptr && (!pred || pred(m, *b))) ++k;
    }
    return k;
  }

 private:
  struct Node {
    std::unique_ptr<Raft> raft;
    Disk disk;
    StateMachine sm;
    std::unique_ptr<Ready> pending;  // taken, not yet advanced
    bool held = false;
    std::vector<core::ReadState> reads;
    std::vector<core::Outcome> outcomes;
  };

  Node& node(uint64_t id) {
    CHORUS_ASSERT(id >= 1 && id <= nodes_.size());
    return nodes_[id - 1];
  }

  void start(uint64_t id) {
    Node& n = node(id);
    n.sm = StateMachine{};
    if (n.disk.snapshot) {
      n.sm.commands = decode(*n.disk.snapshot->data);
      n.sm.applied = n.disk.snapshot->meta.index;
      n.sm.applied_term = n.disk.snapshot->meta.term;
    }
    PersistentState ps{n.disk.durable, n.disk.snapshot, n.disk.entries, n.sm.applied};
    n.raft =
        std::make_unique<Raft>(make_config(id, size(), spec_.config), prng_.fork(), std::move(ps));
    n.pending.reset();
    n.held = false;
  }

  void send(Message m) {
    for (const auto& f : filters_) {
      if (f(m)) {
        if (spec_.trace) std::cerr << "drop " << describe(m) << "\n";
        return;
      }
    }
    in_flight_.push_back(std::move(m));
  }

  void step(const Message& m) {
    if (!up(m.to.value())) return;  // a down node loses what arrives
    if (spec_.trace) std::cerr << "deliver " << describe(m) << "\n";
    delivered_.push_back(m);
    raft(m.to.value()).step(m);
    check_election_safety(m.to.value());
  }

  // Steps 2-5 of the Ready contract for the pending Ready.
  void finish_ready(uint64_t id) {
    Node& n = node(id);
    Ready& rd = *n.pending;
    persist(id, rd);
    for (auto& m : rd.messages_after_persist) send(std::move(m));
    rd.messages_after_persist.clear();
    apply(id, rd.committed);
    n.reads.insert(n.reads.end(), rd.reads.begin(), rd.reads.end());
    n.outcomes.insert(n.outcomes.end(), rd.outcomes.begin(), rd.outcomes.end());
    n.raft->advance(rd);
    n.pending.reset();
  }

  void persist(uint64_t id, const Ready& rd) {
    Disk& d = node(id).disk;
    StateMachine& sm = node(id).sm;
    if (rd.snapshot) {
      d.snapshot = *rd.snapshot;
      d.entries.clear();
      sm.commands = decode(*rd.snapshot->data);
      sm.applied = rd.snapshot->meta.index;
      sm.applied_term = rd.snapshot->meta.term;
    }
    if (!rd.entries.empty()) {
      const LogIndex first = rd.entries.front().index;
      std::erase_if(d.entries, [&](const Entry& e) { return e.index >= first; });
      EXPECT_EQ(first, d.last_index().next())
          << "n" << id << ": Ready entries leave a hole on disk";
      d.entries.insert(d.entries.end(), rd.entries.begin(), rd.entries.end());
    }
    if (rd.durable_state) d.durable = *rd.durable_state;
  }

  void apply(uint64_t id, const std::vector<Entry>& committed) {
    Node& n = node(id);
    for (const Entry& e : committed) {
      EXPECT_EQ(e.index, n.sm.applied.next()) << "n" << id << " applies out of order";
      EXPECT_LE(e.index, n.disk.last_index()) << "n" << id << " applies an entry not yet durable";
      auto [it, fresh] = applied_anywhere_.try_emplace(e.index.value(), e);
      EXPECT_TRUE(fresh || it->second == e)
          << "State Machine Safety: n" << id << " applies " << e.index << "@" << e.term
          << " but another node applied " << it->second.index << "@" << it->second.term;
      n.sm.applied = e.index;
      n.sm.applied_term = e.term;
      if (e.type == core::EntryType::kNormal) n.sm.commands.push_back(e.data);
    }
  }

  void check_election_safety(uint64_t id) {
    Raft& r = raft(id);
    if (r.raft_role() != RaftRole::kLeader) return;
    auto [it, fresh] = leaders_.try_emplace(r.term().value(), id);
    EXPECT_TRUE(fresh || it->second == id)
        << "Election Safety: n" << id << " and n" << it->second << " both lead term " << r.term();
  }

  // Snapshot payload: the applied commands, one per line.
  static std::string encode(const std::vector<std::string>& commands) {
    std::string s;
    for (const auto& c : commands) s += c + "\n";
    return s;
  }
  static std::vector<std::string> decode(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t nl; (nl = s.find('\n', start)) != std::string::npos; start = nl + 1) {
      out.push_back(s.substr(start, nl - start));
    }
    return out;
  }

  ClusterSpec spec_;
  Prng prng_;
  std::vector<Node> nodes_;
  std::deque<Message> in_flight_;
  std::vector<std::function<bool(const Message&)>> filters_;
  std::vector<Message> delivered_;
  std::map<uint64_t, uint64_t> leaders_;        // term -> the node that led it
  std::map<uint64_t, Entry> applied_anywhere_;  // index -> the entry applied there
};

}  // namespace chorus::raft::testing
