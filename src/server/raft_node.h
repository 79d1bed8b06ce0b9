// RaftNode: the driver that runs the pure Raft core in the real server.
//
// It is the production twin of the simulator's host (src/sim/cluster.h) and
// honours the same Ready contract, with real effects:
//
//   event loop (one thread, Asio)            storage thread (one, FIFO)
//   ----------------------------------       -----------------------------
//   step / tick / propose / read_index
//   ready():  send `messages` at once  ───►  persist(snapshot, entries, hard state)
//             apply what is committed and
//             already durable here
//             (the leader's appends go           one fdatasync per Ready (group
//              out in parallel with its          commit: every proposal that
//              own fsync, thesis §10.2.1)        arrived meanwhile rides along)
//   on_persisted  ◄──────────────────────────
//     send `messages_after_persist`
//     apply `committed` in order, answer the clients waiting on them
//     serve reads whose index is applied
//     advance(); maybe take a snapshot (written on the storage thread)
//
// A follower (or candidate) persists on the event loop itself instead: it has
// nothing to do meanwhile, and the hand-offs cost more than they save.
//
// While a Ready is being persisted the loop keeps stepping messages and
// accepting proposals; they form the next Ready. Messages that need no fsync
// (heartbeats and their responses in a durable term, the leader's new
// appends) leave meanwhile (Raft::take_messages), so a long persist — a
// snapshot being written — never silences the node. Inputs do not pump at
// once: one pump per loop turn gathers every input of that turn.
//
// Snapshots: the image is built and written on the storage thread; the loop
// applies nothing meanwhile (committed entries wait in deferred_), so the state
// machine holds still under the storage thread's reads.
//
// Clients: a write is a kvpb::Command carrying the client's session id and
// sequence number; it completes when this node applies that (session, seq),
// whichever node's log it entered through (followers forward to the leader).
// A write not applied within retry_interval is proposed again; the state
// machine's sessions make the retry apply at most once. With no leader, a
// request waits up to no_leader_wait and then fails with "no leader".
// Reads wait for a ReadIndex (or lease) confirmation and for the local state
// machine to reach that index; follower reads are served at once.
//
// Fail-stop: if persisting fails (a failed fsync), the node stops taking
// part: no more Readies are processed, every waiting client gets an error,
// and healthy() turns false with the reason. It never retries an fsync.
//
// Threading: every public method must be called on the event loop thread,
// except the constructor. Completion callbacks run on the event loop thread.
#pragma once

#include <asio.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "chorus/kv.pb.h"
#include "core/raft/raft.h"
#include "storage/kv/state_machine.h"
#include "storage/replica/replica_storage.h"

namespace chorus::server {

struct RaftNodeOptions {
  raft::Config raft;
  std::chrono::milliseconds tick{10};
  std::chrono::milliseconds retry_interval{400};   // re-propose a write not yet applied
  std::chrono::milliseconds no_leader_wait{2000};  // then "no leader"
  std::chrono::milliseconds request_timeout{5000};
  uint64_t snapshot_every_entries = 100000;
  size_t max_pending_requests = 100000;
};

enum class ReadConsistency { kLinearizable, kLease, kFollower };

// What the node reports as it works; the server binds these to its metrics
// registry (a null hook is skipped).
struct NodeMetrics {
  std::function<void(double seconds)> fsync_latency;
  std::function<void(size_t entries)> append_batch;
  std::function<void(uint64_t n)> proposals;
  std::function<void(uint64_t n)> commits;  // entries applied
  std::function<void()> elections;          // this node became a candidate
  std::function<void()> leader_changes;
};

class RaftNode {
 public:
  using WriteDone = std::function<void(Result<kvpb::Result>)>;
  using ReadDone = std::function<void(Status)>;  // OK: the state machine may serve the read now
  using Sender = std::function<void(raft::Message)>;

  // `recovered` is what ReplicaStorage::open found; the state machine is
  // already open (a durable one may be ahead of the snapshot).
  RaftNode(asio::io_context& io, RaftNodeOptions opts, Prng prng,
           std::unique_ptr<storage::ReplicaStorage> store, storage::Recovered recovered,
           std::unique_ptr<kv::StateMachine> sm, Sender send, NodeMetrics* metrics = nullptr);
  ~RaftNode();
  RaftNode(const RaftNode&) = delete;
  RaftNode& operator=(const RaftNode&) = delete;

