#include "core/paxos/invariants.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <variant>

#include "base/overloaded.h"

namespace chorus::paxos {
namespace {

std::string show(const Ballot& b) {
  if (b == kChosenBallot) return "chosen";
  return fmt::format("{}.{}", b.round, b.node.value());
}

}  // namespace

Invariants::Invariants(size_t nodes) : majority_(nodes / 2 + 1), watched_(nodes) {}

uint64_t Invariants::value_hash(const Value& v) {
  const uint64_t h = std::hash<std::string>{}(v.data);
  return h ^ (static_cast<uint64_t>(v.type) << 60) ^
         (v.origin.to_term().value() * 0x9e3779b97f4a7c15ULL);
}

std::optional<LogIndex> Invariants::promised_durable(const Message& m) {
  const auto* a = std::get_if<Accepted>(&m.body);
  if (a == nullptr || a->slots.empty()) return std::nullopt;
  return *std::max_element(a->slots.begin(), a->slots.end());
}

void Invariants::reset(size_t i) {
  watched_[i].checked = LogIndex(0);
}

std::optional<std::string> Invariants::observe_recovered(size_t i, const Paxos& p) {
  if (auto bad = check_recovered(i, p)) return bad;
  for (LogIndex s = p.snapshot_index().next(); s <= p.status().last_index; s = s.next()) {
    const std::optional<PValue> held = p.accepted(s);
    if (!held || held->ballot == kChosenBallot) continue;
    if (auto bad = accept_durably(i, s, held->ballot, held->value)) return bad;
  }
  return std::nullopt;
}

std::optional<std::string> Invariants::observe(size_t i, const Paxos& p) {
  Watched& w = watched_[i];
  // PMS §2.3: a promise answered is never forgotten, not even in a crash.
  if (p.promised() < w.promise_floor) {
    return fmt::format("n{} promised ballot {} but now promises only {} (a promise lost)", i + 1,
                       show(w.promise_floor), show(p.promised()));
  }
  return check_learned(i, p);
}

// An acceptor restarted: every value it accepted durably is still held, at
// its ballot or a higher one (or compacted into its snapshot).
std::optional<std::string> Invariants::check_recovered(size_t i, const Paxos& p) {
  Watched& w = watched_[i];
  const LogIndex snap = p.snapshot_index();
  w.durable_accepts.erase(w.durable_accepts.begin(), w.durable_accepts.upper_bound(snap));
  // A crash inside a tail rewrite may lose slots; the acceptor must know it
  // (amnesic_through) and then promises nothing for them until relearned.
  if (const std::optional<LogIndex> lost = p.amnesic_through()) {
    w.durable_accepts.erase(w.durable_accepts.begin(), w.durable_accepts.upper_bound(*lost));
  }
  for (const auto& [slot, b] : w.durable_accepts) {
    const std::optional<PValue> held = p.accepted(slot);
    if (!held || held->ballot < b) {
      return fmt::format(
          "n{} restarted without its durable acceptance of slot {} at ballot {} (holds {})", i + 1,
          slot.value(), show(b), held ? "ballot " + show(held->ballot) : "nothing");
    }
  }
  return std::nullopt;
}

// Every slot a node counts in its chosen prefix holds the value a majority
// accepted there.
std::optional<std::string> Invariants::check_learned(size_t i, const Paxos& p) {
  Watched& w = watched_[i];
  const LogIndex through = p.chosen_through();
  for (LogIndex s = std::max(w.checked, p.snapshot_index()).next(); s <= through; s = s.next()) {
    const std::optional<PValue> held = p.accepted(s);
    if (!held)
      return fmt::format("n{} counts slot {} chosen but holds nothing there", i + 1, s.value());
    auto it = slots_.find(s);
    if (it == slots_.end() || !it->second.chosen_ballot) {
      return fmt::format(
          "n{} counts slot {} chosen (it holds ballot {}) but no majority accepted "
          "a value there",
          i + 1, s.value(), show(held->ballot));
    }
    if (value_hash(held->value) != it->second.chosen_value) {
      return fmt::format("n{} learned at slot {} a value other than the one chosen at ballot {}",
                         i + 1, s.value(), show(*it->second.chosen_ballot));
    }
  }
  w.checked = std::max(w.checked, through);
  return std::nullopt;
}

std::optional<std::string> Invariants::observe_durable(size_t i,
                                                       std::span<const core::Entry> entries) {
  for (const core::Entry& e : entries) {
    const std::optional<PValue> pv = decode_slot(e);
    if (!pv) continue;  // a hole: nothing accepted
    if (pv->ballot == kChosenBallot) {
      // Recorded as known chosen (a Decide, a Promise reporting it): it was.
      auto it = slots_.find(pv->slot);
      if (it == slots_.end() || !it->second.chosen_ballot ||
          it->second.chosen_value != value_hash(pv->value)) {
        return fmt::format("n{} recorded slot {} as chosen with a value no majority accepted",
                           i + 1, pv->slot.value());
      }
      continue;
    }
    if (auto bad = accept_durably(i, pv->slot, pv->ballot, pv->value)) return bad;
  }
  return std::nullopt;
}

std::optional<std::string> Invariants::accept_durably(size_t i, LogIndex slot, Ballot b,
                                                      const Value& v) {
  Ballot& highest = watched_[i].durable_accepts[slot];
  highest = std::max(highest, b);
  SlotState& st = slots_[slot];
  const uint64_t h = value_hash(v);
  auto [it, fresh] = st.by_ballot.try_emplace(b, Acceptance{h, {}});
  if (!fresh && it->second.value != h) {
    return fmt::format("two values proposed at slot {} under ballot {} (n{} accepted the second)",
                       slot.value(), show(b), i + 1);
  }
  it->second.acceptors.insert(i);
  // PMS P2b: once v is chosen at ballot c, every acceptance above c is of v.
  if (st.chosen_ballot && b > *st.chosen_ballot && h != st.chosen_value) {
    return fmt::format("n{} accepted at slot {} ballot {} a value other than the one chosen at {}",
                       i + 1, slot.value(), show(b), show(*st.chosen_ballot));
  }
  if (it->second.acceptors.size() < majority_) return std::nullopt;
  if (st.chosen_ballot && h != st.chosen_value) {
    return fmt::format("two values chosen at slot {}: at ballots {} and {}", slot.value(),
                       show(*st.chosen_ballot), show(b));
  }
  if (st.chosen_ballot && *st.chosen_ballot <= b) return std::nullopt;
  st.chosen_ballot = b;
  st.chosen_value = h;
  // Acceptances above b that came before the choice completed must agree too.
  for (auto above = st.by_ballot.upper_bound(b); above != st.by_ballot.end(); ++above) {
    if (above->second.value != h) {
      return fmt::format("slot {}: ballot {} accepted a value other than the one chosen at {}",
                         slot.value(), show(above->first), show(b));
    }
  }
  return std::nullopt;
}

std::optional<std::string> Invariants::observe_message(size_t i, const Message& m) {
  Watched& w = watched_[i];
  return std::visit(
      Overloaded{
          [&](const Prepare& p) -> std::optional<std::string> {
            if (p.ballot.node != m.from) {
              return fmt::format("n{} sent Prepare with ballot {} of another node", i + 1,
                                 show(p.ballot));
            }
            // A proposer's ballots only grow, across restarts too (its own
            // promise is durable before its Prepare leaves).
            if (p.ballot < w.highest_prepare) {
              return fmt::format("n{} sent Prepare {} after Prepare {}", i + 1, show(p.ballot),
                                 show(w.highest_prepare));
            }
            w.highest_prepare = p.ballot;
            w.promise_floor = std::max(w.promise_floor, p.ballot);
            promisers_[p.ballot].insert(i);
            prepare_first_slot_[p.ballot] = p.first_slot;
            return std::nullopt;
          },
          [&](const Promise& p) -> std::optional<std::string> {
            w.promise_floor = std::max(w.promise_floor, p.ballot);
            auto first = prepare_first_slot_.find(p.ballot);
            if (first != prepare_first_slot_.end() && p.compacted_through < first->second)
              promisers_[p.ballot].insert(i);
            for (const PValue& pv : p.accepted) {
              auto st = slots_.find(pv.slot);
              if (pv.ballot == kChosenBallot) {
                if (st == slots_.end() || !st->second.chosen_ballot ||
                    st->second.chosen_value != value_hash(pv.value)) {
                  return fmt::format(
                      "n{} reported slot {} chosen with a value no majority accepted", i + 1,
                      pv.slot.value());
                }
                continue;
              }
              if (st == slots_.end()) continue;
              auto acc = st->second.by_ballot.find(pv.ballot);
              if (acc != st->second.by_ballot.end() && acc->second.value != value_hash(pv.value)) {
                return fmt::format(
                    "n{} reported at slot {} ballot {} a value nobody proposed there", i + 1,
                    pv.slot.value(), show(pv.ballot));
              }
            }
            return std::nullopt;
          },
          [&](const Accept& a) -> std::optional<std::string> {
            if (a.ballot.node != m.from) {
              return fmt::format("n{} sent Accept with ballot {} of another node", i + 1,
                                 show(a.ballot));
            }
            // PMS §2.3: phase 2 only after a majority answered phase 1.
            auto pr = promisers_.find(a.ballot);
            const size_t promised = pr == promisers_.end() ? 0 : pr->second.size();
            if (promised < majority_) {
              return fmt::format("n{} sent Accept at ballot {} promised by only {} of {} needed",
                                 i + 1, show(a.ballot), promised, majority_);
            }
            for (const PValue& pv : a.proposals) {
              auto st = slots_.find(pv.slot);
              if (st == slots_.end()) continue;
              auto acc = st->second.by_ballot.find(a.ballot);
              if (acc != st->second.by_ballot.end() && acc->second.value != value_hash(pv.value)) {
                return fmt::format("n{} proposed a second value at slot {} under ballot {}", i + 1,
                                   pv.slot.value(), show(a.ballot));
              }
            }
            return std::nullopt;
          },
          [&](const Accepted& a) -> std::optional<std::string> {
            w.promise_floor = std::max(w.promise_floor, a.ballot);
            return std::nullopt;
          },
          [&](const Decide& d) -> std::optional<std::string> {
            for (const PValue& pv : d.chosen) {
              auto st = slots_.find(pv.slot);
              if (st == slots_.end() || !st->second.chosen_ballot ||
                  st->second.chosen_value != value_hash(pv.value)) {
                return fmt::format("n{} sent Decide for slot {} with a value no majority accepted",
                                   i + 1, pv.slot.value());
              }
            }
            return std::nullopt;
          },
          [](const auto&) -> std::optional<std::string> { return std::nullopt; },
      },
      m.body);
}

}  // namespace chorus::paxos
