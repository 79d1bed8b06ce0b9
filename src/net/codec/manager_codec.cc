#include "net/codec/manager_codec.h"

#include <fmt/format.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>

#include "chorus/manager.pb.h"
#include "net/codec/primary_codec.h"

namespace chorus::net {
namespace {

namespace pb = managerpb;

Status bad(std::string what) {
  return Status::corruption("manager message: " + std::move(what));
}

void encode_config(const primary::Configuration& c, pb::Configuration* out) {
  CHORUS_ASSERT(c.members.size() <= kMaxConfigurationMembers);
  out->set_epoch(c.epoch.value());
  out->set_primary(c.primary.value());
  for (NodeId n : c.members) out->add_members(n.value());
  out->set_lease_ticks(c.lease_ticks);
  out->set_lease_anchor_tick(c.lease_anchor_tick);
  out->set_version(c.version);
  CHORUS_ASSERT(c.learners.size() <= kMaxConfigurationMembers);
  for (NodeId n : c.learners) out->add_learners(n.value());
}

Status check_nodes(const google::protobuf::RepeatedField<uint64_t>& ids, const char* what) {
  if (static_cast<size_t>(ids.size()) > kMaxConfigurationMembers) {
    return bad(fmt::format("{}: {} nodes, at most {}", what, ids.size(), kMaxConfigurationMembers));
  }
  std::vector<uint64_t> sorted(ids.begin(), ids.end());
  std::sort(sorted.begin(), sorted.end());
  if (!sorted.empty() && sorted.front() == 0) return bad(fmt::format("{}: node id 0", what));
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return bad(fmt::format("{}: a node named twice", what));
  }
  return Status::ok();
}

// `allow_empty`: a stored state before the first appointment (epoch 0).
Result<primary::Configuration> decode_config(const pb::Configuration& in, bool allow_empty) {
  primary::Configuration c;
  if (allow_empty && in.epoch() == 0 && in.primary() == 0 && in.members_size() == 0) return c;
  if (in.epoch() == 0 || primary::Epoch(in.epoch()) > primary::kMaxEpoch) {
    return bad(fmt::format("configuration epoch {} out of range", in.epoch()));
  }
  CHORUS_RETURN_IF_ERROR(check_nodes(in.members(), "members"));
  if (std::find(in.members().begin(), in.members().end(), in.primary()) == in.members().end()) {
    return bad(fmt::format("primary {} is not a member", in.primary()));
  }
  c.epoch = primary::Epoch(in.epoch());
  c.primary = NodeId(in.primary());
  for (uint64_t n : in.members()) c.members.push_back(NodeId(n));
  CHORUS_RETURN_IF_ERROR(check_nodes(in.learners(), "learners"));
  for (uint64_t n : in.learners()) {
    if (std::find(in.members().begin(), in.members().end(), n) != in.members().end()) {
      return bad(fmt::format("learner {} is also a member", n));
    }
    c.learners.push_back(NodeId(n));
  }
  c.lease_ticks = in.lease_ticks();
  c.lease_anchor_tick = in.lease_anchor_tick();
  c.version = in.version();
  return c;
}

OutgoingMessage envelope(GroupId group, NodeId to, const pb::ManagerMessage& m) {
  OutgoingMessage out;
  out.to = to;
  out.message.set_group_id(group.value());
  *out.message.mutable_manager() = m;
  return out;
}

std::string deterministic(const google::protobuf::MessageLite& m) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  m.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

}  // namespace

OutgoingMessage encode_manager_report(GroupId group, NodeId to, const primary::ReplicaReport& r) {
  pb::ManagerMessage m;
  auto* p = m.mutable_report();
  p->set_epoch(r.epoch.value());
  p->set_last_term(r.last_term.value());
  p->set_last_index(r.last_index.value());
  p->set_commit(r.commit.value());
  p->set_sent_tick(r.sent_tick);
  p->set_round(r.round);
  p->set_not_serving(!r.serving);
  return envelope(group, to, m);
}

