// ReplicaHost<E, X>: the one driver of a replication engine. The server
// runs it with Asio effects, the simulator with simulated ones
// (effects.h), so the simulator proves the code that users run: there is no
// second copy of this loop anywhere.
//
// It owns everything between a pure engine (core/common/engine.h) and the
// world: the Ready contract (types.h), the durable storage
// (storage::ReplicaStorage), the key-value state machine, client requests
// waiting for their outcome, snapshots, and time.
//
//   loop (one thread)                          storage executor (FIFO)
//   -----------------------------------        ---------------------------
//   receive / tick / write / read
//   pump(): take a Ready                       persist(snapshot, entries,
//     send `messages` at once          ───►            durable state)
//     apply what is committed and already      one fdatasync per Ready
//     durable here, in parallel                (group commit: what arrives
//   on_persisted  ◄──────────────────────      meanwhile forms the next one)
//     send `messages_after_persist`, apply, serve reads, advance()
//
// A follower persists with the loop blocked instead (run_blocking): it has
// nothing else to do, and the hand-offs cost more than they save. A leader
// keeps the storage executor: its loop serves clients and followers during
// its own fsync. While a Ready is out, messages that need no fsync
// (heartbeats, the leader's appends) still leave (E::take_messages).
//
// Durability rules kept here (each has a test or a simulator check):
//  - durable_ is the last log index known durable locally. When a Ready is
//    taken that truncates the log (entries from index i) or installs a
//    snapshot, durable_ drops to i-1 (or 0) at once: entries it replaces
//    are no longer durable, and committed entries are applied early only up
//    to durable_ (Ready step 4). Invariant, asserted at every apply: no
//    applied entry is past durable_.
//  - The engine's durable state is written only when the engine says the
//    change needs an fsync (E::durable_needs_sync), and before the messages
//    that depend on it.
//
// Time: the engine counts ticks. Ticks follow this node's monotonic clock:
// before every input the host delivers one tick per tick period elapsed
// since it started (sync_clock), so a loop stalled for 500 ms delivers 50
// ticks before it handles anything else. A leader's lease (counted in ticks
// by the engine) therefore expires in real time even when the loop stalls.
//
// Clients: a write is a kvpb::Command with the client's session id and
// sequence number; it completes when this node applies that (session, seq),
// whichever node's log it entered through. It is offered again every
// retry_interval and at once when a new leader appears (the state machine's
// sessions apply a duplicate once). Outcomes: OK with the applied result;
// kUnavailable/kBusy only when the write certainly never entered any log
// (no leader, limits) or the engine rolled it back (kRolledBack);
// kIndeterminate once it was handed to an engine and then lost sight of
// (timeout, refused on a retry, shutdown, kAckTimedOut, an engine that
// abandons its copy: kDropped). Reads wait for
// a read barrier (ReadIndex or lease) and for the local state machine to
// reach its index; barriers not answered within retry_interval, or when the
// leader changes, are asked again.
//
// Snapshots: every snapshot_every_entries applied entries, and as soon as
// possible after a Ready with snapshot_wanted (types.h, step 6), the image is
// built and written on the storage executor; meanwhile the loop applies
// nothing (committed entries wait in deferred_), so the state machine holds
// still under the executor's reads.
//
// Fail-stop: if persisting or applying fails, the node stops taking part:
// no more Readies, every waiting client gets an error, healthy() turns false
// with the reason. It never retries an fsync.
//
// Threading: every method runs on the loop thread; callbacks (WriteDone,
// ReadDone) are invoked through X::post, never from inside the call that
// queued them.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/assert.h"
#include "base/prng.h"
#include "base/status.h"
#include "chorus/kv.pb.h"
#include "core/common/engine.h"
#include "host/consistency.h"
#include "host/effects.h"
#include "storage/kv/state_machine.h"
#include "storage/replica/replica_storage.h"

