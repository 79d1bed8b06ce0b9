// Cluster<E> (cluster.h): the checks — as entries are applied, and at the
// end of a run.
#pragma once

#include "sim/cluster.h"

namespace chorus::sim {

template <core::Engine E>
void Cluster<E>::before_apply(size_t i, const core::Entry& e) {
  note_applied(i, e);
  // A lossy engine applies different entries at one index on purpose (an
  // acknowledged suffix lost in a failover): cluster_loss.h checks it.
  if (lossy()) return;
  const uint64_t h = entry_hash(e);
  const uint64_t before = applied_.distinct();
  auto bad = applied_.record(i + 1, check::EntryId{e.index.value(), e.term.value(), h});
  if (applied_.distinct() > before) ++report_.entries_committed;
  if (bad) violation(*bad);
  if (opts_.trace) trace(fmt::format("n{} applies {}/{}", i + 1, e.index.value(), e.term.value()));
}

// The highest commit index any live node knows, or that anyone applied.
template <core::Engine E>
LogIndex Cluster<E>::highest_commit() const {
  LogIndex best(applied_.max_index());
  for (const auto& n : nodes_) {
    if (n->loop->up() && n->host) best = std::max(best, n->host->engine().status().commit_index);
  }
  return best;
}

template <core::Engine E>
std::optional<size_t> Cluster<E>::current_leader() const {
  std::optional<size_t> best;
  Term best_term;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!up(i)) continue;
    auto s = nodes_[i]->host->soft_state();
    if (s.role == core::Role::kLeader && (!best || s.term > best_term)) {
      best = i;
      best_term = s.term;
    }
  }
  return best;
}

template <core::Engine E>
void Cluster<E>::check_liveness() {
  if (!current_leader()) {
    violation(fmt::format("liveness: no leader {}ms after healing",
                          opts_.liveness_bound_us / kMillisecond));
    return;
  }
  for (const auto& c : clients_) {
    if (!c.scripted && !c.ok_after_heal) {
      violation(fmt::format("liveness: client {} completed no operation within {}ms after healing",
                            c.id, opts_.liveness_bound_us / kMillisecond));
      return;
    }
  }
}

// One more linearizable read of every key through the leader, recorded in
// the history: every acknowledged write must be reflected in it.
template <core::Engine E>
void Cluster<E>::final_reads() {
  for (int k = 1; k <= opts_.keys; ++k) {
    auto l = current_leader();
    if (!l) break;
    clients_.push_back(make_client());
    clients_.back().scripted = true;
    clients_.back().target = *l;
    const size_t c = clients_.size() - 1;
    const size_t op = record(c, check::OpKind::kGet, key_name(static_cast<uint64_t>(k)), {}, {});
    submit(c, op, host::Consistency::kLinearizable);
    const Time deadline = q_.now() + 2 * kSecond;
    while (report_.history[op].complete_us == 0 && q_.now() < deadline && !q_.stopped())
      q_.run_until(q_.now() + kMillisecond);
    if (q_.stopped()) return;
    if (report_.history[op].status != check::OpStatus::kOk) {
      violation(fmt::format("final read of {} did not succeed within 2s on a healed cluster",
                            report_.history[op].key));
      return;
    }
  }
}

template <core::Engine E>
void Cluster<E>::wait_for_convergence() {
  const Time deadline = q_.now() + 3 * kSecond;
  auto converged = [&] {
    const LogIndex first = up(0) ? state(0).applied_index() : LogIndex(0);
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!up(i) || state(i).applied_index() != first || engine(i).status().commit_index != first) {
        return false;
      }
    }
    return true;
  };
  while (!converged() && q_.now() < deadline && !q_.stopped())
    q_.run_until(q_.now() + 10 * kMillisecond);
  if (q_.stopped()) return;
  if (!converged()) {
    std::string s;
    for (size_t i = 0; i < nodes_.size(); ++i)
      s += fmt::format(" n{}:{}", i + 1, up(i) ? state(i).applied_index().value() : 0);
    violation("convergence: replicas did not reach the same applied index within 3s of quiet:" + s);
    return;
  }
  std::vector<check::ReplicaState> states;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    auto digest = state(i).state_digest();
    if (!digest.is_ok()) {
      violation(fmt::format("n{}: state digest failed: {}", i + 1, digest.status().to_string()));
      return;
    }
    states.push_back({i + 1, state(i).applied_index().value(), *digest});
  }
  for (auto& v : check::check_converged(states)) violation(std::move(v));
}

template <core::Engine E>
void Cluster<E>::check_logs() {
  std::vector<check::LogView> logs;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    check::LogView v;
    v.node = i + 1;
    v.up = up(i);
    if (v.up) {
      v.commit = engine(i).status().commit_index.value();
      for (const auto& e : Traits::log_entries(engine(i)))
        v.entries.push_back({e.index.value(), e.term.value(), entry_hash(e)});
    }
    logs.push_back(std::move(v));
  }
  for (auto& v : check::check_log_matching(logs)) violation(std::move(v));
  if (lossy()) return;  // acknowledged writes may be lost: check_loss() accounts for them
  for (auto& v : check::check_acknowledged_present(logs, acked_)) violation(std::move(v));
  for (auto& v : check::check_committed_match_applied(logs, applied_)) violation(std::move(v));
}

template <core::Engine E>
void Cluster<E>::check_history() {
  // A run that already broke a protocol invariant is reported as it is: a
  // broken cluster's history can be arbitrarily costly to search.
  if (!report_.violations.empty()) return;
  check_loss();
  if (!report_.violations.empty() || lossy()) return;  // check_loss() checked the history
  check::CheckOptions copts;
  // Bounded memory and time per seed; running out is counted, not hidden.
  copts.max_steps = 5'000'000;
  check::CheckResult r = check::check_linearizable(report_.history, copts);
  if (r.verdict == check::Verdict::kViolation || r.verdict == check::Verdict::kMalformed) {
    violation("linearizability: " + r.report);
  } else if (r.verdict == check::Verdict::kUnknown) {
    ++report_.checks_inconclusive;
    trace("linearizability check gave up (budget): " + r.report);
  }
}

}  // namespace chorus::sim