OutgoingMessage encode_manager_grant(GroupId group, NodeId to, const ManagerGrant& g) {
  pb::ManagerMessage m;
  auto* p = m.mutable_grant();
  if (g.config) encode_config(*g.config, p->mutable_config());
  p->set_round(g.round);
  return envelope(group, to, m);
}

Result<ManagerMessage> decode_manager_message(const IncomingMessage& in) {
  const auto& env = in.message;
  if (env.body_case() != wirepb::PeerMessage::kManager) return bad("not a manager message");
  if (env.from() == 0 || env.to() == 0 || env.from() == env.to()) {
    return bad(fmt::format("from {} to {}", env.from(), env.to()));
  }
  const pb::ManagerMessage& m = env.manager();
  switch (m.body_case()) {
    case pb::ManagerMessage::kReport: {
      const pb::Report& p = m.report();
      if (primary::Epoch(p.epoch()) > primary::kMaxEpoch) {
        return bad(fmt::format("report epoch {} out of range", p.epoch()));
      }
      if ((p.last_index() == 0) != (p.last_term() == 0)) {
        return bad("report: a last index without a term, or the reverse");
      }
      if (primary::epoch_of(Term(p.last_term())) > primary::Epoch(p.epoch())) {
        return bad(
            fmt::format("report: last term {} is of an epoch beyond {}", p.last_term(), p.epoch()));
      }
      primary::ReplicaReport r;
      r.node = NodeId(env.from());
      r.epoch = primary::Epoch(p.epoch());
      r.last_term = Term(p.last_term());
      r.last_index = LogIndex(p.last_index());
      r.commit = LogIndex(p.commit());
      r.sent_tick = p.sent_tick();
      r.round = p.round();
      r.serving = !p.not_serving();
      return ManagerMessage{r};
    }
    case pb::ManagerMessage::kGrant: {
      ManagerGrant g;
      g.round = m.grant().round();
      if (m.grant().has_config()) {
        CHORUS_ASSIGN_OR_RETURN(g.config, decode_config(m.grant().config(), false));
      }
      return ManagerMessage{g};
    }
    case pb::ManagerMessage::BODY_NOT_SET:
      break;
  }
  return bad("no known body");
}

std::string encode_manager_state(const primary::ManagerState& s) {
  pb::ManagerState p;
  encode_config(s.config, p.mutable_config());
  for (NodeId n : s.replicas) p.add_replicas(n.value());
  for (NodeId n : s.witnesses) p.add_witnesses(n.value());
  for (NodeId n : s.inherited) p.add_inherited(n.value());
  return deterministic(p);
}

Result<primary::ManagerState> decode_manager_state(std::string_view bytes) {
  pb::ManagerState p;
  if (!p.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::corruption("manager state: bytes do not parse as managerpb.ManagerState");
  }
  primary::ManagerState s;
  auto c = decode_config(p.config(), true);
  if (!c.is_ok()) return Status::corruption("manager state: " + c.status().message());
  s.config = std::move(c).value();
  if (Status st = check_nodes(p.replicas(), "replicas"); !st.is_ok()) {
    return Status::corruption("manager state: " + st.message());
  }
  if (Status st = check_nodes(p.witnesses(), "witnesses"); !st.is_ok()) {
    return Status::corruption("manager state: " + st.message());
  }
  if (Status st = check_nodes(p.inherited(), "inherited"); !st.is_ok()) {
    return Status::corruption("manager state: " + st.message());
  }
  if (p.replicas_size() == 0) return Status::corruption("manager state: no replicas");
  for (uint64_t n : p.replicas()) s.replicas.push_back(NodeId(n));
  for (uint64_t n : p.witnesses()) s.witnesses.push_back(NodeId(n));
  for (uint64_t n : p.inherited()) s.inherited.push_back(NodeId(n));
  for (NodeId m : s.config.members) {
    if (std::find(s.replicas.begin(), s.replicas.end(), m) == s.replicas.end()) {
      return Status::corruption("manager state: a member is not a replica");
    }
  }
  return s;
}

}  // namespace chorus::net