namespace chorus::host {

using namespace std::chrono_literals;

struct HostOptions {
  Duration tick = 10ms;
  Duration retry_interval = 400ms;   // offer a write or ask a read barrier again
  Duration no_leader_wait = 2000ms;  // a request never handed to a leader fails after this
  Duration request_timeout = 5000ms;
  uint64_t snapshot_every_entries = 100000;  // UINT64_MAX: never
  size_t max_pending_writes = 100000;        // one per client session
  size_t max_pending_reads = 100000;
  // After a stall longer than this many ticks the rest are skipped: every
  // timer and lease an engine counts is far shorter, so it has fired anyway.
  uint64_t max_catch_up_ticks = 10000;
  // The leader proposes its calendar clock now and then so keys expire on an
  // idle cluster (kvpb::Tick).
  bool publish_leader_clock = true;
  // Followers persist with the loop blocked (see the class comment).
  bool followers_persist_inline = true;
};

// What the host reports as it works (null hooks are skipped).
struct HostMetrics {
  std::function<void(double seconds)> fsync_latency;
  std::function<void(size_t entries)> append_batch;
  std::function<void(uint64_t n)> proposals;
  std::function<void(uint64_t n)> commits;  // entries applied
  std::function<void()> elections;          // this node started an election (a new term)
  std::function<void()> leader_changes;     // this node became leader
  // A role change and its reason, one line for the log.
  std::function<void(const core::SoftState& s, std::string_view role_name, std::string_view why)>
      role_change;
  // An entry this node dropped from its log (Ready::dropped): a lost
  // acknowledged write, a rollback, or one in doubt (core::DroppedEntry).
  std::function<void(const core::DroppedEntry& d)> dropped;
  // A snapshot was taken here (from_leader false) or installed from the leader.
  std::function<void(core::SnapshotMeta meta, bool from_leader)> snapshot;
  // Recovery notes, snapshot taken/installed, fail-stop: one line each.
  std::function<void(std::string_view line)> info;
  std::function<void(std::string_view line)> error;
};

// Checks the simulator runs at the host's decision points; empty in the
// server. Each returns normally or throws (the simulator's assertion handler).
struct HostProbes {
  // Before an entry is applied to the state machine.
  std::function<void(const core::Entry& e)> before_apply;
  // A client is told its write at entry `e` succeeded.
  std::function<void(const core::Entry& e)> write_acknowledged;
  // A Ready's entries are durable (its persist returned OK), before the
  // messages that depend on them leave.
  std::function<void(std::span<const core::Entry> entries)> entries_durable;
};

// A completed write: the state machine's result and the log position of the
// entry this node applied for it. (index, term) names the write for WAIT and
// CHORUS.TOKEN / CHORUS.POLL: another term at that index later means the
// entry was replaced.
struct WriteAck {
  kvpb::Result result;
  LogIndex index;
  Term term;
};

struct HostStatus {
  core::EngineStatus engine;
  LogIndex applied_index;
  Term applied_term;  // of the entry at applied_index (what the next snapshot says)
  LogIndex durable_index;
  uint64_t pending_writes = 0;
  uint64_t pending_reads = 0;
  uint64_t skipped_ticks = 0;  // ticks dropped after stalls longer than max_catch_up_ticks
  bool healthy = true;
  std::string error;
};

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
class ReplicaHost {
 public:
  using Msg = typename E::Message;
  using DurableState = typename E::DurableState;
  using ReadyT = core::Ready<Msg, DurableState>;
  using WriteDone = std::function<void(Result<kvpb::Result>)>;
  // As WriteDone, with the applied entry's position (WriteAck).
  using WriteAckDone = std::function<void(Result<WriteAck>)>;
  // OK with the index the read is served at: the state machine has applied
  // at least that far when the callback runs.
  using ReadDone = std::function<void(Result<LogIndex>)>;
  // Builds the engine from what recovery found.
  using EngineFactory = std::function<std::unique_ptr<E>(core::PersistentState<DurableState>)>;

