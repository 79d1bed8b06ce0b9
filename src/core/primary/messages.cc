#include "core/primary/messages.h"

#include <fmt/format.h>

namespace chorus::primary {

std::string_view refusal_name(Refusal r) {
  switch (r) {
    case Refusal::kNone:
      return "none";
    case Refusal::kStaleEpoch:
      return "stale-epoch";
    case Refusal::kLogMismatch:
      return "log-mismatch";
    case Refusal::kLogEnds:
      return "log-ends";
    case Refusal::kPrepareLimit:
      return "prepare-limit";
    case Refusal::kNeedSnapshot:
      return "need-snapshot";
  }
  return "?";
}

std::string_view message_name(const Body& b) {
  struct {
    std::string_view operator()(const Append&) const { return "Append"; }
    std::string_view operator()(const AppendResponse&) const { return "AppendResponse"; }
    std::string_view operator()(const InstallSnapshot&) const { return "InstallSnapshot"; }
    std::string_view operator()(const NewConfiguration&) const { return "NewConfiguration"; }
    std::string_view operator()(const Forward&) const { return "Forward"; }
  } v;
  return std::visit(v, b);
}

namespace {
std::string term_str(Term t) {
  return fmt::format("{}:{}", epoch_of(t).value(), generation_of(t));
}
}  // namespace

std::string describe(const Message& m) {
  std::string head = fmt::format("{} {}->{} e{}", message_name(m.body), m.from.value(),
                                 m.to.value(), m.epoch.value());
  if (const auto* a = std::get_if<Append>(&m.body)) {
    return head + fmt::format(" t={} prev={}/{} n={} commit={}", term_str(a->term),
                              a->prev_index.value(), term_str(a->prev_term), a->entries.size(),
                              a->commit.value());
  }
  if (const auto* r = std::get_if<AppendResponse>(&m.body)) {
    if (r->refusal == Refusal::kNone) {
      return head + fmt::format(" match={}/{}", r->match_index.value(), term_str(r->match_term));
    }
    return head + fmt::format(" refused={} hint={}/{} refused_index={}", refusal_name(r->refusal),
                              r->hint.value(), term_str(r->hint_term), r->refused_index.value());
  }
  if (const auto* s = std::get_if<InstallSnapshot>(&m.body)) {
    return head + fmt::format(" snapshot={}/{} refuted={}/{}", s->snapshot.meta.index.value(),
                              term_str(s->snapshot.meta.term), s->refuted.index.value(),
                              term_str(s->refuted.term));
  }
  if (const auto* f = std::get_if<Forward>(&m.body)) {
    return head + fmt::format(" writes={}", f->data.size());
  }
  const auto& c = std::get<NewConfiguration>(m.body).config;
  return head + fmt::format(" config=e{} primary={} members={}", c.epoch.value(), c.primary.value(),
                            c.members.size());
}

}  // namespace chorus::primary
