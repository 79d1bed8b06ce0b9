#include "core/raft/hard_state.h"

#include "chorus/raft.pb.h"

namespace chorus::raft {

std::string encode_hard_state(const HardState& hs) {
  raftpb::HardState pb;
  pb.set_term(hs.term.value());
  pb.set_voted_for(hs.voted_for.value());
  pb.set_commit(hs.commit.value());
  return pb.SerializeAsString();
}

Result<HardState> decode_hard_state(std::string_view bytes) {
  raftpb::HardState pb;
  if (!pb.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::corruption("raft hard state: bytes do not parse as raftpb.HardState");
  }
  return HardState{Term(pb.term()), NodeId(pb.voted_for()), LogIndex(pb.commit())};
}

}  // namespace chorus::raft
