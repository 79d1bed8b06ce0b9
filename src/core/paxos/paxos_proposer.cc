// The proposer: phase 1 (Prepare/Promise) once for all open slots, value
// adoption and hole filling, then phase 2 (Accept/Accepted) pipelined and
// batched; client proposals and read barriers; preemption and backoff.
#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "base/assert.h"
#include "core/paxos/paxos.h"

namespace chorus::paxos {

Ballot Paxos::next_ballot() const {
  const uint64_t round = std::max(highest_seen_.round, promised_.round) + 1;
  CHORUS_ASSERT(round <= kMaxRound);
  return Ballot{round, cfg_.id};
}

void Paxos::become_follower(NodeId leader, std::string why) {
  if (auto* l = std::get_if<Leader>(&role_)) {
    // Reads are safe to drop: the host asks again. Writes in open slots are
    // not reported: a later proposer may still choose them (it adopts them in
    // phase 1), so their outcome is seen at apply time by slot and origin.
    for (const auto& [slot, ctxs] : l->read_slots) {
      for (uint64_t ctx : ctxs) {
        outcomes_.push_back(core::Outcome{ctx, ProposeStatus::kDropped, leader, {}, {}});
      }
    }
  }
  role_ = Follower{};
  leader_ = leader;
  role_reason_ = std::move(why);
  // The randomized timeout doubles as the preempted proposer's backoff
  // (dueling proposers separate because they draw different waits).
  reset_timer();
}

void Paxos::start_phase1(std::string why) {
  CHORUS_ASSERT(!std::holds_alternative<Leader>(role_));  // a leader has no election timer
  const Ballot b = next_ballot();
  CHORUS_ASSERT(b > promised_ && b > highest_seen_);
  promised_ = b;  // our own promise, durable before any Prepare leaves
  highest_seen_ = b;
  // Multi-Paxos: one phase 1 for every slot from the first one not known
  // chosen (Paxos Made Simple §3).
  const LogIndex first = chosen_through_.next();
  role_ = Preparing{b, first, {}};
  leader_ = kNoNode;
  role_reason_ = std::move(why);
  reset_timer();
  // The Prepare leaves only once the ballot is durable (our own promise):
  // a proposer that crashed after sending it and forgot the ballot could
  // pick the same ballot again and propose a second value for a slot under
  // it (Paxos Made Live §4: the coordinator persists its proposal number).
  for (NodeId peer : cfg_.members) {
    if (peer != cfg_.id) send_after_persist(peer, Prepare{b, first});
  }
  // Our own promise counts once it is durable (on_self_durable).
}

void Paxos::on_promise(Preparing& p, NodeId from, const Promise& pr) {
  if (pr.ballot != p.ballot) return;  // a promise to an earlier attempt
  if (pr.compacted_through >= p.first_slot) {
    // The acceptor compacted slots we lack: it cannot report them. Catch up
    // (a snapshot) first; a later phase 1 starts past them.
    if (from != cfg_.id) send(from, CatchupRequest{p.first_slot, pr.compacted_through});
    return;
  }
  p.promises[from] = pr.accepted;
  if (p.promises.size() >= majority()) become_leader(std::move(p));
}

void Paxos::become_leader(Preparing p) {
  CHORUS_ASSERT(p.promises.size() >= majority());
  CHORUS_ASSERT(promised_ == p.ballot);
  // Paxos Made Simple §2.2 (P2c) / §3: for each slot, adopt the value
  // accepted with the highest ballot among the majority's promises.
  std::map<LogIndex, PValue> adopted;
  for (const auto& [node, accepted] : p.promises) {
    for (const PValue& pv : accepted) {
      if (pv.slot <= chosen_through_) continue;
      auto [it, fresh] = adopted.try_emplace(pv.slot, pv);
      if (!fresh && pv.ballot > it->second.ballot) it->second = pv;
    }
  }
  const LogIndex last =
      adopted.empty() ? chosen_through_ : std::max(chosen_through_, adopted.rbegin()->first);
  role_ = Leader{};
  Leader& l = std::get<Leader>(role_);
  l.ballot = p.ballot;
  l.next_slot = last.next();
  leader_ = cfg_.id;
  role_reason_ = fmt::format("phase 1 of ballot {}.{} promised by {} of {}", p.ballot.round,
                             p.ballot.node.value(), p.promises.size(), cfg_.members.size());
  for (LogIndex s = chosen_through_.next(); s <= last; s = s.next()) {
    if (is_chosen_locally(s)) continue;  // learned from a Decide meanwhile
    auto it = adopted.find(s);
    if (it == adopted.end()) {
      // A hole: no majority member accepted anything here, so nothing can
      // have been chosen; fill it with a no-op.
      open_slot(l, s, Value{l.ballot, core::EntryType::kNoop, {}});
    } else if (it->second.ballot == kChosenBallot) {
      if (!is_chosen_locally(s)) write_record(s, kChosenBallot, it->second.value);
    } else {
      open_slot(l, s, it->second.value);
    }
  }
  advance_chosen_prefix();
  CHORUS_ASSERT(l.next_slot > chosen_through_);
  CHORUS_ASSERT(l.open.empty() || l.open.begin()->first > chosen_through_);
  l.accepts_pending = true;
  broadcast_heartbeat(l);
}

void Paxos::open_slot(Leader& l, LogIndex slot, Value v) {
  CHORUS_ASSERT(promised_ == l.ballot);
  CHORUS_ASSERT(slot > chosen_through_);
  write_record(slot, l.ballot, v);
  l.open[slot] = Slot{std::move(v), {}, false};
}

void Paxos::count_accept(Leader& l, LogIndex slot, NodeId who) {
  auto it = l.open.find(slot);
  if (it == l.open.end()) return;
  CHORUS_ASSERT(slot > chosen_through_);
  CHORUS_ASSERT(std::find(cfg_.members.begin(), cfg_.members.end(), who) != cfg_.members.end());
  it->second.accepted_by.insert(who);
  if (it->second.accepted_by.size() < majority()) return;
  // Chosen: a majority accepted (slot, ballot, value).
  l.chosen.insert(slot);
  l.open.erase(it);
}

void Paxos::on_accepted(Leader& l, const Message& m, const Accepted& a) {
  if (a.ballot != l.ballot) return;
  for (LogIndex s : a.slots) count_accept(l, s, m.from);
  advance_chosen_prefix();
}

void Paxos::on_nack(const Nack& n) {
  highest_seen_ = std::max(highest_seen_, n.promised);
  const Ballot mine = ballot();
  if (mine.is_null() || n.ballot != mine || n.promised <= mine) return;
  become_follower(kNoNode, fmt::format("preempted: an acceptor promised ballot {}.{}",
                                       n.promised.round, n.promised.node.value()));
}

void Paxos::on_self_durable(const Ready& rd) {
  if (auto* p = std::get_if<Preparing>(&role_)) {
    if (durable_promised_ == p->ballot && !p->promises.contains(cfg_.id) &&
        may_promise_from(p->first_slot)) {
      on_promise(*p, cfg_.id, make_promise(p->ballot, p->first_slot));
    }
    return;
  }
  auto* l = std::get_if<Leader>(&role_);
  if (l == nullptr || durable_promised_ != l->ballot) return;
  // The leader's own acceptor counts for a slot once its accept is durable.
  for (const core::Entry& e : rd.entries) {
    const std::optional<PValue> pv = decode_slot(e);
    if (pv && pv->ballot == l->ballot) count_accept(*l, e.index, cfg_.id);
  }
  advance_chosen_prefix();
}

// New slots go to every peer at once, in batches of at most
// max_slots_per_accept slots and max_bytes_per_accept bytes. On a resend (each
// heartbeat) a peer gets at most one batch of the oldest slots sent at least
// accept_retry_ticks ago that it has not acknowledged, so a dead peer costs
// one message per heartbeat, not the whole window.
void Paxos::send_accepts(Leader& l, bool resend) {
  for (NodeId peer : cfg_.members) {
    if (peer == cfg_.id) continue;
    Accept a{l.ballot, {}, chosen_through_};
    size_t bytes = 0;
    for (const auto& [slot, s] : l.open) {
      const bool want = resend ? s.sent && now_ticks_ - s.sent_tick >= cfg_.accept_retry_ticks &&
                                     !s.accepted_by.contains(peer)
                               : !s.sent;
      if (!want) continue;
      PValue pv{slot, l.ballot, s.value};
      const size_t pv_bytes = pvalue_bytes(pv);
      // A full batch leaves before this slot joins it; a slot above the
      // byte limit goes alone.
      if (!a.proposals.empty() && (a.proposals.size() == cfg_.max_slots_per_accept ||
                                   bytes + pv_bytes > cfg_.max_bytes_per_accept)) {
        send(peer, a);
        a.proposals.clear();
        bytes = 0;
        if (resend) break;
      }
      a.proposals.push_back(std::move(pv));
      bytes += pv_bytes;
    }
    if (!a.proposals.empty()) send(peer, std::move(a));
  }
  if (resend) return;
  for (auto& [slot, s] : l.open) {
    if (!s.sent) s.sent_tick = now_ticks_;
    s.sent = true;
  }
}

void Paxos::broadcast_heartbeat(Leader& l) {
  l.commit_pending = false;
  for (NodeId peer : cfg_.members) {
    if (peer != cfg_.id) send(peer, Heartbeat{l.ballot, chosen_through_});
  }
}

ProposeResult Paxos::propose(std::string data) {
  auto* l = std::get_if<Leader>(&role_);
  if (l == nullptr) {
    return ProposeResult{
        leader_ == kNoNode ? ProposeStatus::kNoLeader : ProposeStatus::kNotLeader, leader_, {}, {}};
  }
  if (l->open.size() >= cfg_.max_inflight_slots) {
    return ProposeResult{ProposeStatus::kTooMuchUncommitted, cfg_.id, {}, {}};
  }
  const LogIndex slot = l->next_slot;
  l->next_slot = slot.next();
  open_slot(*l, slot, Value{l->ballot, core::EntryType::kNormal, std::move(data)});
  l->accepts_pending = true;
  return ProposeResult{ProposeStatus::kAccepted, cfg_.id, slot, l->ballot.to_term()};
}

ProposeResult Paxos::read_index(uint64_t ctx, core::ReadMode /*mode*/) {
  auto* l = std::get_if<Leader>(&role_);
  if (l == nullptr) {
    return ProposeResult{
        leader_ == kNoNode ? ProposeStatus::kNoLeader : ProposeStatus::kNotLeader, leader_, {}, {}};
  }
  if (l->pending_reads >= cfg_.max_pending_reads) {
    return ProposeResult{ProposeStatus::kTooMuchUncommitted, cfg_.id, {}, {}};
  }
  // Reads arriving together share one barrier slot: the newest slot, while
  // its Accepts have not left. A read must never join a slot already sent:
  // a majority may have accepted it before the read arrived, and a newer
  // proposer may have chosen writes since.
  LogIndex slot = l->read_slots.empty() ? LogIndex(0) : l->read_slots.rbegin()->first;
  const auto open = l->open.find(slot);
  if (slot.next() != l->next_slot || open == l->open.end() || open->second.sent) {
    if (l->open.size() >= cfg_.max_inflight_slots) {
      return ProposeResult{ProposeStatus::kTooMuchUncommitted, cfg_.id, {}, {}};
    }
    slot = l->next_slot;
    l->next_slot = slot.next();
    open_slot(*l, slot, Value{l->ballot, core::EntryType::kNoop, {}});
    l->accepts_pending = true;
  }
  l->read_slots[slot].push_back(ctx);
  ++l->pending_reads;
  return ProposeResult{ProposeStatus::kAccepted, cfg_.id, slot, l->ballot.to_term()};
}

}  // namespace chorus::paxos