  // Recovery may need to restore the state machine from the snapshot; call
  // once before start(). Fails when the snapshot does not load.
  Status init();
  void start();
  void stop();

  // A message from a peer.
  void receive(raft::Message m);

  // A client write. cmd.client_id and cmd.seq identify it (exactly once).
  void write(kvpb::Command cmd, WriteDone done);
  // A read barrier: done(OK) once the local state machine may serve the read.
  void read(ReadConsistency c, ReadDone done);
  // True when a read of consistency `c` may be served from the local state
  // machine right now, without read(): follower reads on a healthy node, and
  // lease reads on a leader whose lease holds and that has applied everything
  // committed. The caller then reads at once; else it calls read().
  bool read_ready_now(ReadConsistency c) const;

  const kv::StateMachine& state() const { return *sm_; }
  // The time base for expiry: the replicated clock, and on the leader its own clock if later.
  int64_t time_base_ms() const;
  bool healthy() const { return failure_.is_ok(); }
  const Status& failure() const { return failure_; }
  core::SoftState soft_state() const { return core_->soft_state(); }
  const raft::Raft& core() const { return *core_; }
  // The /status and CHORUS.STATUS document.
  std::string status_json() const;

 private:
  struct PendingWrite {
    uint64_t seq = 0;
    std::string data;
    WriteDone done;
    std::chrono::steady_clock::time_point deadline;
    std::chrono::steady_clock::time_point next_try;  // when to (re)propose
    bool proposed = false;
  };
  struct PendingRead {
    ReadConsistency consistency;
    ReadDone done;
    std::chrono::steady_clock::time_point deadline;
    std::optional<LogIndex> index;  // set once confirmed
    bool asked = false;
  };
  using ReadyPtr = std::shared_ptr<core::Ready<raft::Message>>;

  void on_tick();
  void pump();
  // Runs pump() once, after the handlers already queued on the loop: every
  // input of this turn (client commands, peer messages) joins one Ready.
  void schedule_pump();
  void on_persisted(ReadyPtr rd, Status st, std::chrono::nanoseconds took);
  void apply(const std::vector<core::Entry>& committed);
  void serve_reads();
  void retry_and_expire();
  void try_propose(uint64_t client, PendingWrite& w);
  void try_read(uint64_t ctx, PendingRead& r);
  void maybe_snapshot();
  void fail_stop(const Status& why);
  void complete_write(uint64_t client, Result<kvpb::Result> r);
  void run_on_storage_thread(std::function<void()> job);
  void storage_thread_main();
  void log_soft_state(const core::SoftState& s);

  asio::io_context& io_;
  RaftNodeOptions opts_;
  asio::steady_timer ticker_;
  std::unique_ptr<raft::Raft> core_;
  std::unique_ptr<storage::ReplicaStorage> store_;
  storage::Recovered recovered_;
  std::unique_ptr<kv::StateMachine> sm_;
  Sender send_;
  NodeMetrics* metrics_;

  uint64_t prng_seed_ = 0;
  bool persisting_ = false;
  bool pump_scheduled_ = false;
  bool snapshotting_ = false;
  bool stopped_ = false;
  Status failure_;
  Term applied_term_;
  LogIndex durable_;  // the local log is durable through here
  LogIndex last_snapshot_;
  int64_t leader_clock_ms_ = 0;
  NodeId last_leader_;

  // Committed entries not yet applied because a snapshot image is being
  // built from the state machine on the storage thread (see maybe_snapshot).
  std::vector<core::Entry> deferred_;

  std::unordered_map<uint64_t, PendingWrite> writes_;  // by client session id
  std::map<uint64_t, PendingRead> reads_;              // by read ctx
  uint64_t next_read_ctx_ = 1;

  // The storage thread and its FIFO queue.
  std::thread storage_thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool storage_stop_ = false;
};

}  // namespace chorus::server
