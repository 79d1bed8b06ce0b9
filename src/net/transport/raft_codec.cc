#include "net/transport/raft_codec.h"

#include <fmt/format.h>

#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <variant>

namespace chorus::net {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// Spelled out for clang < 17, which lacks aggregate deduction (the fuzz build).
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

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

void encode_body(const raft::Body& body, wirepb::PeerMessage* out) {
  std::visit(Overloaded{
                 [&](const raft::RequestVote& v) {
                   auto* p = out->mutable_request_vote();
                   p->set_last_log_index(v.last_log_index.value());
                   p->set_last_log_term(v.last_log_term.value());
                   p->set_pre_vote(v.pre_vote);
                 },
                 [&](const raft::RequestVoteResponse& v) {
                   auto* p = out->mutable_request_vote_response();
                   p->set_granted(v.granted);
                   p->set_pre_vote(v.pre_vote);
                 },
                 [&](const raft::AppendEntries& a) {
                   auto* p = out->mutable_append_entries();
                   p->set_prev_log_index(a.prev_log_index.value());
                   p->set_prev_log_term(a.prev_log_term.value());
                   p->set_leader_commit(a.leader_commit.value());
                   p->mutable_entries()->Reserve(static_cast<int>(a.entries.size()));
                   for (const core::Entry& e : a.entries) {
                     auto* pe = p->add_entries();
                     pe->set_term(e.term.value());
                     pe->set_index(e.index.value());
                     pe->set_type(e.type == core::EntryType::kNoop ? wirepb::ENTRY_NOOP
                                                                   : wirepb::ENTRY_NORMAL);
                     pe->set_data(e.data);
                   }
                 },
                 [&](const raft::AppendEntriesResponse& r) {
                   auto* p = out->mutable_append_entries_response();
                   p->set_success(r.success);
                   p->set_match_index(r.match_index.value());
                   p->set_rejected_index(r.rejected_index.value());
                   p->set_conflict_term(r.conflict_term.value());
                   p->set_conflict_index(r.conflict_index.value());
                 },
                 [&](const raft::Heartbeat& h) {
                   auto* p = out->mutable_heartbeat();
                   p->set_commit(h.commit.value());
                   p->set_read_round(h.read_round);
                 },
                 [&](const raft::HeartbeatResponse& h) {
                   out->mutable_heartbeat_response()->set_read_round(h.read_round);
                 },
                 [&](const raft::InstallSnapshot& s) {
                   CHORUS_ASSERT_MSG(s.snapshot.data != nullptr,
                                     "InstallSnapshot without bytes must be streamed, not encoded");
                   auto* p = out->mutable_install_snapshot();
                   encode_meta(s.snapshot.meta, p->mutable_meta());
                   p->set_data(*s.snapshot.data);
                 },
                 [&](const raft::ForwardProposals& f) {
                   auto* p = out->mutable_forward_proposals();
                   p->mutable_data()->Reserve(static_cast<int>(f.data.size()));
                   for (const std::string& d : f.data) p->add_data(d);
                 },
                 [&](const raft::ReadIndexRequest& r) {
                   out->mutable_read_index_request()->set_ctx(r.ctx);
                 },
                 [&](const raft::ReadIndexResponse& r) {
                   auto* p = out->mutable_read_index_response();
                   p->set_ctx(r.ctx);
                   p->set_index(r.index.value());
                 },
             },
             body);
}

Status check_envelope(const wirepb::PeerMessage& in) {
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

Result<raft::Body> decode_body(const wirepb::PeerMessage& in, Term term) {
  using P = wirepb::PeerMessage;
  switch (in.body_case()) {
    case P::kRequestVote: {
      const auto& v = in.request_vote();
      CHORUS_RETURN_IF_ERROR(check_term(v.last_log_term(), term, "last_log_term"));
      return raft::Body(
          raft::RequestVote{LogIndex(v.last_log_index()), Term(v.last_log_term()), v.pre_vote()});
    }
    case P::kRequestVoteResponse:
      return raft::Body(raft::RequestVoteResponse{in.request_vote_response().granted(),
                                                  in.request_vote_response().pre_vote()});
    case P::kAppendEntries:
      return decode_append(in.append_entries(), term);
    case P::kAppendEntriesResponse: {
      const auto& r = in.append_entries_response();
      CHORUS_RETURN_IF_ERROR(check_term(r.conflict_term(), term, "conflict_term"));
      return raft::Body(raft::AppendEntriesResponse{
          r.success(), LogIndex(r.match_index()), LogIndex(r.rejected_index()),
          Term(r.conflict_term()), LogIndex(r.conflict_index())});
    }
    case P::kHeartbeat:
      return raft::Body(
          raft::Heartbeat{LogIndex(in.heartbeat().commit()), in.heartbeat().read_round()});
    case P::kHeartbeatResponse:
      return raft::Body(raft::HeartbeatResponse{in.heartbeat_response().read_round()});
    case P::kInstallSnapshot: {
      CHORUS_ASSIGN_OR_RETURN(core::SnapshotMeta meta,
                              decode_meta(in.install_snapshot().meta(), term));
      return raft::Body(raft::InstallSnapshot{core::SnapshotRef{
          meta, std::make_shared<const std::string>(in.install_snapshot().data())}});
    }
    case P::kForwardProposals: {
      const auto& d = in.forward_proposals().data();
      return raft::Body(raft::ForwardProposals{std::vector<std::string>(d.begin(), d.end())});
    }
    case P::kReadIndexRequest:
      return raft::Body(raft::ReadIndexRequest{in.read_index_request().ctx()});
    case P::kReadIndexResponse:
      return raft::Body(raft::ReadIndexResponse{in.read_index_response().ctx(),
                                                LogIndex(in.read_index_response().index())});
    case P::kSnapshotChunk:
      return bad("a snapshot chunk is not a whole Raft message");
    case P::BODY_NOT_SET:
      break;
  }
  return bad("no body, or a body this version does not know");
}

}  // namespace

void encode_peer_message(const raft::Message& m, wirepb::PeerMessage* out, uint32_t group_id) {
  out->Clear();
  out->set_group_id(group_id);
  out->set_from(m.from.value());
  out->set_to(m.to.value());
  out->set_term(m.term.value());
  encode_body(m.body, out);
}

Result<raft::Message> decode_peer_message(const wirepb::PeerMessage& in) {
  CHORUS_RETURN_IF_ERROR(check_envelope(in));
  const Term term(in.term());
  CHORUS_ASSIGN_OR_RETURN(raft::Body body, decode_body(in, term));
  return raft::Message{NodeId(in.from()), NodeId(in.to()), term, std::move(body)};
}

Status validate_snapshot_chunk(const wirepb::PeerMessage& in) {
  CHORUS_RETURN_IF_ERROR(check_envelope(in));
  if (in.body_case() != wirepb::PeerMessage::kSnapshotChunk) return bad("not a snapshot chunk");
  const wirepb::SnapshotChunk& c = in.snapshot_chunk();
  if (c.transfer_id() == 0) return bad("snapshot chunk with transfer id 0");
  auto meta = decode_meta(c.meta(), Term(in.term()));
  if (!meta.is_ok()) return meta.status();
  const uint64_t size = c.data().size();
  if (c.offset() > std::numeric_limits<uint64_t>::max() - size) {
    return bad("snapshot chunk offset overflows");
  }
  const uint64_t end = c.offset() + size;
  if (c.total_bytes() != 0) {
    if (end > c.total_bytes()) {
      return bad(fmt::format("snapshot chunk ends at {} past the announced {} bytes", end,
                             c.total_bytes()));
    }
    if (c.last() && end != c.total_bytes()) {
      return bad(
          fmt::format("last snapshot chunk ends at {}, announced {} bytes", end, c.total_bytes()));
    }
  }
  return Status::ok();
}

}  // namespace chorus::net