  // `prng` seeds what must differ between incarnations (the read barrier
  // ids: an answer to the previous incarnation's barrier must not confirm a
  // new one).
  ReplicaHost(X& effects, HostOptions opts, std::unique_ptr<storage::ReplicaStorage> store,
              std::unique_ptr<kv::StateMachine> sm, Prng prng, HostMetrics* metrics = nullptr,
              HostProbes probes = {})
      : x_(effects),
        opts_(std::move(opts)),
        store_(std::move(store)),
        sm_(std::move(sm)),
        metrics_(metrics),
        probes_(std::move(probes)),
        // Random per incarnation, and far from wrapping: ids never repeat
        // across restarts (a 2^-64 chance per pair).
        next_read_ctx_((prng.next_u64() >> 1) | 1) {}
  ~ReplicaHost() { stop(); }
  ReplicaHost(const ReplicaHost&) = delete;
  ReplicaHost& operator=(const ReplicaHost&) = delete;

  // Recovers: restores the state machine from the snapshot when it is
  // behind it, checks the log reaches what the state machine applied,
  // recovers the applied term, and builds the engine. Call once, before
  // start(). Fails when the snapshot does not load or the log and the state
  // machine disagree.
  Status init(const EngineFactory& make_engine);
  // Starts ticking. Precondition: init() succeeded.
  void start();
  // Fails every waiting request and stops; no callback of this host runs
  // after it (but those already posted).
  void stop();

  // A message from a peer.
  void receive(Msg m);
  // A client write; cmd.client_id (non-zero) and cmd.seq identify it.
  void write(kvpb::Command cmd, WriteDone done);
  // The same write, completed with the applied entry's (index, term).
  void write_acked(kvpb::Command cmd, WriteAckDone done);
  // A read barrier of consistency `c`.
  void read(Consistency c, ReadDone done);
  // An engine-specific input (a primary-backup configuration from the
  // configuration manager, say): runs f(engine) with the clock caught up,
  // then handles whatever the engine produced. Returns what f returns.
  template <class F>
  auto configure_engine(F&& f) {
    CHORUS_ASSERT(core_ != nullptr);
    if (!stopped_ && healthy()) sync_clock();
    auto r = f(*core_);
    schedule_pump();
    return r;
  }
  // True when a read of consistency `c` may be served from the local state
  // machine right now without read(): follower reads on a healthy node, and
  // lease reads on a leader whose lease holds and that has applied
  // everything committed. Catches the clock up first (see the class comment).
  bool read_ready_now(Consistency c);

  const kv::StateMachine& state() const { return *sm_; }
  // The base for expiry: the replicated clock, on the leader its own clock if later.
  int64_t time_base_ms() const;
  bool healthy() const { return failure_.is_ok(); }
  const Status& failure() const { return failure_; }
  core::SoftState soft_state() const { return core_->soft_state(); }
  HostStatus status() const;
  // The term of the local log's entry at i (Engine::term_at).
  std::optional<Term> term_at(LogIndex i) const { return core_->term_at(i); }
  // For the simulator's checks and tests only.
  const E& engine() const { return *core_; }
  const storage::ReplicaStorage& storage() const { return *store_; }

 private:
  struct PendingWrite {
    uint64_t seq = 0;
    std::string data;
    WriteAckDone done;
    Instant created;
    Instant deadline;
    Instant next_try;       // when to offer it (again)
    bool proposed = false;  // an engine accepted or forwarded it at least once
    // Some offer was forwarded: a copy may sit in another node's log at a
    // position this host never learns, so no rollback of a copy it knows
    // makes the write a definite failure (review: a forwarded copy adopted
    // by the next primary committed after its client heard "rolled back").
    bool forwarded = false;
    // Where the last accepted offer sits in the local leader's log, so that
    // an outcome the engine reports for that entry (Ready::outcomes) finds
    // its client; zero when the last offer was forwarded.
    LogIndex index;
    Term term;
    // The first offer the local leader accepted (zero: none yet). Only an
    // outcome for it can make the write a definite failure: a rollback of
    // index i aborts every later uncommitted entry of that log too, while
    // a rollback of a later copy leaves this one free to commit.
    LogIndex first_index;
    Term first_term;
  };
  struct PendingRead {
    Consistency consistency = Consistency::kLinearizable;
    ReadDone done;
    Instant created;
    Instant deadline;
    Instant asked_at;
    std::optional<LogIndex> index;  // set once the barrier is confirmed
    bool asked = false;
  };
  using ReadyPtr = std::shared_ptr<ReadyT>;

