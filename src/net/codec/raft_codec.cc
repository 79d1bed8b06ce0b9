#include "net/codec/raft_codec.h"

#include <fmt/format.h>

#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <variant>

namespace chorus::net {
namespace {

Status bad(std::string what) {
  return Status::corruption("bad peer message: " + std::move(what));
}

void encode_meta(const core::SnapshotMeta& meta, wirepb::SnapshotMeta* out) {
  out->set_index(meta.index.value());
  out->set_term(meta.term.value());
}

Result<core::SnapshotMeta> decode_meta(const wirepb::SnapshotMeta& in, Term msg_term) {
  if (in.index() == 0 || in.term() == 0) {
    return bad(fmt::format("snapshot meta {}/{} is not a snapshot", in.index(), in.term()));
  }
  if (in.term() > msg_term.value()) {
    return bad(fmt::format("snapshot term {} above message term {}", in.term(), msg_term.value()));
  }
  return core::SnapshotMeta{LogIndex(in.index()), Term(in.term())};
}

// One encode() per Raft message, each filling its field of the RaftMessage.
void encode(const raft::RequestVote& v, wirepb::RaftMessage* out) {
  auto* p = out->mutable_request_vote();
  p->set_last_log_index(v.last_log_index.value());
  p->set_last_log_term(v.last_log_term.value());
  p->set_pre_vote(v.pre_vote);
}

void encode(const raft::RequestVoteResponse& v, wirepb::RaftMessage* out) {
  auto* p = out->mutable_request_vote_response();
  p->set_granted(v.granted);
  p->set_pre_vote(v.pre_vote);
}

void encode(const raft::AppendEntries& a, wirepb::RaftMessage* out) {
  auto* p = out->mutable_append_entries();
  p->set_prev_log_index(a.prev_log_index.value());
  p->set_prev_log_term(a.prev_log_term.value());
  p->set_leader_commit(a.leader_commit.value());
  p->mutable_entries()->Reserve(static_cast<int>(a.entries.size()));
  for (const core::Entry& e : a.entries) {
    auto* pe = p->add_entries();
    pe->set_term(e.term.value());
    pe->set_index(e.index.value());
    pe->set_type(e.type == core::EntryType::kNoop ? wirepb::ENTRY_NOOP : wirepb::ENTRY_NORMAL);
    pe->set_data(e.data);
  }
}

void encode(const raft::AppendEntriesResponse& r, wirepb::RaftMessage* out) {
  auto* p = out->mutable_append_entries_response();
  p->set_success(r.success);
  p->set_match_index(r.match_index.value());
  p->set_rejected_index(r.rejected_index.value());
  p->set_conflict_term(r.conflict_term.value());
  p->set_conflict_index(r.conflict_index.value());
}

void encode(const raft::Heartbeat& h, wirepb::RaftMessage* out) {
  auto* p = out->mutable_heartbeat();
  p->set_commit(h.commit.value());
  p->set_read_round(h.read_round);
}

void encode(const raft::HeartbeatResponse& h, wirepb::RaftMessage* out) {
  out->mutable_heartbeat_response()->set_read_round(h.read_round);
}

void encode(const raft::InstallSnapshot& s, wirepb::RaftMessage* out) {
  // The bytes travel beside the message: OutgoingMessage::snapshot.
  encode_meta(s.snapshot.meta, out->mutable_install_snapshot()->mutable_meta());
}

void encode(const raft::ForwardProposals& f, wirepb::RaftMessage* out) {
  auto* p = out->mutable_forward_proposals();
  p->mutable_data()->Reserve(static_cast<int>(f.data.size()));
  for (const std::string& d : f.data) p->add_data(d);
}

void encode(const raft::ReadIndexRequest& r, wirepb::RaftMessage* out) {
  out->mutable_read_index_request()->set_ctx(r.ctx);
}

void encode(const raft::ReadIndexResponse& r, wirepb::RaftMessage* out) {
  auto* p = out->mutable_read_index_response();
  p->set_ctx(r.ctx);
  p->set_index(r.index.value());
}

Status check_envelope(const wirepb::PeerMessage& in) {
  if (in.body_case() != wirepb::PeerMessage::kRaft) return bad("not a Raft message");
  if (in.from() == 0 || in.to() == 0) {
    return bad(fmt::format("from {} to {}: node id 0 is no node", in.from(), in.to()));
  }
  if (in.from() == in.to()) return bad(fmt::format("from {} to itself", in.from()));
  return Status::ok();
}

Status check_term(uint64_t inner, Term msg_term, const char* what) {
  if (inner > msg_term.value()) {
    return bad(fmt::format("{} {} above message term {}", what, inner, msg_term.value()));
  }
  return Status::ok();
}

Result<raft::Body> decode_append(const wirepb::AppendEntries& in, Term term) {
  CHORUS_RETURN_IF_ERROR(check_term(in.prev_log_term(), term, "prev_log_term"));
  const uint64_t n = static_cast<uint64_t>(in.entries_size());
  if (in.prev_log_index() > std::numeric_limits<uint64_t>::max() - n) {
    return bad("AppendEntries indexes overflow");
  }
  raft::AppendEntries a{
      LogIndex(in.prev_log_index()), Term(in.prev_log_term()), {}, LogIndex(in.leader_commit())};
  a.entries.reserve(n);
  uint64_t expected_index = in.prev_log_index() + 1;
  uint64_t last_term = in.prev_log_term();
  for (const wirepb::Entry& e : in.entries()) {
    if (e.index() != expected_index) {
      return bad(fmt::format("AppendEntries entry index {} where {} was due (not contiguous)",
                             e.index(), expected_index));
    }
    if (e.term() < last_term) {
      return bad(fmt::format("AppendEntries entry {} term {} below the previous term {}", e.index(),
                             e.term(), last_term));
    }
    CHORUS_RETURN_IF_ERROR(check_term(e.term(), term, "entry term"));
    core::EntryType type;
    switch (e.type()) {
      case wirepb::ENTRY_NORMAL:
        type = core::EntryType::kNormal;
        break;
      case wirepb::ENTRY_NOOP:
        type = core::EntryType::kNoop;
        break;
      default:
        return bad(fmt::format("AppendEntries entry {} has unknown type {}", e.index(),
                               static_cast<int>(e.type())));
    }
    a.entries.push_back(core::Entry{Term(e.term()), LogIndex(e.index()), type, e.data()});
    ++expected_index;
    last_term = e.term();
  }
  return raft::Body(std::move(a));
}

Result<raft::Body> decode_snapshot(const wirepb::InstallSnapshot& in, Term term,
                                   std::shared_ptr<const std::string> data) {
  CHORUS_ASSIGN_OR_RETURN(core::SnapshotMeta meta, decode_meta(in.meta(), term));
  if (!data) return bad("InstallSnapshot without its snapshot bytes");
  return raft::Body(raft::InstallSnapshot{core::SnapshotRef{meta, std::move(data)}});
}

Result<raft::Body> decode_body(const wirepb::RaftMessage& in, Term term) {
  using R = wirepb::RaftMessage;
  switch (in.body_case()) {
    case R::kRequestVote: {
      const auto& v = in.request_vote();
      CHORUS_RETURN_IF_ERROR(check_term(v.last_log_term(), term, "last_log_term"));
      return raft::Body(
          raft::RequestVote{LogIndex(v.last_log_index()), Term(v.last_log_term()), v.pre_vote()});
    }
    case R::kRequestVoteResponse:
      return raft::Body(raft::RequestVoteResponse{in.request_vote_response().granted(),
                                                  in.request_vote_response().pre_vote()});
    case R::kAppendEntries:
      return decode_append(in.append_entries(), term);
    case R::kAppendEntriesResponse: {
      const auto& r = in.append_entries_response();
      CHORUS_RETURN_IF_ERROR(check_term(r.conflict_term(), term, "conflict_term"));
      return raft::Body(raft::AppendEntriesResponse{
          r.success(), LogIndex(r.match_index()), LogIndex(r.rejected_index()),
          Term(r.conflict_term()), LogIndex(r.conflict_index())});
    }
    case R::kHeartbeat:
      return raft::Body(
          raft::Heartbeat{LogIndex(in.heartbeat().commit()), in.heartbeat().read_round()});
    case R::kHeartbeatResponse:
      return raft::Body(raft::HeartbeatResponse{in.heartbeat_response().read_round()});
    case R::kInstallSnapshot:
      break;  // needs the bytes: decode_snapshot()
    case R::kForwardProposals: {
      const auto& d = in.forward_proposals().data();
      return raft::Body(raft::ForwardProposals{std::vector<std::string>(d.begin(), d.end())});
    }
    case R::kReadIndexRequest:
      return raft::Body(raft::ReadIndexRequest{in.read_index_request().ctx()});
    case R::kReadIndexResponse:
      return raft::Body(raft::ReadIndexResponse{in.read_index_response().ctx(),
                                                LogIndex(in.read_index_response().index())});
    case R::BODY_NOT_SET:
      break;
  }
  return bad("no Raft message, or one this version does not know");
}

}  // namespace

OutgoingMessage encode_raft_message(const raft::Message& m, GroupId group) {
  OutgoingMessage out;
  out.to = m.to;
  out.message.set_group_id(group.value());
  out.message.set_from(m.from.value());
  out.message.set_to(m.to.value());
  wirepb::RaftMessage* body = out.message.mutable_raft();
  body->set_term(m.term.value());
  std::visit([body](const auto& b) { encode(b, body); }, m.body);
  if (const auto* s = std::get_if<raft::InstallSnapshot>(&m.body)) out.snapshot = s->snapshot;
  return out;
}

Result<raft::Message> decode_raft_message(const IncomingMessage& in) {
  CHORUS_RETURN_IF_ERROR(check_envelope(in.message));
  const wirepb::RaftMessage& rm = in.message.raft();
  const Term term(rm.term());
  raft::Body body;
  if (rm.has_install_snapshot()) {
    CHORUS_ASSIGN_OR_RETURN(body, decode_snapshot(rm.install_snapshot(), term, in.snapshot_data));
  } else if (in.snapshot_data) {
    return bad("snapshot bytes attached to a message other than InstallSnapshot");
  } else {
    CHORUS_ASSIGN_OR_RETURN(body, decode_body(rm, term));
  }
  return raft::Message{NodeId(in.message.from()), NodeId(in.message.to()), term, std::move(body)};
}

}  // namespace chorus::net
