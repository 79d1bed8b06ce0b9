#include "server/write_progress.h"

#include "core/primary/options.h"

namespace chorus::server {

std::string_view write_state_name(WriteProgress::State s) {
  switch (s) {
    case WriteProgress::State::kCommitted:
      return "committed";
    case WriteProgress::State::kPending:
      return "pending";
    case WriteProgress::State::kLost:
      return "lost";
    case WriteProgress::State::kRolledBack:
      return "rolled-back";
  }
  return "pending";
}

WriteProgress write_progress(const ReplicaGroup& g, LogIndex index, Term term) {
  CHORUS_ASSERT(index.value() > 0);
  const host::HostStatus st = g.status();
  const core::EngineStatus& e = st.engine;
  const bool log_matching = g.capabilities().log_matching;
  WriteProgress p;
  if (const std::optional<Term> here = g.term_at(index)) {
    if (*here != term) {
      // Replaced only if this node knows its own entry there is committed;
      // an uncommitted one may itself be replaced (a stale leader, a
      // follower before its conflicting suffix is cut): pending, held by none.
      if (index <= e.commit_index) {
        // Entry terms of primary-backup groups are (epoch, generation)
        // (core/primary/options.h); a generation grows only by a rollback.
        const bool rolled_back = g.managed() &&
                                 primary::epoch_of(*here) == primary::epoch_of(term) &&
                                 primary::generation_of(*here) > primary::generation_of(term);
        p.state = rolled_back ? WriteProgress::State::kRolledBack : WriteProgress::State::kLost;
      }
      return p;
    }
  } else if (index <= e.snapshot_index) {
    // Compacted: only the snapshot's term is left (see the declaration).
    // Without Log Matching (Paxos slots keep the ballot they were first
    // proposed in, so terms may decrease along the log) it tells nothing.
    const std::optional<Term> snap = g.term_at(e.snapshot_index);
    if (snap && term > *snap && log_matching) {
      p.state = WriteProgress::State::kLost;
      return p;
    }
  } else {
    return p;  // past the end of this node's log: pending, held by none it knows of
  }
  if (index <= e.commit_index) p.state = WriteProgress::State::kCommitted;
  if (e.soft.role == core::Role::kLeader) {
    uint64_t followers = 0;
    for (const core::PeerStatus& peer : e.peers) {
      if (peer.id == e.soft.leader) continue;
      ++followers;
      if (peer.match_index >= index) ++p.replicas;
    }
    // Without Log Matching a peer's match says nothing of a chosen slot it
    // never accepted (a Paxos leader tracks acceptances of open slots only,
    // so a dead peer looks caught up). A chosen slot was accepted, durably,
    // by a majority: at least a majority less the leader of the followers.
    if (!log_matching && p.state == WriteProgress::State::kCommitted) {
      p.replicas = (followers + 1) / 2;
    }
  } else if (st.durable_index >= index) {
    p.replicas = 1;  // this node, a replica that is not the leader
  }
  return p;
}

}  // namespace chorus::server