  // Inputs and time.
  void sync_clock();
  void on_tick();
  void arm_tick();
  void maybe_publish_clock();
  void retry_and_expire();
  void try_propose(uint64_t client, PendingWrite& w);
  void try_read(uint64_t ctx, PendingRead& r);
  void complete_write(uint64_t client, Result<WriteAck> r);
  void complete_read(uint64_t ctx, Result<LogIndex> r);

  // The Ready loop.
  void schedule_pump();
  void pump();
  void on_soft_state(const core::SoftState& s, const std::string& why);
  void apply_early(ReadyT& rd);
  std::optional<std::string> durable_bytes(const ReadyT& rd) const;
  void persist(ReadyPtr rd);
  void on_persisted(const ReadyPtr& rd, const Status& st, Duration took);
  void note_read_states(const ReadyT& rd);
  void note_write_outcome(const core::Outcome& o);
  void apply(const std::vector<core::Entry>& committed);
  void serve_reads();
  void maybe_snapshot();
  void on_snapshot_written(core::SnapshotMeta meta, std::shared_ptr<const std::string> data,
                           Status st, bool image_ok, Duration built);
  void fail_stop(const Status& why);
  void info(const std::string& line) {
    if (metrics_ && metrics_->info) metrics_->info(line);
  }
  void error(const std::string& line) {
    if (metrics_ && metrics_->error) metrics_->error(line);
  }

  X& x_;
  HostOptions opts_;
  std::unique_ptr<E> core_;
  std::unique_ptr<storage::ReplicaStorage> store_;
  std::unique_ptr<kv::StateMachine> sm_;
  HostMetrics* metrics_;
  HostProbes probes_;

  bool started_ = false;
  bool stopped_ = false;
  bool persisting_ = false;
  bool pump_scheduled_ = false;
  bool snapshotting_ = false;
  // The engine asked for a snapshot now (Ready::snapshot_wanted); taken by
  // the next maybe_snapshot() that can.
  bool snapshot_wanted_ = false;
  Status failure_;

  // Ticks delivered to the engine since tick_origin_ (see sync_clock).
  Instant tick_origin_;
  uint64_t ticks_done_ = 0;
  uint64_t skipped_ticks_ = 0;

  DurableState synced_;  // the engine's durable state as last synced
  Term applied_term_;    // term of the entry at sm_->applied_index()
  // Invariant: every entry the state machine applied is at or below durable_.
  LogIndex durable_;
  LogIndex last_snapshot_;
  int64_t leader_clock_ms_ = 0;
  NodeId last_leader_;
  Term last_leader_term_;  // the term of last_leader_ (a re-elected leader is a new one)
  Term last_term_;

  // Committed entries waiting while a snapshot image is built (maybe_snapshot).
  std::vector<core::Entry> deferred_;

  std::unordered_map<uint64_t, PendingWrite> writes_;  // by client session id
  std::map<uint64_t, PendingRead> reads_;              // by read ctx
  uint64_t next_read_ctx_;
  // How often a leader's snapshot replaced the state machine. A read's
  // answer is posted, and its caller reads the state when it runs: shared
  // with those posted answers, which fail if a snapshot was installed in
  // between (complete_read()).
  std::shared_ptr<uint64_t> installs_ = std::make_shared<uint64_t>(0);
};

}  // namespace chorus::host

#include "host/replica_host_impl.h"  // IWYU pragma: export
