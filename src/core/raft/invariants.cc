#include "core/raft/invariants.h"

#include <fmt/format.h>

namespace chorus::raft {

std::optional<std::string> Invariants::observe(size_t i, const Raft& r, const AppliedAt& applied_at,
                                               const EntryHash& hash) {
  const core::SoftState s = r.soft_state();
  const LogIndex commit = r.log().committed();
  Watched& w = watched_[i];
  const bool leader = s.role == core::Role::kLeader;
  const bool newly_leader = leader && (w.soft.role != core::Role::kLeader || w.soft.term != s.term);
  std::optional<std::string> found;
  if (leader && !newly_leader && commit > w.commit) {
    const auto t = r.log().term(commit);
    if (t && *t != s.term) {
      found = fmt::format(
          "n{} (leader in term {}) advanced its commit index to {}, an entry of term {}, by "
          "counting replicas (Raft §5.4.2)",
          r.id().value(), s.term.value(), commit.value(), t->value());
    }
  }
  if (!found && newly_leader) {
    auto [it, inserted] = leaders_.try_emplace(s.term.value(), r.id());
    if (!inserted && it->second != r.id()) {
      found = fmt::format("two leaders in term {}: n{} and n{} (Election Safety)", s.term.value(),
                          it->second.value(), r.id().value());
    } else {
      found = check_completeness(r, applied_at, hash);
    }
  }
  if (leader) {
    LogIndex& c = committed_by_term_[s.term.value()];
    c = std::max(c, commit);
  }
  w.soft = s;
  w.commit = commit;
  return found;
}

std::optional<std::string> Invariants::check_completeness(const Raft& r, const AppliedAt& applied_at,
                                                          const EntryHash& hash) const {
  const RaftLog& log = r.log();
  const Term term = r.term();
  LogIndex required;  // committed in a term before this leader's
  for (auto it = committed_by_term_.begin();
       it != committed_by_term_.end() && it->first < term.value(); ++it) {
    required = std::max(required, it->second);
  }
  if (log.last_index() < required) {
    return fmt::format(
        "leader completeness: n{} became leader of term {} with log ending at {} but index {} was "
        "committed in an earlier term",
        r.id().value(), term.value(), log.last_index().value(), required.value());
  }
  for (LogIndex i = log.first_index(); i <= std::min(log.last_index(), required); i = i.next()) {
    const auto a = applied_at(i);
    if (!a) continue;
    const core::Entry& e = log.at(i);
    if (a->term != e.term || a->hash != hash(e)) {
      return fmt::format(
          "leader completeness: n{} became leader of term {} holding {}/{} where index {}, "
          "committed in an earlier term, has term {}",
          r.id().value(), term.value(), i.value(), e.term.value(), i.value(), a->term.value());
    }
  }
  return std::nullopt;
}

std::optional<LogIndex> Invariants::promised_durable(const Message& m) {
  if (const auto* r = std::get_if<AppendEntriesResponse>(&m.body); r && r->success)
    return r->match_index;
  return std::nullopt;
}

}  // namespace chorus::raft
