// The definitions of ReplicaHost's members (replica_host.h): a template, so
// they live in a header. Read replica_host.h first.
#pragma once

#include "host/replica_host.h"

namespace chorus::host {

// What a refusal calls the node that takes the request: the engine's own
// word (E::kServingRole) when it has one, else "primary".
template <class E>
constexpr std::string_view serving_role() {
  if constexpr (requires { E::kServingRole; }) {
    return E::kServingRole;
  } else {
    return "primary";
  }
}

// ---------------------------------------------------------------------------
// Recovery and lifetime

template <core::Engine E, class X>
requires Effects<X, typename E::Message> Status
ReplicaHost<E, X>::init(const EngineFactory& make_engine) {
  CHORUS_ASSERT_MSG(core_ == nullptr, "init() runs once");
  storage::Recovered rec = store_->take_recovered();
  for (const auto& note : rec.notes) error("recovery: " + note);
  LogIndex applied = sm_->applied_index();
  LogIndex snap_index;
  Term snap_term;
  if (rec.snapshot) {
    snap_index = rec.snapshot->meta.index;
    snap_term = rec.snapshot->meta.term;
    if (applied < snap_index) {
      // The state machine is behind the snapshot (new, or lost its tail):
      // load it. A durable state machine already past it keeps its state.
      CHORUS_RETURN_IF_ERROR(sm_->restore(*rec.snapshot->data));
      applied = sm_->applied_index();
      info(fmt::format("recovery: state machine restored from snapshot {}/{}", snap_index.value(),
                       snap_term.value()));
    }
  }
  const LogIndex last = rec.entries.empty() ? snap_index : rec.entries.back().index;
  if (applied > last) {
    return Status::corruption(
        fmt::format("the state machine has applied index {} but the log ends at {}: the log lost "
                    "entries the state machine holds",
                    applied.value(), last.value()));
  }
  // The term of the applied entry: the snapshot's when applied is its index,
  // else the log's. A durable state machine may be past the snapshot; its
  // next snapshot must carry the term of the entry it really ends at.
  if (applied == snap_index) {
    applied_term_ = snap_term;
  } else if (applied > snap_index) {
    // applied <= last was checked above, and the entries are contiguous
    // after the snapshot.
    const core::Entry& e = rec.entries[applied - rec.entries.front().index];
    CHORUS_ASSERT(e.index == applied);
    applied_term_ = e.term;
  } else {
    return Status::corruption(
        fmt::format("the state machine is at index {}, before the snapshot at {} it was restored "
                    "from",
                    applied.value(), snap_index.value()));
  }
  CHORUS_ASSIGN_OR_RETURN(synced_, E::decode_durable(rec.durable_state));
  last_snapshot_ = snap_index;
  durable_ = last;
  const size_t recovered_entries = rec.entries.size();
  core::PersistentState<DurableState> ps{synced_, std::move(rec.snapshot), std::move(rec.entries),
                                         applied};
  core_ = make_engine(std::move(ps));
  CHORUS_ASSERT(core_ != nullptr);
  // The applied entry's term as the engine reports committed entries, which
  // need not be the term it persisted (Multi-Paxos persists a slot's
  // accepted ballot and commits its origin ballot; found by the simulator:
  // a restarted Paxos node with a durable state machine named its applied
  // entry by the wrong term).
  if (applied > snap_index) applied_term_ = core_->term_at(applied).value_or(applied_term_);
  info(fmt::format("recovery: {} log entries after snapshot {}, state machine at {}/{}",
                   recovered_entries, snap_index.value(), applied.value(), applied_term_.value()));
  last_term_ = core_->soft_state().term;
  return Status::ok();
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::start() {
  CHORUS_ASSERT_MSG(core_ != nullptr, "ReplicaHost::init() must succeed before start()");
  started_ = true;
  tick_origin_ = x_.now();
  ticks_done_ = 0;
  arm_tick();
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::stop() {
  if (stopped_) return;
  stopped_ = true;
  x_.stop();
  for (auto it = writes_.begin(); it != writes_.end();) {
    const uint64_t client = it->first;
    const bool proposed = it->second.proposed;
    ++it;
    complete_write(client, proposed ? Status::indeterminate("server shutting down; the write "
                                                            "may or may not have been applied")
                                    : Status::unavailable("server shutting down"));
  }
  while (!reads_.empty())
    complete_read(reads_.begin()->first, Status::unavailable("shutting down"));
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message> int64_t ReplicaHost<E, X>::time_base_ms()
const {
  const int64_t replicated = sm_->now_ms();
  if (core_ && core_->soft_state().role == core::Role::kLeader)
    return std::max(replicated, x_.wall_ms());
  return replicated;
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message> HostStatus ReplicaHost<E, X>::status()
const {
  HostStatus s;
  s.engine = core_->status();
  s.applied_index = sm_->applied_index();
  s.applied_term = applied_term_;
  s.durable_index = durable_;
  s.pending_writes = writes_.size();
  s.pending_reads = reads_.size();
  s.skipped_ticks = skipped_ticks_;
  s.healthy = healthy();
  if (!healthy()) s.error = failure_.to_string();
  return s;
}

// ---------------------------------------------------------------------------
// Time

// Delivers the ticks that are due by the monotonic clock. Called before every
// input, so the engine never decides anything (a lease read, a vote) on a
// tick count that lags real time by more than one tick.
template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::sync_clock() {
  if (!started_ || stopped_ || !healthy()) return;
  const Instant now = x_.now();
  if (now <= tick_origin_) return;
  const uint64_t due = static_cast<uint64_t>((now - tick_origin_) / opts_.tick);
  if (due <= ticks_done_) return;
  uint64_t n = due - ticks_done_;
  if (n > opts_.max_catch_up_ticks) {
    skipped_ticks_ += n - opts_.max_catch_up_ticks;
    n = opts_.max_catch_up_ticks;
  }
  ticks_done_ = due;
  for (uint64_t i = 0; i < n; ++i) core_->tick();
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::arm_tick() {
  // Wake at the next tick boundary of the monotonic clock (not "one period
  // after this turn's work"): a slow turn does not stretch the period.
  const Instant next = tick_origin_ + opts_.tick * static_cast<int64_t>(ticks_done_ + 1);
  const Instant now = x_.now();
  x_.arm_timer(next > now ? Duration(next - now) : Duration(0), [this] { on_tick(); });
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::on_tick() {
  // A fail-stopped host ticks no more: nothing it could do matters, and its
  // tick count, frozen, would arm the timer in the past forever.
  if (stopped_ || !healthy()) return;
  sync_clock();
  maybe_publish_clock();
  retry_and_expire();
  pump();
  if (healthy()) arm_tick();
}

// The leader publishes its calendar clock now and then, so expiry advances on
// every replica at the same log position even when nobody writes.
template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::maybe_publish_clock() {
  if (!opts_.publish_leader_clock || core_->soft_state().role != core::Role::kLeader) return;
  const int64_t now = x_.wall_ms();
  if (now - leader_clock_ms_ < 100 || now <= sm_->now_ms() + 50) return;
  (void)core_->propose(kv::encode(kv::make_tick(now)));
  leader_clock_ms_ = now;
}

// ---------------------------------------------------------------------------
// Inputs

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::receive(Msg m) {
  if (stopped_ || !healthy() || m.to != core_->id()) return;
  sync_clock();
  core_->step(m);
  schedule_pump();
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::write(kvpb::Command cmd, WriteDone done) {
  CHORUS_ASSERT(done != nullptr);
  write_acked(std::move(cmd), [done = std::move(done)](Result<WriteAck> r) {
    if (r.is_ok()) {
      done(std::move(r->result));
    } else {
      done(r.status());
    }
  });
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::write_acked(kvpb::Command cmd, WriteAckDone done) {
  if (!healthy() || stopped_) {
    Status st = stopped_ ? Status::unavailable("server shutting down") : failure_;
    x_.post([done = std::move(done), st] { done(st); });
    return;
  }
  const uint64_t client = cmd.client_id();
  CHORUS_ASSERT_MSG(client != 0, "a write needs a client session");
  if (!writes_.contains(client) && writes_.size() >= opts_.max_pending_writes) {
    x_.post([done = std::move(done)] { done(Status::busy("too many pending writes")); });
    return;
  }
  sync_clock();
  if (core_->soft_state().role == core::Role::kLeader) cmd.set_now_ms(x_.wall_ms());
  auto it = writes_.find(client);
  if (it != writes_.end() && it->second.done) {
    // One write at a time per session; a new one supersedes a stale waiter,
    // whose fate is then unknown to its client.
    auto old = std::move(it->second.done);
    x_.post([old = std::move(old)] {
      old(Status::indeterminate("superseded by a newer request of the same session"));
    });
  }
  PendingWrite& w = writes_[client];
  w.seq = cmd.seq();
  w.data = kv::encode(cmd);
  w.done = std::move(done);
  w.created = x_.now();
  w.deadline = w.created + opts_.request_timeout;
  w.next_try = w.created;
  w.proposed = false;
  w.forwarded = false;
  w.index = w.first_index = LogIndex(0);
  w.term = w.first_term = Term(0);
  try_propose(client, w);
  schedule_pump();
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::read(Consistency c, ReadDone done) {
  if (!healthy() || stopped_) {
    Status st = stopped_ ? Status::unavailable("server shutting down") : failure_;
    x_.post([done = std::move(done), st] { done(st); });
    return;
  }
  if (c == Consistency::kFollower) {
    const LogIndex at = sm_->applied_index();
    x_.post([done = std::move(done), at] { done(at); });
    return;
  }
  if (reads_.size() >= opts_.max_pending_reads) {
    x_.post([done = std::move(done)] { done(Status::busy("too many pending reads")); });
    return;
  }
  sync_clock();
  const uint64_t ctx = next_read_ctx_++;
  PendingRead& r = reads_[ctx];
  r.consistency = c;
  r.done = std::move(done);
  r.created = x_.now();
  r.deadline = r.created + opts_.request_timeout;
  try_read(ctx, r);
  schedule_pump();
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
bool ReplicaHost<E, X>::read_ready_now(Consistency c) {
  if (stopped_ || !healthy()) return false;
  if (c == Consistency::kFollower) return true;
  if (c != Consistency::kLease) return false;
  sync_clock();
  const auto idx = core_->lease_read_index();
  return idx && sm_->applied_index() >= *idx;
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::try_propose(uint64_t client, PendingWrite& w) {
  const auto res = core_->propose(w.data);
  const Instant now = x_.now();
  switch (res.status) {
    case core::ProposeStatus::kAccepted:
    case core::ProposeStatus::kForwarded:
      w.proposed = true;
      w.forwarded = w.forwarded || res.status == core::ProposeStatus::kForwarded;
      w.index = res.status == core::ProposeStatus::kAccepted ? res.index : LogIndex(0);
      w.term = res.term;
      if (w.first_index == LogIndex(0) && w.index != LogIndex(0)) {
        w.first_index = w.index;
        w.first_term = w.term;
      }
      w.next_try = now + opts_.retry_interval;
      if (metrics_ && metrics_->proposals) metrics_->proposals(1);
      break;
    case core::ProposeStatus::kTooMuchUncommitted:
      // Refused now; but an earlier offer may still commit.
      complete_write(client, w.proposed
                                 ? Status::indeterminate(
                                       "too many uncommitted writes on a retry; the write may "
                                       "or may not have been applied")
                                 : Status::busy("too many uncommitted writes; retry later"));
      break;
    case core::ProposeStatus::kNotLeader:
      // An engine that does not forward (Paxos; a primary-backup backup
      // that cannot) names the node that takes writes: say so at once rather than wait for
      // no_leader_wait.
      if (res.leader != kNoNode && res.leader != core_->id() && !w.proposed) {
        complete_write(client, Status::unavailable(fmt::format(
                                   "this node is not the {}; node {} is: send writes there",
                                   serving_role<E>(), res.leader.value())));
        break;
      }
      [[fallthrough]];
    default:  // no leader known yet: try again next tick, until no_leader_wait
      w.next_try = now;
      if (!w.proposed && now - w.created >= opts_.no_leader_wait) {
        complete_write(client, Status::unavailable("no leader"));
      }
      break;
  }
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::try_read(uint64_t ctx, PendingRead& r) {
  const auto mode =
      r.consistency == Consistency::kLease ? core::ReadMode::kLease : core::ReadMode::kLinearizable;
  const auto res = core_->read_index(ctx, mode);
  const Instant now = x_.now();
  if (res.status == core::ProposeStatus::kAccepted ||
      res.status == core::ProposeStatus::kForwarded) {
    r.asked = true;
    r.asked_at = now;
    return;
  }
  r.asked = false;
  if (res.status == core::ProposeStatus::kTooMuchUncommitted) {
    complete_read(ctx, Status::busy("too many pending reads on the leader"));
  } else if (res.status == core::ProposeStatus::kNotLeader && res.leader != kNoNode &&
             res.leader != core_->id()) {
    complete_read(ctx, Status::unavailable(fmt::format(
                           "this node is not the {}; node {} is: send reads there, or read "
                           "here with CHORUS.CONSISTENCY follower",
                           serving_role<E>(), res.leader.value())));
  } else if (now - r.created >= opts_.no_leader_wait) {
    complete_read(ctx, Status::unavailable("no leader"));
  }
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::retry_and_expire() {
  const Instant now = x_.now();
  for (auto it = writes_.begin(); it != writes_.end();) {
    PendingWrite& w = it->second;
    const uint64_t client = it->first;
    ++it;
    if (!w.done) continue;
    if (now >= w.deadline) {
      complete_write(
          client, w.proposed ? Status::indeterminate("request timed out; the write may or may not "
                                                     "have been applied")
                             : Status::unavailable("no leader within the timeout"));
    } else if (now >= w.next_try) {
      try_propose(client, w);
    }
  }
  for (auto it = reads_.begin(); it != reads_.end();) {
    const uint64_t ctx = it->first;
    PendingRead& r = it->second;
    ++it;
    if (now >= r.deadline) {
      complete_read(ctx, Status::unavailable("read timed out"));
    } else if (!r.index && (!r.asked || now - r.asked_at >= opts_.retry_interval)) {
      // Not asked, dropped, or asked so long ago that the request or its
      // answer was lost (a forwarded read whose leader died): ask again.
      // A late answer to an earlier ask is as good: any confirmed index
      // taken after the read began serves it.
      try_read(ctx, r);
    }
  }
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::complete_write(uint64_t client, Result<WriteAck> r) {
  auto it = writes_.find(client);
  if (it == writes_.end()) return;
  auto done = std::move(it->second.done);
  writes_.erase(it);
  if (done) x_.post([done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::complete_read(uint64_t ctx, Result<LogIndex> r) {
  auto it = reads_.find(ctx);
  if (it == reads_.end()) return;
  auto done = std::move(it->second.done);
  reads_.erase(it);
  if (!done) return;
  // The caller reads the state machine when this posted answer runs, not
  // now: the Ready handled in between (on_persisted() pumps the next one at
  // once; a backup persists it inline) may install a leader's snapshot
  // before the answer runs. A deposed primary's successor may send one older
  // than the read's index (a lossy failover dropped what this node had
  // committed): the state the caller would read misses writes acknowledged
  // before the read began (simulator, semi-sync seed 52: a read served at
  // 964 read the successor's state at 870). Such a read fails instead; the
  // client retries.
  x_.post([done = std::move(done), r = std::move(r), installs = installs_,
           seen = *installs_]() mutable {
    if (r.is_ok() && *installs != seen) {
      r = Status::unavailable(
          "a snapshot from the leader replaced this node's state before the read was answered; "
          "retry");
    }
    done(std::move(r));
  });
}

// ---------------------------------------------------------------------------
// The Ready loop

// Runs pump() once, after the handlers already queued: every input of this
// loop turn (client commands, peer messages) joins one Ready.
template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::schedule_pump() {
  if (pump_scheduled_) return;
  pump_scheduled_ = true;
  x_.post([this] {
    pump_scheduled_ = false;
    pump();
  });
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::pump() {
  if (stopped_ || !healthy()) return;
  if (persisting_) {
    // What need not wait for the fsync in flight leaves now: heartbeats keep
    // flowing while a long persist holds the storage executor, and the
    // leader's new appends reach followers during its own fsync.
    if (core_->has_messages()) {
      for (auto& m : core_->take_messages()) x_.send(std::move(m));
    }
    return;
  }
  if (!core_->has_ready()) return;
  auto rd = std::make_shared<ReadyT>(core_->ready());
  if (rd->soft_state) on_soft_state(*rd->soft_state, rd->soft_state_reason);
  for (auto& m : rd->messages) x_.send(std::move(m));
  rd->messages.clear();
  // Entries this Ready replaces are not durable any more (defect found in
  // review: applying from the old durable_ let a follower apply rewritten
  // entries before they, or the truncation, were durable).
  if (rd->snapshot) {
    durable_ = LogIndex(0);
    // Committed entries waiting for a local snapshot image are all at or
    // below the commit index, hence below the leader's snapshot: it holds
    // them. Applying them after it, or before it is durable, would be wrong.
    deferred_.clear();
  }
  if (!rd->entries.empty()) durable_ = std::min(durable_, rd->entries.front().index.prev());
  apply_early(*rd);
  if (!healthy()) return;
  note_read_states(*rd);
  rd->reads.clear();
  rd->outcomes.clear();
  serve_reads();
  persist(std::move(rd));
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::on_soft_state(const core::SoftState& s, const std::string& why) {
  const std::string_view role_name = core_->status().role_name;
  if (metrics_ && metrics_->role_change) metrics_->role_change(s, role_name, why);
  if (s.role == core::Role::kCandidate && s.term > last_term_ && metrics_ && metrics_->elections)
    metrics_->elections();
  if (s.role == core::Role::kLeader && metrics_ && metrics_->leader_changes)
    metrics_->leader_changes();
  last_term_ = std::max(last_term_, s.term);
  if (s.leader == kNoNode || (s.leader == last_leader_ && s.term == last_leader_term_)) return;
  // A new leader (or the same node leading a new term): writes forwarded to
  // the old one may be lost, and read barriers asked of it may never be
  // answered; offer them again now rather than after retry_interval (the
  // state machine's sessions make a duplicate write apply once; a duplicate
  // barrier answer is ignored).
  last_leader_ = s.leader;
  last_leader_term_ = s.term;
  const Instant now = x_.now();
  for (auto& [client, w] : writes_) {
    if (w.done) w.next_try = now;
  }
  for (auto& [ctx, r] : reads_) {
    if (!r.index) r.asked = false;
  }
  x_.post([this] {
    if (!stopped_ && healthy()) {
      retry_and_expire();
      pump();
    }
  });
}

// Ready step 4: committed entries already durable here (always so on the
// leader, which counts itself only once durable) are applied now, in
// parallel with persisting this Ready; a client's reply need not wait for
// the next fdatasync. Entries that arrive in this very Ready wait for it.
template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::apply_early(ReadyT& rd) {
  size_t early = 0;
  while (early < rd.committed.size() && rd.committed[early].index <= durable_) ++early;
  if (early == 0) return;
  const auto cut = rd.committed.begin() + static_cast<std::ptrdiff_t>(early);
  std::vector<core::Entry> now(std::make_move_iterator(rd.committed.begin()),
                               std::make_move_iterator(cut));
  rd.committed.erase(rd.committed.begin(), cut);
  apply(now);
}

// The engine's durable state bytes to write with this Ready: only when the
// engine says the change needs an fsync.
template <core::Engine E, class X>
requires Effects<X, typename E::Message> std::optional<std::string>
ReplicaHost<E, X>::durable_bytes(const ReadyT& rd)
const {
  if (!rd.durable_state || !E::durable_needs_sync(synced_, *rd.durable_state)) return std::nullopt;
  return E::encode_durable(*rd.durable_state);
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::persist(ReadyPtr rd) {
  auto bytes = std::make_shared<std::optional<std::string>>(durable_bytes(*rd));
  if (!rd->snapshot && rd->entries.empty() && !*bytes) {
    on_persisted(rd, Status::ok(), Duration(0));
    return;
  }
  persisting_ = true;
  if (metrics_ && metrics_->append_batch && !rd->entries.empty())
    metrics_->append_batch(rd->entries.size());
  auto took = std::make_shared<Duration>();
  DiskJob job = [this, rd, bytes, took] {
    const Instant t0 = x_.now();
    Status st = store_->persist(rd->snapshot, rd->entries, *bytes);
    *took = x_.now() - t0;
    return st;
  };
  DiskDone done = [this, rd, took](Status st) { on_persisted(rd, st, *took); };
  if (opts_.followers_persist_inline && !snapshotting_ &&
      core_->soft_state().role != core::Role::kLeader) {
    // The storage executor is idle here (no persist in flight, no snapshot
    // being written), so the store may be used from the loop.
    x_.run_blocking(std::move(job), std::move(done));
  } else {
    x_.run_on_storage(std::move(job), std::move(done));
  }
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::on_persisted(const ReadyPtr& rd, const Status& st, Duration took) {
  persisting_ = false;
  if (stopped_) return;
  if (!st.is_ok()) {
    fail_stop(st);
    return;
  }
  if (metrics_ && metrics_->fsync_latency && took.count() > 0)
    metrics_->fsync_latency(std::chrono::duration<double>(took).count());
  // Drops are reported once the truncation that makes them is durable: a
  // crash before it keeps the entries, which may then commit (found by the
  // simulator, sync-all seed 412: a backup reported a rollback, crashed
  // before persisting the marker, and was promoted with the entries).
  if (metrics_ && metrics_->dropped) {
    for (const auto& d : rd->dropped) metrics_->dropped(d);
  }
  if (rd->durable_state && E::durable_needs_sync(synced_, *rd->durable_state))
    synced_ = *rd->durable_state;
  if (rd->snapshot) {
    ++*installs_;  // before the restore: a failed one leaves no state to read either
    Status rs = sm_->restore(*rd->snapshot->data);
    if (!rs.is_ok()) {
      fail_stop(Status::corruption("snapshot from the leader does not load: " + rs.to_string()));
      return;
    }
    applied_term_ = rd->snapshot->meta.term;
    last_snapshot_ = rd->snapshot->meta.index;
    durable_ = rd->snapshot->meta.index;
    info(fmt::format("installed snapshot {}/{} from the leader", last_snapshot_.value(),
                     applied_term_.value()));
    if (metrics_ && metrics_->snapshot) metrics_->snapshot(rd->snapshot->meta, true);
  }
  if (!rd->entries.empty()) {
    durable_ = rd->entries.back().index;
    if (probes_.entries_durable) probes_.entries_durable(rd->entries);
  }
  for (auto& m : rd->messages_after_persist) x_.send(std::move(m));
  apply(rd->committed);
  if (!healthy()) return;
  note_read_states(*rd);
  serve_reads();
  core_->advance(*rd);
  if (rd->snapshot_wanted) snapshot_wanted_ = true;  // Ready contract, step 6
  maybe_snapshot();
  pump();
}

// Read barriers the engine confirmed get their index; barriers it dropped (a
// deposed leader) are asked again at the next retry.
template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::note_read_states(const ReadyT& rd) {
  for (const auto& rs : rd.reads) {
    auto it = reads_.find(rs.ctx);
    if (it != reads_.end() && !it->second.index) it->second.index = rs.index;
  }
  for (const auto& o : rd.outcomes) {
    if (o.index != LogIndex(0)) {
      note_write_outcome(o);
      continue;
    }
    auto it = reads_.find(o.id);
    if (it != reads_.end() && !it->second.index) it->second.asked = false;
  }
}

// An outcome for the entry a waiting write's first or last offer created.
// Writes whose offers are elsewhere are left alone: those offers decide them.
// kRolledBack is a definite failure only for the first copy (see
// PendingWrite::first_index) of a write never forwarded and not offered
// again since; otherwise another copy may still commit: a rollback of the
// first copy is then indeterminate, of a later one it is ignored.
template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::note_write_outcome(const core::Outcome& o) {
  for (auto& [client, w] : writes_) {
    if (!w.done) continue;
    const bool first = w.first_index == o.index && w.first_term == o.term;
    const bool last = w.index == o.index && w.term == o.term;
    if (!first && !last) continue;
    if (!first && o.status == core::ProposeStatus::kRolledBack) return;
    switch (o.status) {
      case core::ProposeStatus::kRolledBack:
        if (!last || w.forwarded) {
          // A later copy (a retry) may have been appended after the rollback
          // marker, while the rollback waited to become irrevocable, or an
          // earlier one forwarded to another primary: it is free to commit.
          // (Found by the simulator, sync-all seeds 25 and 64: a write
          // answered "rolled back" was applied.)
          complete_write(client, Status::indeterminate("an earlier copy of the write was rolled "
                                                       "back; a retry may still be applied"));
          break;
        }
        // Certainly not applied anywhere: a definite failure (-TRYAGAIN).
        complete_write(client, Status::unavailable("the write was rolled back: a replica did not "
                                                   "prepare it in time; nothing was applied"));
        break;
      case core::ProposeStatus::kAckTimedOut:
        complete_write(client, Status::indeterminate("too few replicas acknowledged the write in "
                                                     "time; it may or may not be applied"));
        break;
      default:
        // kDropped: the engine lost sight of this copy (its leader stepped
        // down): it may still commit, or be replaced.
        // Not offered again here: the engines report a dropped copy per
        // position (Ready::dropped, e.g. "rolled back" for a primary's own
        // uncommitted entry), and a re-offered copy that commits would make
        // such a report misdescribe the write (the simulator, semi-sync
        // seed 178).
        complete_write(client, Status::indeterminate("the leader abandoned the write; it may or "
                                                     "may not have been applied"));
        break;
    }
    return;
  }
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::apply(const std::vector<core::Entry>& committed) {
  if (committed.empty()) return;
  if (snapshotting_) {  // the storage executor is reading the state machine
    deferred_.insert(deferred_.end(), committed.begin(), committed.end());
    return;
  }
  std::vector<kv::StateMachine::Entry> batch;
  batch.reserve(committed.size());
  for (const auto& e : committed) {
    CHORUS_ASSERT_MSG(e.index <= durable_, "an entry is applied before it is durable here");
    if (probes_.before_apply) probes_.before_apply(e);
    batch.push_back(kv::StateMachine::Entry{e.index, e.data, e.type != core::EntryType::kNormal});
  }
  auto results = sm_->apply_batch(batch);
  if (!results.is_ok()) {
    fail_stop(results.status());
    return;
  }
  applied_term_ = committed.back().term;
  if (metrics_ && metrics_->commits) metrics_->commits(committed.size());
  if (writes_.empty()) return;
  for (size_t i = 0; i < committed.size(); ++i) {
    if (committed[i].type != core::EntryType::kNormal) continue;
    kvpb::Command cmd;
    if (!cmd.ParseFromString(committed[i].data) || cmd.client_id() == 0) continue;
    auto it = writes_.find(cmd.client_id());
    if (it == writes_.end() || it->second.seq != cmd.seq()) continue;
    if (probes_.write_acknowledged) probes_.write_acknowledged(committed[i]);
    complete_write(cmd.client_id(), WriteAck{(*results)[i], committed[i].index, committed[i].term});
  }
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::serve_reads() {
  const LogIndex applied = sm_->applied_index();
  for (auto it = reads_.begin(); it != reads_.end();) {
    const uint64_t ctx = it->first;
    const std::optional<LogIndex> index = it->second.index;
    ++it;
    if (index && *index <= applied) complete_read(ctx, *index);
  }
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::maybe_snapshot() {
  const LogIndex applied = sm_->applied_index();
  if (snapshotting_) return;  // a wanted snapshot waits for this one to finish
  if (applied <= last_snapshot_) {
    snapshot_wanted_ = false;  // the engine holds the newest we could take
    return;
  }
  if (!snapshot_wanted_ && applied - last_snapshot_ < opts_.snapshot_every_entries) return;
  snapshot_wanted_ = false;
  // The image is built on the storage executor, not here: serializing a large
  // state takes long enough (~100 ms for 100k keys of 256 B on 2 busy cores)
  // to starve heartbeats and start elections. Meanwhile the loop applies
  // nothing (committed entries wait in deferred_), so the state machine holds
  // still under the executor's reads.
  snapshotting_ = true;
  const core::SnapshotMeta meta{applied, applied_term_};
  struct Job {
    std::shared_ptr<const std::string> data;
    bool image_ok = false;
    Duration built{};
  };
  auto job = std::make_shared<Job>();
  x_.run_on_storage(
      [this, meta, job]() -> Status {
        const Instant t0 = x_.now();
        auto image = sm_->snapshot();
        job->built = x_.now() - t0;
        job->image_ok = image.is_ok();
        if (!job->image_ok) return image.status();
        job->data = std::make_shared<const std::string>(std::move(image).value());
        // (The log is kept back to the previous snapshot, and a state machine
        // behind a snapshot is restored from it, so this needs no sm sync.)
        return store_->save_snapshot(meta, *job->data);
      },
      [this, meta, job](Status st) {
        on_snapshot_written(meta, job->data, std::move(st), job->image_ok, job->built);
      });
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::on_snapshot_written(core::SnapshotMeta meta,
                                            std::shared_ptr<const std::string> data, Status st,
                                            bool image_ok, Duration built) {
  snapshotting_ = false;
  if (stopped_) return;
  if (!image_ok) {
    // Reading the state failed (RocksDB): no snapshot this time; the log
    // keeps growing until the next try.
    error("snapshot of the state machine failed: " + st.to_string());
  } else if (!st.is_ok()) {
    fail_stop(st);
    return;
  } else {
    CHORUS_ASSERT_MSG(sm_->applied_index() == meta.index,
                      "the state machine moved while its snapshot image was built");
    last_snapshot_ = meta.index;
    core_->compact(core::SnapshotRef{meta, data});
    if (metrics_ && metrics_->snapshot) metrics_->snapshot(meta, false);
    info(fmt::format("snapshot taken through {}/{} ({} bytes; image built in {} ms)",
                     meta.index.value(), meta.term.value(), data->size(),
                     std::chrono::duration_cast<std::chrono::milliseconds>(built).count()));
  }
  std::vector<core::Entry> waiting;
  waiting.swap(deferred_);
  apply(waiting);
  if (!healthy()) return;
  serve_reads();
  schedule_pump();
}

template <core::Engine E, class X>
requires Effects<X, typename E::Message>
void ReplicaHost<E, X>::fail_stop(const Status& why) {
  if (!failure_.is_ok()) return;
  failure_ = why;
  error("fail-stop: " + why.to_string() + " — this node stops taking part until restarted");
  for (auto it = writes_.begin(); it != writes_.end();) {
    const uint64_t client = it->first;
    const bool proposed = it->second.proposed;
    ++it;
    // A write already handed to the engine may commit through the others.
    complete_write(client, proposed ? Status::indeterminate("node failed (" + why.to_string() +
                                                            "); the write may or may not have "
                                                            "been applied")
                                    : why);
  }
  while (!reads_.empty()) complete_read(reads_.begin()->first, why);
}

}  // namespace chorus::host
