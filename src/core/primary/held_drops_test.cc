// Tests of how a backup reports the entries it drops (primary.h, "A drop is
// reported kRolledBack only once it is final"): held drops, their reports,
// and what survives a restart. One sync-all backup (n2) is driven message
// by message, with hand-written logs, so each test can build exactly the
// interleaving a review named.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/primary/primary.h"
#include "core/primary/testing.h"

namespace chorus::primary {
namespace {

using core::DropKind;
using core::Entry;
using core::EntryType;

Term term(uint64_t epoch, uint64_t generation = 0) {
  return entry_term(Epoch(epoch), generation);
}
Entry normal(uint64_t index, Term t, std::string data) {
  return Entry{t, LogIndex(index), EntryType::kNormal, std::move(data)};
}
Entry noop(uint64_t index, Term t) {
  return Entry{t, LogIndex(index), EntryType::kNoop, {}};
}

// A sync-all backup n2 with a host that persists each Ready as
// core/common/types.h says (durable state only when it needs a sync) and
// records what it reports dropped.
class Backup {
 public:
  explicit Backup(std::function<void(Options&)> tweak = {}) : tweak_(std::move(tweak)) {
    start();
    Configuration c{Epoch(1), NodeId(1), {NodeId(1), NodeId(2), NodeId(3)}};
    EXPECT_TRUE(engine_->configure(c).is_ok());
  }

  // An append from `primary` of `epoch`, sent with entry term `t`.
  void append(uint64_t primary, uint64_t epoch, Term t, uint64_t prev, Term prev_term,
              std::vector<Entry> entries, uint64_t commit) {
    engine_->step(
        Message{NodeId(primary), NodeId(2), Epoch(epoch),
                Append{t, LogIndex(prev), prev_term, std::move(entries), LogIndex(commit)}});
  }
  void install(uint64_t primary, uint64_t epoch, core::SnapshotMeta meta,
               std::vector<TermStart> terms, uint64_t last) {
    core::SnapshotRef snap{meta, std::make_shared<const std::string>()};
    engine_->step(Message{NodeId(primary), NodeId(2), Epoch(epoch),
                          InstallSnapshot{snap, std::move(terms), LogIndex(last), {}}});
  }
  // Handles every Ready, like the host.
  void drain() {
    for (int i = 0; i < 100 && engine_->has_ready(); ++i) {
      Ready rd = engine_->ready();
      persist(rd);
      dropped_.insert(dropped_.end(), rd.dropped.begin(), rd.dropped.end());
      engine_->advance(rd);
    }
    EXPECT_FALSE(engine_->has_ready());
  }
  void restart() {
    engine_.reset();
    start();
  }

  SyncAll& engine() { return *engine_; }
  const std::vector<core::DroppedEntry>& dropped() const { return dropped_; }
  // How often the entry with `data` was reported.
  size_t reports(const std::string& data) const {
    return static_cast<size_t>(std::count_if(dropped_.begin(), dropped_.end(),
                                             [&](const auto& d) { return d.entry.data == data; }));
  }

 private:
  void start() {
    Options o;
    o.id = NodeId(2);
    if (tweak_) tweak_(o);
    engine_ = std::make_unique<SyncAll>(
        o, PersistentState{durable_, snapshot_, entries_,
                           snapshot_ ? snapshot_->meta.index : LogIndex(0)});
  }
  void persist(const Ready& rd) {
    if (rd.snapshot) {
      snapshot_ = rd.snapshot;
      entries_.clear();
    }
    if (!rd.entries.empty()) {
      const LogIndex from = rd.entries.front().index;
      std::erase_if(entries_, [&](const Entry& e) { return e.index >= from; });
      entries_.insert(entries_.end(), rd.entries.begin(), rd.entries.end());
    }
    if (rd.durable_state && SyncAll::durable_needs_sync(durable_, *rd.durable_state))
      durable_ = *rd.durable_state;
  }

