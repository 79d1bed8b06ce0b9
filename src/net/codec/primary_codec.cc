#include "net/codec/primary_codec.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "base/assert.h"

namespace chorus::net {
namespace {

using primary::Epoch;
using primary::epoch_of;
namespace pb = primarypb;

Status bad(std::string what) {
  return Status::corruption("bad primary-backup message: " + std::move(what));
}

// ---- Encoding: one encode() per Body alternative --------------------------

void encode(const primary::Append& a, pb::PrimaryMessage* out) {
  auto* p = out->mutable_append();
  p->set_term(a.term.value());
  p->set_prev_index(a.prev_index.value());
  p->set_prev_term(a.prev_term.value());
  p->set_commit(a.commit.value());
  p->mutable_entries()->Reserve(static_cast<int>(a.entries.size()));
  for (const core::Entry& e : a.entries) {
    auto* pe = p->add_entries();
    pe->set_term(e.term.value());
    pe->set_index(e.index.value());
    pe->set_type(e.type == core::EntryType::kNoop ? pb::ENTRY_NOOP : pb::ENTRY_NORMAL);
    pe->set_data(e.data);
  }
}

pb::Refusal to_wire(primary::Refusal r) {
  switch (r) {
    case primary::Refusal::kNone:
      return pb::REFUSAL_NONE;
    case primary::Refusal::kStaleEpoch:
      return pb::REFUSAL_STALE_EPOCH;
    case primary::Refusal::kLogMismatch:
      return pb::REFUSAL_LOG_MISMATCH;
    case primary::Refusal::kLogEnds:
      return pb::REFUSAL_LOG_ENDS;
    case primary::Refusal::kPrepareLimit:
      return pb::REFUSAL_PREPARE_LIMIT;
    case primary::Refusal::kNeedSnapshot:
      return pb::REFUSAL_NEED_SNAPSHOT;
  }
  CHORUS_ASSERT_MSG(false, "unknown primary::Refusal");
  return pb::REFUSAL_NONE;
}

void encode(const primary::AppendResponse& r, pb::PrimaryMessage* out) {
  auto* p = out->mutable_append_response();
  p->set_refusal(to_wire(r.refusal));
  p->set_match_index(r.match_index.value());
  p->set_match_term(r.match_term.value());
  p->set_hint(r.hint.value());
  p->set_hint_term(r.hint_term.value());
  p->set_refused_index(r.refused_index.value());
}

void encode(const primary::InstallSnapshot& s, pb::PrimaryMessage* out) {
  // The bytes travel beside the message: OutgoingMessage::snapshot.
  auto* p = out->mutable_install_snapshot();
  p->mutable_meta()->set_index(s.snapshot.meta.index.value());
  p->mutable_meta()->set_term(s.snapshot.meta.term.value());
  p->set_last_index(s.last_index.value());
  if (s.refuted.index != LogIndex(0)) {
    p->mutable_refuted()->set_index(s.refuted.index.value());
    p->mutable_refuted()->set_term(s.refuted.term.value());
  }
  // The header must fit kMaxSnapshotHeaderBytes: keep the newest starts.
  const size_t keep = std::min(s.terms.size(), kMaxWireTermStarts);
  p->mutable_term_terms()->Reserve(static_cast<int>(keep));
  p->mutable_term_firsts()->Reserve(static_cast<int>(keep));
  for (size_t i = s.terms.size() - keep; i < s.terms.size(); ++i) {
    p->add_term_terms(s.terms[i].term.value());
    p->add_term_firsts(s.terms[i].first.value());
  }
}

void encode(const primary::NewConfiguration& c, pb::PrimaryMessage* out) {
  CHORUS_ASSERT(c.config.members.size() <= kMaxConfigurationMembers);
  auto* p = out->mutable_new_configuration();
  p->set_epoch(c.config.epoch.value());
  p->set_primary(c.config.primary.value());
  p->mutable_members()->Reserve(static_cast<int>(c.config.members.size()));
  for (NodeId n : c.config.members) p->add_members(n.value());
  CHORUS_ASSERT(c.config.learners.size() <= kMaxConfigurationMembers);
  for (NodeId n : c.config.learners) p->add_learners(n.value());
  p->set_version(c.config.version);
  // No lease: messages.h, NewConfiguration.
}

void encode(const primary::Forward& f, pb::PrimaryMessage* out) {
  auto* p = out->mutable_forward();
  for (const auto& d : f.data) p->add_data(d);
}

// ---- Decoding --------------------------------------------------------------

Status check_envelope(const wirepb::PeerMessage& in) {
  if (in.body_case() != wirepb::PeerMessage::kPrimary) return bad("not a primary-backup message");
  if (in.from() == 0 || in.to() == 0) {
    return bad(fmt::format("from {} to {}: node id 0 is no node", in.from(), in.to()));
  }
  if (in.from() == in.to()) return bad(fmt::format("from {} to itself", in.from()));
  return Status::ok();
}

// A term a node holding epoch `epoch` may carry: 0 (none), or one of an
// epoch in [1, epoch].
Status check_term(uint64_t term, Epoch epoch, const char* what) {
  const Epoch e = epoch_of(Term(term));
  if (term != 0 && e == Epoch(0)) {
    return bad(fmt::format("{} {} belongs to epoch 0, which has no entries", what, term));
  }
  if (e > epoch) {
    return bad(fmt::format("{} {} of epoch {} beyond the message's epoch {}", what, term, e.value(),
                           epoch.value()));
  }
  return Status::ok();
}

Result<core::EntryType> decode_type(const pb::Entry& e) {
  switch (e.type()) {
    case pb::ENTRY_NORMAL:
      return core::EntryType::kNormal;
    case pb::ENTRY_NOOP:
      return core::EntryType::kNoop;
    default:
      break;
  }
  return bad(
      fmt::format("Append entry {} has unknown type {}", e.index(), static_cast<int>(e.type())));
}

Status check_append_header(const pb::Append& in, Epoch epoch) {
  if (epoch == Epoch(0) || epoch_of(Term(in.term())) != epoch) {
    return bad(
        fmt::format("Append term {} is not of the message's epoch {}", in.term(), epoch.value()));
  }
  CHORUS_RETURN_IF_ERROR(check_term(in.prev_term(), epoch, "prev_term"));
  if ((in.prev_index() == 0) != (in.prev_term() == 0)) {
    return bad(
        fmt::format("Append prev {}/{}: only index 0 has term 0", in.prev_index(), in.prev_term()));
  }
  if (in.prev_term() > in.term()) {
    return bad(fmt::format("Append prev_term {} above its term {}", in.prev_term(), in.term()));
  }
  const auto n = static_cast<uint64_t>(in.entries_size());
  if (in.prev_index() > std::numeric_limits<uint64_t>::max() - n) {
    return bad("Append indexes overflow");
  }
  return Status::ok();
}

Result<primary::Body> decode_append(const pb::Append& in, Epoch epoch) {
  CHORUS_RETURN_IF_ERROR(check_append_header(in, epoch));
  primary::Append a{
      Term(in.term()), LogIndex(in.prev_index()), Term(in.prev_term()), {}, LogIndex(in.commit())};
  a.entries.reserve(static_cast<size_t>(in.entries_size()));
  uint64_t expected_index = in.prev_index() + 1;
  uint64_t last_term = in.prev_term();
  for (const pb::Entry& e : in.entries()) {
    if (e.index() != expected_index) {
      return bad(fmt::format("Append entry index {} where {} was due (not contiguous)", e.index(),
                             expected_index));
    }
    if (e.term() < last_term || e.term() > in.term()) {
      return bad(fmt::format("Append entry {} term {} outside [{}, {}]", e.index(), e.term(),
                             last_term, in.term()));
    }
    CHORUS_RETURN_IF_ERROR(check_term(e.term(), epoch, "entry term"));
    if (e.term() == 0) return bad(fmt::format("Append entry {} has no term", e.index()));
    CHORUS_ASSIGN_OR_RETURN(core::EntryType type, decode_type(e));
    a.entries.push_back(core::Entry{Term(e.term()), LogIndex(e.index()), type, e.data()});
    ++expected_index;
    last_term = e.term();
  }
  return primary::Body(std::move(a));
}

Result<primary::Refusal> decode_refusal(pb::Refusal r) {
  switch (r) {
    case pb::REFUSAL_NONE:
      return primary::Refusal::kNone;
    case pb::REFUSAL_STALE_EPOCH:
      return primary::Refusal::kStaleEpoch;
    case pb::REFUSAL_LOG_MISMATCH:
      return primary::Refusal::kLogMismatch;
    case pb::REFUSAL_LOG_ENDS:
      return primary::Refusal::kLogEnds;
    case pb::REFUSAL_PREPARE_LIMIT:
      return primary::Refusal::kPrepareLimit;
    case pb::REFUSAL_NEED_SNAPSHOT:
      return primary::Refusal::kNeedSnapshot;
    default:
      break;
  }
  return bad(fmt::format("AppendResponse with unknown refusal {}", static_cast<int>(r)));
}

Result<primary::Body> decode_response(const pb::AppendResponse& in, Epoch epoch) {
  CHORUS_ASSIGN_OR_RETURN(primary::Refusal refusal, decode_refusal(in.refusal()));
  CHORUS_RETURN_IF_ERROR(check_term(in.match_term(), epoch, "match_term"));
  if (refusal == primary::Refusal::kNone && (in.match_index() == 0) != (in.match_term() == 0)) {
    return bad(fmt::format("AppendResponse match {}/{}: only index 0 has term 0", in.match_index(),
                           in.match_term()));
  }
  primary::AppendResponse r;
  r.refusal = refusal;
  r.match_index = LogIndex(in.match_index());
  r.match_term = Term(in.match_term());
  r.hint = LogIndex(in.hint());
  CHORUS_RETURN_IF_ERROR(check_term(in.hint_term(), epoch, "hint_term"));
  if (refusal == primary::Refusal::kLogEnds && in.hint_term() != 0) {
    return bad(
        fmt::format("AppendResponse log-ends at {} with hint_term {}: a log's end has no "
                    "term to check",
                    in.hint(), in.hint_term()));
  }
  r.hint_term = Term(in.hint_term());
  r.refused_index = LogIndex(in.refused_index());
  return primary::Body(r);
}

Result<std::vector<primary::TermStart>> decode_terms(const pb::InstallSnapshot& in, Epoch epoch) {
  if (in.term_terms_size() != in.term_firsts_size()) {
    return bad(fmt::format("InstallSnapshot has {} terms but {} term starts", in.term_terms_size(),
                           in.term_firsts_size()));
  }
  if (static_cast<size_t>(in.term_terms_size()) > kMaxWireTermStarts) {
    return bad(fmt::format("InstallSnapshot carries {} term starts, more than {}",
                           in.term_terms_size(), kMaxWireTermStarts));
  }
  std::vector<primary::TermStart> terms;
  terms.reserve(static_cast<size_t>(in.term_terms_size()));
  for (int i = 0; i < in.term_terms_size(); ++i) {
    const uint64_t t = in.term_terms(i);
    const uint64_t first = in.term_firsts(i);
    CHORUS_RETURN_IF_ERROR(check_term(t, epoch, "history term"));
    if (t == 0 || first == 0) return bad(fmt::format("InstallSnapshot term start {}@{}", t, first));
    if (!terms.empty() && (t <= terms.back().term.value() || first <= terms.back().first.value())) {
      return bad(fmt::format("InstallSnapshot term start {}@{} does not ascend", t, first));
    }
    terms.push_back({Term(t), LogIndex(first)});
  }
  return terms;
}

// The history's term at meta.index, where it covers it, is meta.term.
Status check_history(const primary::InstallSnapshot& s) {
  const core::SnapshotMeta& meta = s.snapshot.meta;
  if (s.last_index < meta.index) {
    return bad(fmt::format("InstallSnapshot last_index {} before the snapshot's {}",
                           s.last_index.value(), meta.index.value()));
  }
  if (!s.terms.empty() && s.terms.back().first > s.last_index) {
    return bad(fmt::format("InstallSnapshot term starts at {} beyond last_index {}",
                           s.terms.back().first.value(), s.last_index.value()));
  }
  auto it = std::upper_bound(s.terms.begin(), s.terms.end(), meta.index,
                             [](LogIndex x, const primary::TermStart& t) { return x < t.first; });
  if (it != s.terms.begin() && std::prev(it)->term != meta.term) {
    return bad(
        fmt::format("InstallSnapshot history gives term {} at the snapshot's index {}, "
                    "the snapshot says {}",
                    std::prev(it)->term.value(), meta.index.value(), meta.term.value()));
  }
  return Status::ok();
}

Result<primary::Body> decode_snapshot(const pb::InstallSnapshot& in, Epoch epoch,
                                      std::shared_ptr<const std::string> data) {
  if (epoch == Epoch(0)) return bad("InstallSnapshot from epoch 0, which has no primary");
  if (in.meta().index() == 0 || in.meta().term() == 0) {
    return bad(
        fmt::format("snapshot meta {}/{} is not a snapshot", in.meta().index(), in.meta().term()));
  }
  CHORUS_RETURN_IF_ERROR(check_term(in.meta().term(), epoch, "snapshot term"));
  if (!data) return bad("InstallSnapshot without its snapshot bytes");
  CHORUS_ASSIGN_OR_RETURN(std::vector<primary::TermStart> terms, decode_terms(in, epoch));
  primary::InstallSnapshot s{
      core::SnapshotRef{{LogIndex(in.meta().index()), Term(in.meta().term())}, std::move(data)},
      std::move(terms),
      LogIndex(in.last_index()),
      {}};
  if (in.has_refuted()) {
    if ((in.refuted().index() == 0) != (in.refuted().term() == 0)) {
      return bad(fmt::format("InstallSnapshot refutes {}/{}: only index 0 has term 0",
                             in.refuted().index(), in.refuted().term()));
    }
    CHORUS_RETURN_IF_ERROR(check_term(in.refuted().term(), epoch, "refuted term"));
    s.refuted = {LogIndex(in.refuted().index()), Term(in.refuted().term())};
  }
  CHORUS_RETURN_IF_ERROR(check_history(s));
  return primary::Body(std::move(s));
}

Result<primary::Body> decode_configuration(const pb::NewConfiguration& in, Epoch epoch) {
  if (in.epoch() == 0 || in.epoch() > epoch.value()) {
    return bad(fmt::format("NewConfiguration of epoch {} from a sender at epoch {}", in.epoch(),
                           epoch.value()));
  }
  if (static_cast<size_t>(in.members_size()) > kMaxConfigurationMembers) {
    return bad(fmt::format("NewConfiguration with {} members, more than {}", in.members_size(),
                           kMaxConfigurationMembers));
  }
  primary::Configuration c;
  c.epoch = Epoch(in.epoch());
  c.primary = NodeId(in.primary());
  c.version = in.version();
  for (uint64_t m : in.members()) {
    const NodeId n(m);
    if (n == kNoNode || std::find(c.members.begin(), c.members.end(), n) != c.members.end()) {
      return bad(fmt::format("NewConfiguration member {} is no node or named twice", m));
    }
    c.members.push_back(n);
  }
  if (c.primary == kNoNode ||
      std::find(c.members.begin(), c.members.end(), c.primary) == c.members.end()) {
    return bad(fmt::format("NewConfiguration primary {} is not a member", in.primary()));
  }
  if (static_cast<size_t>(in.learners_size()) > kMaxConfigurationMembers) {
    return bad(fmt::format("NewConfiguration with {} learners, more than {}", in.learners_size(),
                           kMaxConfigurationMembers));
  }
  for (uint64_t l : in.learners()) {
    const NodeId n(l);
    if (n == kNoNode || std::find(c.members.begin(), c.members.end(), n) != c.members.end() ||
        std::find(c.learners.begin(), c.learners.end(), n) != c.learners.end()) {
      return bad(fmt::format("NewConfiguration learner {} is no node, a member or named twice", l));
    }
    c.learners.push_back(n);
  }
  return primary::Body(primary::NewConfiguration{std::move(c)});
}

Result<primary::Body> decode_body(const pb::PrimaryMessage& in, Epoch epoch) {
  using P = pb::PrimaryMessage;
  switch (in.body_case()) {
    case P::kAppend:
      return decode_append(in.append(), epoch);
    case P::kAppendResponse:
      return decode_response(in.append_response(), epoch);
    case P::kNewConfiguration:
      return decode_configuration(in.new_configuration(), epoch);
    case P::kForward: {
      if (in.forward().data_size() == 0 ||
          static_cast<size_t>(in.forward().data_size()) > kMaxForwardedWrites) {
        return bad(fmt::format("Forward with {} writes (1 to {})", in.forward().data_size(),
                               kMaxForwardedWrites));
      }
      primary::Forward f;
      f.data.assign(in.forward().data().begin(), in.forward().data().end());
      return primary::Body(std::move(f));
    }
    case P::kInstallSnapshot:  // needs the bytes: decode_snapshot()
    case P::BODY_NOT_SET:
      break;
  }
  return bad("no primary-backup message, or one this version does not know");
}

}  // namespace

OutgoingMessage encode_primary_message(const primary::Message& m, GroupId group) {
  OutgoingMessage out;
  out.to = m.to;
  out.message.set_group_id(group.value());
  out.message.set_from(m.from.value());
  out.message.set_to(m.to.value());
  pb::PrimaryMessage* body = out.message.mutable_primary();
  body->set_epoch(m.epoch.value());
  std::visit([body](const auto& b) { encode(b, body); }, m.body);
  if (const auto* s = std::get_if<primary::InstallSnapshot>(&m.body)) out.snapshot = s->snapshot;
  return out;
}

Result<primary::Message> decode_primary_message(const IncomingMessage& in) {
  CHORUS_RETURN_IF_ERROR(check_envelope(in.message));
  const pb::PrimaryMessage& pm = in.message.primary();
  const Epoch epoch(pm.epoch());
  primary::Body body;
  if (pm.has_install_snapshot()) {
    CHORUS_ASSIGN_OR_RETURN(body, decode_snapshot(pm.install_snapshot(), epoch, in.snapshot_data));
  } else if (in.snapshot_data) {
    return bad("snapshot bytes attached to a message other than InstallSnapshot");
  } else {
    CHORUS_ASSIGN_OR_RETURN(body, decode_body(pm, epoch));
  }
  return primary::Message{NodeId(in.message.from()), NodeId(in.message.to()), epoch,
                          std::move(body)};
}

}  // namespace chorus::net
