#include "net/codec/paxos_codec.h"

#include <fmt/format.h>

#include <memory>
#include <string>
#include <utility>
#include <variant>

#include "chorus/paxos.pb.h"

namespace chorus::net {
namespace {

namespace pb = paxospb;

Status bad(std::string what) {
  return Status::corruption("bad paxos message: " + std::move(what));
}

// ---- Encoding -----------------------------------------------------------------

void encode_ballot(const paxos::Ballot& b, pb::Ballot* out) {
  out->set_round(b.round);
  out->set_node(b.node.value());
}

void encode_value(const paxos::Value& v, pb::Value* out) {
  encode_ballot(v.origin, out->mutable_origin());
  out->set_type(v.type == core::EntryType::kNoop ? pb::VALUE_NOOP : pb::VALUE_NORMAL);
  out->set_data(v.data);
}

// `with_ballot` false in an Accept: the Accept's ballot is every proposal's.
void encode_pvalues(const std::vector<paxos::PValue>& in,
                    google::protobuf::RepeatedPtrField<pb::PValue>* out, bool with_ballot) {
  out->Reserve(static_cast<int>(in.size()));
  for (const paxos::PValue& pv : in) {
    pb::PValue* p = out->Add();
    p->set_slot(pv.slot.value());
    if (with_ballot) encode_ballot(pv.ballot, p->mutable_ballot());
    encode_value(pv.value, p->mutable_value());
  }
}

void encode(const paxos::Prepare& p, pb::PaxosMessage* out) {
  auto* m = out->mutable_prepare();
  encode_ballot(p.ballot, m->mutable_ballot());
  m->set_first_slot(p.first_slot.value());
}

void encode(const paxos::Promise& p, pb::PaxosMessage* out) {
  auto* m = out->mutable_promise();
  encode_ballot(p.ballot, m->mutable_ballot());
  encode_pvalues(p.accepted, m->mutable_accepted(), /*with_ballot=*/true);
  m->set_compacted_through(p.compacted_through.value());
}

void encode(const paxos::Accept& a, pb::PaxosMessage* out) {
  auto* m = out->mutable_accept();
  encode_ballot(a.ballot, m->mutable_ballot());
  encode_pvalues(a.proposals, m->mutable_proposals(), /*with_ballot=*/false);
  m->set_commit(a.commit.value());
}

void encode(const paxos::Accepted& a, pb::PaxosMessage* out) {
  auto* m = out->mutable_accepted();
  encode_ballot(a.ballot, m->mutable_ballot());
  m->mutable_slots()->Reserve(static_cast<int>(a.slots.size()));
  for (LogIndex s : a.slots) m->add_slots(s.value());
}

void encode(const paxos::Nack& n, pb::PaxosMessage* out) {
  auto* m = out->mutable_nack();
  encode_ballot(n.ballot, m->mutable_ballot());
  encode_ballot(n.promised, m->mutable_promised());
}

void encode(const paxos::Heartbeat& h, pb::PaxosMessage* out) {
  auto* m = out->mutable_heartbeat();
  encode_ballot(h.ballot, m->mutable_ballot());
  m->set_commit(h.commit.value());
}

void encode(const paxos::CatchupRequest& c, pb::PaxosMessage* out) {
  auto* m = out->mutable_catchup_request();
  m->set_first(c.first.value());
  m->set_last(c.last.value());
}

void encode(const paxos::Decide& d, pb::PaxosMessage* out) {
  encode_pvalues(d.chosen, out->mutable_decide()->mutable_chosen(), /*with_ballot=*/true);
}

void encode(const paxos::InstallSnapshot& s, pb::PaxosMessage* out) {
  // The bytes travel beside the message: OutgoingMessage::snapshot.
  auto* meta = out->mutable_install_snapshot()->mutable_meta();
  meta->set_index(s.snapshot.meta.index.value());
  meta->set_term(s.snapshot.meta.term.value());
}

// ---- Decoding -----------------------------------------------------------------

// Where a ballot appears, and what it may be there.
enum class BallotUse {
  kReal,          // round >= 1, not the chosen marker
  kRealOrChosen,  // a reported value's ballot
  kChosen,        // a Decide's
};

Result<paxos::Ballot> decode_ballot(const pb::Ballot& in, BallotUse use, const char* what) {
  const paxos::Ballot b{in.round(), NodeId(in.node())};
  if (b == paxos::kChosenBallot) {
    if (use == BallotUse::kReal) return bad(fmt::format("{}: the chosen marker", what));
    return b;
  }
  if (use == BallotUse::kChosen) {
    return bad(fmt::format("{}: ballot {}.{} where the chosen marker was due", what, in.round(),
                           in.node()));
  }
  if (in.round() == 0 || in.round() > paxos::kMaxRound ||
      in.node() >= (uint64_t{1} << paxos::kNodeBits)) {
    return bad(fmt::format("{}: {}.{} is no ballot", what, in.round(), in.node()));
  }
  return b;
}

// A proposer's own ballot: names `who` (the sender, or the receiver of an answer).
Result<paxos::Ballot> decode_own_ballot(const pb::Ballot& in, NodeId who, const char* what) {
  CHORUS_ASSIGN_OR_RETURN(paxos::Ballot b, decode_ballot(in, BallotUse::kReal, what));
  if (b.node != who) {
    return bad(fmt::format("{}: ballot {}.{} is not node {}'s", what, b.round, b.node.value(),
                           who.value()));
  }
  return b;
}

Result<paxos::Value> decode_value(const pb::Value& in) {
  paxos::Value v;
  CHORUS_ASSIGN_OR_RETURN(v.origin, decode_ballot(in.origin(), BallotUse::kReal, "value origin"));
  switch (in.type()) {
    case pb::VALUE_NORMAL:
      v.type = core::EntryType::kNormal;
      break;
    case pb::VALUE_NOOP:
      v.type = core::EntryType::kNoop;
      break;
    default:
      return bad(fmt::format("value of unknown type {}", static_cast<int>(in.type())));
  }
  v.data = in.data();
  return v;
}

// `fixed`: the ballot every pvalue has (an Accept's); otherwise each is
// decoded with `use`.
Result<std::vector<paxos::PValue>> decode_pvalues(
    const google::protobuf::RepeatedPtrField<pb::PValue>& in, std::optional<paxos::Ballot> fixed,
    BallotUse use, const char* what) {
  std::vector<paxos::PValue> out;
  out.reserve(static_cast<size_t>(in.size()));
  uint64_t last_slot = 0;
  for (const pb::PValue& p : in) {
    if (p.slot() <= last_slot) {
      return bad(fmt::format("{}: slot {} after slot {} (slots >= 1, ascending)", what, p.slot(),
                             last_slot));
    }
    last_slot = p.slot();
    paxos::PValue pv;
    pv.slot = LogIndex(p.slot());
    if (fixed) {
      if (p.has_ballot()) return bad(fmt::format("{}: slot {} repeats the ballot", what, p.slot()));
      pv.ballot = *fixed;
    } else {
      CHORUS_ASSIGN_OR_RETURN(pv.ballot, decode_ballot(p.ballot(), use, what));
    }
    CHORUS_ASSIGN_OR_RETURN(pv.value, decode_value(p.value()));
    out.push_back(std::move(pv));
  }
  return out;
}

Result<paxos::Body> decode_prepare(const pb::Prepare& in, NodeId from) {
  paxos::Prepare p;
  CHORUS_ASSIGN_OR_RETURN(p.ballot, decode_own_ballot(in.ballot(), from, "Prepare"));
  if (in.first_slot() == 0) return bad("Prepare from slot 0");
  p.first_slot = LogIndex(in.first_slot());
  return paxos::Body(std::move(p));
}

Result<paxos::Body> decode_promise(const pb::Promise& in, NodeId to) {
  paxos::Promise p;
  CHORUS_ASSIGN_OR_RETURN(p.ballot, decode_own_ballot(in.ballot(), to, "Promise"));
  CHORUS_ASSIGN_OR_RETURN(p.accepted, decode_pvalues(in.accepted(), std::nullopt,
                                                     BallotUse::kRealOrChosen, "Promise accepted"));
  p.compacted_through = LogIndex(in.compacted_through());
  return paxos::Body(std::move(p));
}

Result<paxos::Body> decode_accept(const pb::Accept& in, NodeId from) {
  paxos::Accept a;
  CHORUS_ASSIGN_OR_RETURN(a.ballot, decode_own_ballot(in.ballot(), from, "Accept"));
  CHORUS_ASSIGN_OR_RETURN(
      a.proposals, decode_pvalues(in.proposals(), a.ballot, BallotUse::kReal, "Accept proposals"));
  a.commit = LogIndex(in.commit());
  return paxos::Body(std::move(a));
}

Result<paxos::Body> decode_accepted(const pb::Accepted& in, NodeId to) {
  paxos::Accepted a;
  CHORUS_ASSIGN_OR_RETURN(a.ballot, decode_own_ballot(in.ballot(), to, "Accepted"));
  a.slots.reserve(static_cast<size_t>(in.slots_size()));
  for (uint64_t s : in.slots()) {
    if (s == 0) return bad("Accepted slot 0");
    a.slots.push_back(LogIndex(s));
  }
  return paxos::Body(std::move(a));
}

Result<paxos::Body> decode_nack(const pb::Nack& in, NodeId to) {
  paxos::Nack n;
  CHORUS_ASSIGN_OR_RETURN(n.ballot, decode_own_ballot(in.ballot(), to, "Nack"));
  CHORUS_ASSIGN_OR_RETURN(n.promised,
                          decode_ballot(in.promised(), BallotUse::kReal, "Nack promised"));
  if (!(n.ballot < n.promised)) {
    return bad(fmt::format("Nack of {}.{} by a promise {}.{} that is not higher", n.ballot.round,
                           n.ballot.node.value(), n.promised.round, n.promised.node.value()));
  }
  return paxos::Body(n);
}

Result<paxos::Body> decode_snapshot(const pb::InstallSnapshot& in,
                                    std::shared_ptr<const std::string> data) {
  if (in.meta().index() == 0) return bad("InstallSnapshot at slot 0");
  if (!data) return bad("InstallSnapshot without its snapshot bytes");
  const core::SnapshotMeta meta{LogIndex(in.meta().index()), Term(in.meta().term())};
  return paxos::Body(paxos::InstallSnapshot{core::SnapshotRef{meta, std::move(data)}});
}

Result<paxos::Body> decode_body(const pb::PaxosMessage& in, NodeId from, NodeId to) {
  using M = pb::PaxosMessage;
  switch (in.body_case()) {
    case M::kPrepare:
      return decode_prepare(in.prepare(), from);
    case M::kPromise:
      return decode_promise(in.promise(), to);
    case M::kAccept:
      return decode_accept(in.accept(), from);
    case M::kAccepted:
      return decode_accepted(in.accepted(), to);
    case M::kNack:
      return decode_nack(in.nack(), to);
    case M::kHeartbeat: {
      paxos::Heartbeat h;
      CHORUS_ASSIGN_OR_RETURN(h.ballot,
                              decode_own_ballot(in.heartbeat().ballot(), from, "Heartbeat"));
      h.commit = LogIndex(in.heartbeat().commit());
      return paxos::Body(h);
    }
    case M::kCatchupRequest: {
      const auto& c = in.catchup_request();
      if (c.first() == 0 || c.last() < c.first()) {
        return bad(fmt::format("CatchupRequest {}..{}", c.first(), c.last()));
      }
      return paxos::Body(paxos::CatchupRequest{LogIndex(c.first()), LogIndex(c.last())});
    }
    case M::kDecide: {
      paxos::Decide d;
      CHORUS_ASSIGN_OR_RETURN(d.chosen, decode_pvalues(in.decide().chosen(), std::nullopt,
                                                       BallotUse::kChosen, "Decide"));
      return paxos::Body(std::move(d));
    }
    case M::kInstallSnapshot:
      break;  // needs the bytes: decode_snapshot()
    case M::BODY_NOT_SET:
      break;
  }
  return bad("no Paxos message, or one this version does not know");
}

Status check_envelope(const wirepb::PeerMessage& in) {
  if (in.body_case() != wirepb::PeerMessage::kPaxos) return bad("not a Paxos message");
  if (in.from() == 0 || in.to() == 0) {
    return bad(fmt::format("from {} to {}: node id 0 is no node", in.from(), in.to()));
  }
  if (in.from() == in.to()) return bad(fmt::format("from {} to itself", in.from()));
  return Status::ok();
}

}  // namespace

OutgoingMessage encode_paxos_message(const paxos::Message& m, GroupId group) {
  OutgoingMessage out;
  out.to = m.to;
  out.message.set_group_id(group.value());
  out.message.set_from(m.from.value());
  out.message.set_to(m.to.value());
  pb::PaxosMessage* body = out.message.mutable_paxos();
  std::visit([body](const auto& b) { encode(b, body); }, m.body);
  if (const auto* s = std::get_if<paxos::InstallSnapshot>(&m.body)) out.snapshot = s->snapshot;
  return out;
}

Result<paxos::Message> decode_paxos_message(const IncomingMessage& in) {
  CHORUS_RETURN_IF_ERROR(check_envelope(in.message));
  const pb::PaxosMessage& pm = in.message.paxos();
  const NodeId from(in.message.from());
  const NodeId to(in.message.to());
  paxos::Body body;
  if (pm.has_install_snapshot()) {
    CHORUS_ASSIGN_OR_RETURN(body, decode_snapshot(pm.install_snapshot(), in.snapshot_data));
  } else if (in.snapshot_data) {
    return bad("snapshot bytes attached to a message other than InstallSnapshot");
  } else {
    CHORUS_ASSIGN_OR_RETURN(body, decode_body(pm, from, to));
  }
  return paxos::Message{from, to, std::move(body)};
}

}  // namespace chorus::net