  std::function<void(Options&)> tweak_;
  std::unique_ptr<SyncAll> engine_;
  DurableState durable_;
  std::optional<core::SnapshotRef> snapshot_;
  std::vector<Entry> entries_;
  std::vector<core::DroppedEntry> dropped_;
};

// ---- each drop is reported once -------------------------------------------

const std::string kBigX(60, 'x');  // 84 bytes as an entry
const std::string kY(30, 'y');     // 54

// Epoch 1 rolls back x (marker at 2), then y (marker at 3): 138 bytes held
// unless the bound evicts x.
void roll_back_x_then_y(Backup& b) {
  b.append(1, 1, term(1), 0, Term(0), {noop(1, term(1)), normal(2, term(1), kBigX)}, 1);
  b.drain();
  b.append(1, 1, term(1, 1), 1, term(1), {noop(2, term(1, 1))}, 1);
  b.drain();
  b.append(1, 1, term(1, 1), 2, term(1, 1), {normal(3, term(1, 1), kY)}, 1);
  b.drain();
  b.append(1, 1, term(1, 2), 2, term(1, 1), {noop(3, term(1, 2))}, 1);
  b.drain();
}

// A held drop evicted by the bound goes out kInDoubt; when the entry comes
// back and is dropped again, it must not be reported a second time (as
// kRolledBack once the second drop settles).
TEST(HeldDrops, EvictedThenDroppedAgainIsReportedOnce) {
  Backup b([](Options& o) { o.max_unsettled_drop_bytes = 100; });
  const std::string& x = kBigX;
  roll_back_x_then_y(b);  // y held: x evicted
  ASSERT_EQ(b.reports(x), 1u);
  EXPECT_EQ(b.dropped()[0].kind, DropKind::kInDoubt);
  // Epoch 2's primary (n3) still holds x: the backup takes it back ...
  b.append(3, 2, term(2), 1, term(1), {normal(2, term(1), x), noop(3, term(2))}, 0);
  b.drain();
  // ... and epoch 3's primary (n1, with the markers) drops it again, then commits.
  b.append(1, 3, term(3), 1, term(1), {noop(2, term(1, 1)), noop(3, term(1, 2)), noop(4, term(3))},
           4);
  b.drain();
  EXPECT_EQ(b.reports(x), 1u) << "x reported again after its eviction";
}

// The held drops' bound is their own: a small prepare limit (what a backup
// accepts undecided) must not turn rolled-back drops into in-doubt ones.
TEST(HeldDrops, BoundedByTheirOwnOptionNotThePrepareLimit) {
  Backup b([](Options& o) {
    o.max_bytes_per_append = 100;
    o.max_prepared_bytes = 100;
  });
  roll_back_x_then_y(b);
  EXPECT_EQ(b.engine().held_drops(), 2u);
  EXPECT_TRUE(b.dropped().empty());
}

// An entry held, taken back and then dropped by a snapshot install whose
// term history does not reach it goes out kInDoubt at once; the held copy
// must not be reported again when it settles.
TEST(HeldDrops, SnapshotInstallOfAHeldEntryReportsItOnce) {
  Backup b;
  b.append(1, 1, term(1), 0, Term(0), {noop(1, term(1)), normal(2, term(1), "x")}, 1);
  b.drain();
  b.append(1, 1, term(1, 1), 1, term(1), {noop(2, term(1, 1))}, 1);  // x held
  b.drain();
  b.append(3, 2, term(2), 1, term(1), {normal(2, term(1), "x"), noop(3, term(2))}, 0);
  b.drain();  // x taken back
  b.install(3, 2, {LogIndex(5), term(2)}, {{term(2), LogIndex(3)}}, 5);
  b.drain();
  EXPECT_EQ(b.reports("x"), 1u);
}

// ---- settling ---------------------------------------------------------------

// An entry dropped twice is final as soon as either log that replaced it
// commits another entry where it differs from the entry's: an idle keyspace
// may commit the older divergence and nothing past it for a long time.
TEST(HeldDrops, SettledByAnyDivergenceThatCommits) {
  Backup b;
  b.append(1, 1, term(1), 0, Term(0),
           {noop(1, term(1)), normal(2, term(1), "a"), normal(3, term(1), "x")}, 1);
  b.drain();
  b.append(1, 1, term(1, 1), 1, term(1), {noop(2, term(1, 1))}, 1);  // a, x held: marker at 2
  b.drain();
  b.append(3, 2, term(2), 1, term(1),
           {normal(2, term(1), "a"), normal(3, term(1), "x"), noop(4, term(2))}, 0);
  b.drain();  // taken back
  b.append(1, 3, term(3), 1, term(1), {normal(2, term(1), "a"), noop(3, term(3))}, 0);
  b.drain();  // x dropped again, diverging at 3 now
  ASSERT_EQ(b.engine().held_drops(), 2u);
  // Epoch 4's primary holds the marker at 2; this backup commits through 2 only.
  b.append(3, 4, term(4), 1, term(1), {noop(2, term(1, 1))}, 2);
  b.drain();
  EXPECT_EQ(b.reports("a"), 1u);
  EXPECT_EQ(b.reports("x"), 1u) << "x is final: the marker committed where x's log has a";
  EXPECT_EQ(b.engine().held_drops(), 0u);
}

// ---- a restart -------------------------------------------------------------

// Held drops live in memory; a restart must not make them vanish. The
// restarted backup reports their positions, in doubt, once.
TEST(HeldDrops, ABackupRestartedBeforeTheyAreFinalReportsTheirPositionsInDoubt) {
  Backup b;
  b.append(1, 1, term(1), 0, Term(0),
           {noop(1, term(1)), normal(2, term(1), "x"), normal(3, term(1), "y")}, 1);
  b.drain();
  b.append(1, 1, term(1, 1), 1, term(1), {noop(2, term(1, 1))}, 1);  // x, y held
  b.drain();
  ASSERT_TRUE(b.dropped().empty());
  b.restart();
  b.drain();
  ASSERT_EQ(b.dropped().size(), 1u) << "held drops vanished in a restart";
  const core::DroppedEntry& d = b.dropped()[0];
  EXPECT_EQ(d.kind, DropKind::kInDoubt);
  EXPECT_EQ(d.entry.index, LogIndex(2));
  EXPECT_EQ(d.range_positions, 2u);
  b.restart();  // reported and handled: not again
  b.drain();
  b.append(1, 1, term(1, 1), 2, term(1, 1), {}, 2);  // the marker commits
  b.drain();
  EXPECT_EQ(b.dropped().size(), 1u);
}

// The same for a primary whose rollback was not yet released.
TEST(HeldDrops, APrimaryRestartedBeforeReleasingARollbackReportsItInDoubt) {
  testing::Group<AckRule::kSyncAll> g(3);
  g.appoint(1, 1);
  g.stabilize();
  g.isolate(1);
  const core::ProposeResult x = g.propose(1, "x");
  ASSERT_EQ(x.status, core::ProposeStatus::kAccepted);
  g.run(12);  // rolled back at n1; no backup holds the marker
  ASSERT_TRUE(g.dropped(1).empty());
  g.crash(1);
  g.restart(1);
  g.run(1);
  ASSERT_EQ(g.dropped(1).size(), 1u);
  EXPECT_EQ(g.dropped(1)[0].kind, DropKind::kInDoubt);
  EXPECT_EQ(g.dropped(1)[0].entry.index, x.index);
  EXPECT_EQ(g.dropped(1)[0].range_positions, 1u);
}

// ---- cost ------------------------------------------------------------------

// Held drops are examined again only when what decides them can have
// changed (the commit index, the log below it, a new hold): heartbeats that
// move nothing must not scan them all, on every input.
TEST(HeldDrops, HeartbeatsThatCommitNothingDoNotRescan) {
  Backup b;
  std::vector<Entry> es{noop(1, term(1))};
  for (uint64_t i = 2; i <= 11; ++i) es.push_back(normal(i, term(1), "w" + std::to_string(i)));
  b.append(1, 1, term(1), 0, Term(0), es, 1);
  b.drain();
  b.append(1, 1, term(1, 1), 1, term(1), {noop(2, term(1, 1))}, 1);  // ten held
  b.drain();
  ASSERT_EQ(b.engine().held_drops(), 10u);
  const uint64_t scans = b.engine().held_drop_scans();
  for (int i = 0; i < 50; ++i) {
    b.append(1, 1, term(1, 1), 2, term(1, 1), {}, 1);
    b.drain();
  }
  EXPECT_EQ(b.engine().held_drop_scans(), scans);
  b.append(1, 1, term(1, 1), 2, term(1, 1), {}, 2);  // the marker commits
  b.drain();
  EXPECT_EQ(b.engine().held_drops(), 0u);
  EXPECT_EQ(b.dropped().size(), 10u);
}

}  // namespace
}  // namespace chorus::primary
