#include "server/raft_node.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <chrono>

namespace chorus::server {

using Clock = std::chrono::steady_clock;

namespace {
int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

RaftNode::RaftNode(asio::io_context& io, RaftNodeOptions opts, Prng prng,
                   std::unique_ptr<storage::ReplicaStorage> store, storage::Recovered recovered,
                   std::unique_ptr<kv::StateMachine> sm, Sender send, NodeMetrics* metrics)
    : io_(io),
      opts_(std::move(opts)),
      ticker_(io),
      store_(std::move(store)),
      recovered_(std::move(recovered)),
      sm_(std::move(sm)),
      send_(std::move(send)),
      metrics_(metrics) {
  prng_seed_ = prng.next_u64();
  storage_thread_ = std::thread([this] { storage_thread_main(); });
}

RaftNode::~RaftNode() {
  stop();
  {
    std::lock_guard<std::mutex> lk(mu_);
    storage_stop_ = true;
  }
  cv_.notify_all();
  if (storage_thread_.joinable()) storage_thread_.join();
}

Status RaftNode::init() {
  LogIndex applied = sm_->applied_index();
  if (recovered_.snapshot) {
    const auto& snap = *recovered_.snapshot;
    if (applied < snap.meta.index) {
      // The state machine is behind the snapshot (new, or lost its tail):
      // load the snapshot. A durable state machine already past it keeps its state.
      CHORUS_RETURN_IF_ERROR(sm_->restore(*snap.data));
      applied = sm_->applied_index();
      spdlog::info("recovery: state machine restored from snapshot {}/{}", snap.meta.index.value(),
                   snap.meta.term.value());
    }
    last_snapshot_ = snap.meta.index;
    applied_term_ = snap.meta.term;
  }
  const LogIndex last = recovered_.entries.empty()
                            ? (recovered_.snapshot ? recovered_.snapshot->meta.index : LogIndex(0))
                            : recovered_.entries.back().index;
  if (applied > last) {
    return Status::corruption(
        fmt::format("the state machine has applied index {} but the log ends at {}: the log lost "
                    "entries the state machine "
                    "holds",
                    applied.value(), last.value()));
  }
  for (const auto& note : recovered_.notes) spdlog::warn("recovery: {}", note);
  spdlog::info("recovery: term {}, vote {}, commit {}, {} log entries, state machine at {}",
               recovered_.hard_state.term.value(), recovered_.hard_state.voted_for.value(),
               recovered_.hard_state.commit.value(), recovered_.entries.size(), applied.value());
  core::PersistentState ps{recovered_.hard_state, recovered_.snapshot,
                           std::move(recovered_.entries), applied};
  core_ = std::make_unique<raft::Raft>(opts_.raft, Prng(prng_seed_), std::move(ps));
  recovered_ = {};
  return Status::ok();
}

void RaftNode::start() {
  CHORUS_ASSERT_MSG(core_ != nullptr, "RaftNode::init() must succeed before start()");
  ticker_.expires_after(opts_.tick);
  ticker_.async_wait([this](std::error_code ec) {
    if (!ec) on_tick();
  });
}

void RaftNode::stop() {
  if (stopped_) return;
  stopped_ = true;
  ticker_.cancel();
  for (auto& [id, w] : writes_) {
    if (w.done)
      asio::post(io_, [d = std::move(w.done)] { d(Status::aborted("server shutting down")); });
  }
  writes_.clear();
  for (auto& [ctx, r] : reads_) {
    if (r.done)
      asio::post(io_, [d = std::move(r.done)] { d(Status::aborted("server shutting down")); });
  }
  reads_.clear();
}

int64_t RaftNode::time_base_ms() const {
  const int64_t replicated = sm_->now_ms();
  if (core_ && core_->role() == core::Role::kLeader) return std::max(replicated, wall_clock_ms());
  return replicated;
}

// ---------------------------------------------------------------------------
// Inputs

void RaftNode::on_tick() {
  if (stopped_) return;
  if (healthy()) {
    core_->tick();
    // The leader publishes its clock now and then, so expiry advances on
    // every replica at the same log position even when nobody writes.
    if (core_->role() == core::Role::kLeader) {
      const int64_t now = wall_clock_ms();
      if (now - leader_clock_ms_ >= 100 && now > sm_->now_ms() + 50) {
        kvpb::Command tick;
        tick.set_now_ms(now);
        tick.mutable_tick();
        (void)core_->propose(kv::encode(tick));
        leader_clock_ms_ = now;
      }
    }
    retry_and_expire();
    pump();
  }
  ticker_.expires_after(opts_.tick);
  ticker_.async_wait([this](std::error_code ec) {
    if (!ec) on_tick();
  });
}

void RaftNode::receive(raft::Message m) {
  if (stopped_ || !healthy() || m.to != core_->id()) return;
  core_->step(m);
  schedule_pump();
}

void RaftNode::write(kvpb::Command cmd, WriteDone done) {
  if (!healthy()) {
    asio::post(io_, [done = std::move(done), f = failure_] { done(f); });
    return;
  }
  if (writes_.size() >= opts_.max_pending_requests) {
    asio::post(io_, [done = std::move(done)] { done(Status::busy("too many pending requests")); });
    return;
  }
  const uint64_t client = cmd.client_id();
  CHORUS_ASSERT_MSG(client != 0, "a write needs a client session");
  if (core_->role() == core::Role::kLeader) cmd.set_now_ms(wall_clock_ms());
  auto it = writes_.find(client);
  if (it != writes_.end() && it->second.done) {
    // One write at a time per session; a new one supersedes a stale waiter.
    auto old = std::move(it->second.done);
    asio::post(io_,
               [old = std::move(old)] { old(Status::aborted("superseded by a newer request")); });
  }
  PendingWrite& w = writes_[client];
  w.seq = cmd.seq();
  w.data = kv::encode(cmd);
  w.done = std::move(done);
  const auto now = Clock::now();
  w.deadline = now + opts_.request_timeout;
  w.next_try = now;
  w.proposed = false;
  try_propose(client, w);
  schedule_pump();
}

void RaftNode::read(ReadConsistency c, ReadDone done) {
  if (!healthy()) {
    asio::post(io_, [done = std::move(done), f = failure_] { done(f); });
    return;
  }
  if (c == ReadConsistency::kFollower) {
    asio::post(io_, [done = std::move(done)] { done(Status::ok()); });
    return;
  }
  if (reads_.size() >= opts_.max_pending_requests) {
    asio::post(io_, [done = std::move(done)] { done(Status::busy("too many pending requests")); });
    return;
  }
  const uint64_t ctx = next_read_ctx_++;
  PendingRead& r = reads_[ctx];
  r.consistency = c;
  r.done = std::move(done);
  r.deadline = Clock::now() + opts_.request_timeout;
  try_read(ctx, r);
  schedule_pump();
}

bool RaftNode::read_ready_now(ReadConsistency c) const {
  if (stopped_ || !healthy()) return false;
  if (c == ReadConsistency::kFollower) return true;
  if (c != ReadConsistency::kLease) return false;
  const auto idx = core_->lease_read_index();
  return idx && sm_->applied_index() >= *idx;
}

void RaftNode::try_propose(uint64_t client, PendingWrite& w) {
  const auto res = core_->propose(w.data);
  const auto now = Clock::now();
  switch (res.status) {
    case core::ProposeStatus::kAccepted:
    case core::ProposeStatus::kForwarded:
      w.proposed = true;
      w.next_try = now + opts_.retry_interval;
      if (metrics_ && metrics_->proposals) metrics_->proposals(1);
      break;
    case core::ProposeStatus::kTooMuchUncommitted:
      complete_write(client, Status::busy("too many uncommitted writes; retry later"));
      break;
    default:  // no leader known yet: try again next tick, until no_leader_wait
      w.next_try = now;
      if (!w.proposed && now - (w.deadline - opts_.request_timeout) >= opts_.no_leader_wait) {
        complete_write(client, Status::unavailable("no leader"));
      }
      break;
  }
}

void RaftNode::try_read(uint64_t ctx, PendingRead& r) {
  const auto mode = r.consistency == ReadConsistency::kLease ? raft::Raft::ReadMode::kLease
                                                             : raft::Raft::ReadMode::kReadIndex;
  const auto res = core_->read_index(ctx, mode);
  if (res.status == core::ProposeStatus::kAccepted ||
      res.status == core::ProposeStatus::kForwarded) {
    r.asked = true;
    return;
  }
  r.asked = false;
  if (Clock::now() - (r.deadline - opts_.request_timeout) >= opts_.no_leader_wait) {
    auto done = std::move(r.done);
    reads_.erase(ctx);
    asio::post(io_, [done = std::move(done)] { done(Status::unavailable("no leader")); });
  }
}

void RaftNode::retry_and_expire() {
  const auto now = Clock::now();
  for (auto it = writes_.begin(); it != writes_.end();) {
    PendingWrite& w = it->second;
    const uint64_t client = it->first;
    ++it;
    if (!w.done) continue;
    if (now >= w.deadline) {
      complete_write(client, Status::timed_out("request timed out; it may still be applied"));
    } else if (now >= w.next_try) {
      try_propose(client, w);
    }
  }
  for (auto it = reads_.begin(); it != reads_.end();) {
    const uint64_t ctx = it->first;
    PendingRead& r = it->second;
    ++it;
    if (now >= r.deadline) {
      auto done = std::move(r.done);
      reads_.erase(ctx);
      asio::post(io_, [done = std::move(done)] { done(Status::timed_out("read timed out")); });
    } else if (!r.asked) {
      try_read(ctx, r);
    }
  }
}

void RaftNode::complete_write(uint64_t client, Result<kvpb::Result> r) {
  auto it = writes_.find(client);
  if (it == writes_.end()) return;
  auto done = std::move(it->second.done);
  writes_.erase(it);
  if (done)
    asio::post(io_, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
}

// ---------------------------------------------------------------------------
// The Ready loop

void RaftNode::schedule_pump() {
  if (pump_scheduled_) return;
  pump_scheduled_ = true;
  asio::post(io_, [this] {
    pump_scheduled_ = false;
    pump();
  });
}

void RaftNode::pump() {
  if (stopped_ || !healthy()) return;
  if (persisting_) {
    // What need not wait for the fsync in flight leaves now: heartbeats keep
    // flowing while a long persist (a snapshot) holds the storage thread, and
    // the leader's new appends reach followers while its own fsync runs.
    if (core_->has_messages()) {
      for (auto& m : core_->take_messages()) send_(std::move(m));
    }
    return;
  }
  if (!core_->has_ready()) return;
  auto rd = std::make_shared<core::Ready<raft::Message>>(core_->ready());
  if (rd->soft_state) {
    log_soft_state(*rd->soft_state);
    if (rd->soft_state->leader != kNoNode && rd->soft_state->leader != last_leader_) {
      // A new leader: writes forwarded to the old one may be lost; offer them
      // again now rather than after retry_interval (the state machine's
      // sessions make a duplicate apply once).
      last_leader_ = rd->soft_state->leader;
      for (auto& [client, w] : writes_) {
        if (w.done) w.next_try = Clock::now();
      }
      asio::post(io_, [this] {
        if (!stopped_ && healthy()) {
          retry_and_expire();
          pump();
        }
      });
    }
  }
  for (auto& m : rd->messages) send_(std::move(m));
  rd->messages.clear();
  // Committed entries already durable here (always so on the leader, which
  // counts itself only once durable) are applied now, in parallel with
  // persisting this Ready: a client's reply need not wait for the next batch's
  // fdatasync. Entries that arrive in this very Ready wait for it.
  size_t early = 0;
  while (early < rd->committed.size() && rd->committed[early].index <= durable_) ++early;
  if (early > 0) {
    std::vector<core::Entry> now(
        std::make_move_iterator(rd->committed.begin()),
        std::make_move_iterator(rd->committed.begin() + static_cast<std::ptrdiff_t>(early)));
    rd->committed.erase(rd->committed.begin(),
                        rd->committed.begin() + static_cast<std::ptrdiff_t>(early));
    apply(now);
    if (!healthy()) return;
  }
  for (const auto& rs : rd->reads) {
    auto it = reads_.find(rs.ctx);
    if (it != reads_.end()) it->second.index = rs.index;
  }
  rd->reads.clear();
  serve_reads();
  // No persist in flight here, so the storage may be asked from this thread.
  if (store_->persist_writes_nothing(rd->snapshot, rd->entries, rd->hard_state)) {
    on_persisted(rd, Status::ok(), {});
    return;
  }
  persisting_ = true;
  if (metrics_ && metrics_->append_batch && !rd->entries.empty())
    metrics_->append_batch(rd->entries.size());
  if (!snapshotting_ && core_->role() != core::Role::kLeader) {
    // A follower persists right here: it has nothing better to do during its
    // fdatasync than wait, and skipping the two thread hand-offs per batch
    // cut its CPU per write by a quarter (set, 50 clients, 3 nodes on 2
    // cores: +17% throughput). Appends arriving meanwhile queue in the socket
    // and form the next batch. The leader keeps the storage thread: its loop
    // serves clients and followers during its own fsync. (The storage thread
    // is idle here: no persist in flight, no snapshot being written.)
    const auto t0 = Clock::now();
    Status st = store_->persist(rd->snapshot, rd->entries, rd->hard_state);
    on_persisted(rd, st, Clock::now() - t0);
    return;
  }
  run_on_storage_thread([this, rd] {
    const auto t0 = Clock::now();
    Status st = store_->persist(rd->snapshot, rd->entries, rd->hard_state);
    const auto took = Clock::now() - t0;
    asio::post(io_, [this, rd, st, took] { on_persisted(rd, st, took); });
  });
}

void RaftNode::on_persisted(ReadyPtr rd, Status st, std::chrono::nanoseconds took) {
  persisting_ = false;
  if (stopped_) return;
  if (!st.is_ok()) {
    fail_stop(st);
    return;
  }
  if (metrics_ && metrics_->fsync_latency && took.count() > 0) {
    metrics_->fsync_latency(std::chrono::duration<double>(took).count());
  }
  if (rd->snapshot) {
    Status rs = sm_->restore(*rd->snapshot->data);
    if (!rs.is_ok()) {
      fail_stop(Status::corruption("snapshot from the leader does not load: " + rs.to_string()));
      return;
    }
    applied_term_ = rd->snapshot->meta.term;
    last_snapshot_ = rd->snapshot->meta.index;
    spdlog::info("installed snapshot {}/{} from the leader", rd->snapshot->meta.index.value(),
                 rd->snapshot->meta.term.value());
  }
  if (rd->snapshot) durable_ = rd->snapshot->meta.index;
  if (!rd->entries.empty()) durable_ = rd->entries.back().index;
  for (auto& m : rd->messages_after_persist) send_(std::move(m));
  apply(rd->committed);
  if (!healthy()) return;
  for (const auto& rs : rd->reads) {
    auto it = reads_.find(rs.ctx);
    if (it != reads_.end()) it->second.index = rs.index;
  }
  for (const auto& o : rd->outcomes) {
    auto it = reads_.find(o.id);
    if (it != reads_.end()) it->second.asked = false;  // dropped by a deposed leader: ask again
  }
  serve_reads();
  core_->advance(*rd);
  maybe_snapshot();
  pump();
}

void RaftNode::apply(const std::vector<core::Entry>& committed) {
  if (committed.empty()) return;
  if (snapshotting_) {  // the storage thread is reading the state machine
    deferred_.insert(deferred_.end(), committed.begin(), committed.end());
    return;
  }
  std::vector<kv::StateMachine::Entry> batch;
  batch.reserve(committed.size());
  for (const auto& e : committed) {
    batch.push_back(kv::StateMachine::Entry{e.index, e.data, e.type != core::EntryType::kNormal});
  }
  auto results = sm_->apply_batch(batch);
  if (!results.is_ok()) {
    fail_stop(results.status());
    return;
  }
  applied_term_ = committed.back().term;
  if (metrics_ && metrics_->commits) metrics_->commits(committed.size());
  for (size_t i = 0; i < committed.size(); ++i) {
    if (committed[i].type != core::EntryType::kNormal || writes_.empty()) continue;
    kvpb::Command cmd;
    if (!cmd.ParseFromString(committed[i].data) || cmd.client_id() == 0) continue;
    auto it = writes_.find(cmd.client_id());
    if (it == writes_.end() || it->second.seq != cmd.seq()) continue;
    complete_write(cmd.client_id(), (*results)[i]);
  }
}

void RaftNode::serve_reads() {
  const LogIndex applied = sm_->applied_index();
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (it->second.index && *it->second.index <= applied) {
      auto done = std::move(it->second.done);
      it = reads_.erase(it);
      asio::post(io_, [done = std::move(done)] { done(Status::ok()); });
    } else {
      ++it;
    }
  }
}

void RaftNode::maybe_snapshot() {
  const LogIndex applied = sm_->applied_index();
  if (snapshotting_ || applied - last_snapshot_ < opts_.snapshot_every_entries) return;
  // The image is built on the storage thread, not here: serializing a large
  // state takes long enough (~100 ms for 100k keys of 256 B on 2 busy cores)
  // to starve heartbeats and start elections. Meanwhile this thread applies
  // nothing (committed entries wait in deferred_), so the state machine holds
  // still under the storage thread's reads; everything else — stepping,
  // heartbeats, persisting, serving reads at the applied index — goes on.
  snapshotting_ = true;
  const core::SnapshotMeta meta{applied, applied_term_};
  run_on_storage_thread([this, meta] {
    const auto t0 = Clock::now();
    auto image = sm_->snapshot();
    const auto built = Clock::now() - t0;
    const bool image_ok = image.is_ok();
    Status st = image.status();
    std::shared_ptr<const std::string> data;
    if (image_ok) {
      data = std::make_shared<const std::string>(std::move(image).value());
      st = store_->save_snapshot(meta, *data);
    }
    asio::post(io_, [this, meta, data, st, image_ok, built] {
      snapshotting_ = false;
      if (stopped_) return;
      if (!image_ok) {
        // Reading the state failed (RocksDB): no snapshot this time; the log
        // keeps growing until the next try.
        spdlog::error("snapshot of the state machine failed: {}", st.to_string());
      } else if (!st.is_ok()) {
        fail_stop(st);
        return;
      } else {
        last_snapshot_ = meta.index;
        core_->compact(core::SnapshotRef{meta, data});
        spdlog::info("snapshot taken through {}/{} ({} bytes; image built in {} ms)",
                     meta.index.value(), meta.term.value(), data->size(),
                     std::chrono::duration_cast<std::chrono::milliseconds>(built).count());
      }
      std::vector<core::Entry> waiting;
      waiting.swap(deferred_);
      apply(waiting);
      if (!healthy()) return;
      serve_reads();
      schedule_pump();
    });
  });
}

void RaftNode::fail_stop(const Status& why) {
  if (!failure_.is_ok()) return;
  failure_ = why;
  spdlog::critical("fail-stop: {} — this node stops taking part until restarted", why.to_string());
  for (auto it = writes_.begin(); it != writes_.end();) {
    const uint64_t client = it->first;
    ++it;
    complete_write(client, why);
  }
  for (auto& [ctx, r] : reads_) {
    if (r.done) asio::post(io_, [d = std::move(r.done), why] { d(why); });
  }
  reads_.clear();
}

void RaftNode::log_soft_state(const core::SoftState& s) {
  if (s.role == core::Role::kCandidate && metrics_ && metrics_->elections) metrics_->elections();
  if (s.role == core::Role::kLeader) {
    spdlog::info("became leader in term {}", s.term.value());
    if (metrics_ && metrics_->leader_changes) metrics_->leader_changes();
  } else if (s.role == core::Role::kFollower && s.leader != kNoNode) {
    spdlog::info("following n{} in term {}", s.leader.value(), s.term.value());
  } else if (s.role == core::Role::kCandidate) {
    spdlog::info("starting an election for term {}", s.term.value());
  }
}

// ---------------------------------------------------------------------------
// Storage thread

void RaftNode::run_on_storage_thread(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void RaftNode::storage_thread_main() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [this] { return storage_stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, nothing left
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

// ---------------------------------------------------------------------------
// Status

std::string RaftNode::status_json() const {
  const auto s = core_->soft_state();
  const auto& log = core_->log();
  nlohmann::json peers = nlohmann::json::array();
  for (NodeId p : core_->config().voters) {
    if (p == core_->id()) continue;
    nlohmann::json peer{{"id", p.value()}};
    if (auto pr = core_->progress(p)) {
      peer["match_index"] = pr->match_index.value();
      peer["next_index"] = pr->next_index.value();
      peer["lag"] = log.last_index().value() - std::min(log.last_index(), pr->match_index).value();
    }
    peers.push_back(std::move(peer));
  }
  nlohmann::json j{
      {"node_id", core_->id().value()},
      {"role", std::string(core::role_name(s.role))},
      {"term", s.term.value()},
      {"leader", s.leader.value()},
      {"commit_index", log.committed().value()},
      {"applied_index", sm_->applied_index().value()},
      {"first_index", log.first_index().value()},
      {"last_index", log.last_index().value()},
      {"snapshot_index", last_snapshot_.value()},
      {"healthy", healthy()},
      {"error", healthy() ? std::string() : failure_.to_string()},
      {"peers", std::move(peers)},
  };
  return j.dump();
}

}  // namespace chorus::server
