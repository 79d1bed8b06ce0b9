// A replica group for tests of the rules that read only a group's status,
// soft state and log terms (write_progress.h, progress_queries.h): no host,
// no engine, every field set by the test.
#pragma once

#include <map>

#include "server/replica_group.h"
#include "storage/kv/state_machine.h"

namespace chorus::server {

class FakeGroup final : public ReplicaGroup {
 public:
  std::string_view strategy() const override { return "fake"; }
  core::Capabilities capabilities() const override { return caps; }
  GroupId group_id() const override { return id; }
  Status init() override { return Status::ok(); }
  void start() override {}
  void stop() override {}
  Status receive(net::IncomingMessage) override { return Status::ok(); }
  void write(kvpb::Command, WriteDone) override {}
  void write_acked(kvpb::Command, WriteAckDone) override {}
  void read(host::Consistency, ReadDone) override {}
  bool read_ready_now(host::Consistency) override { return false; }
  const kv::StateMachine& state() const override { return sm_; }
  int64_t time_base_ms() const override { return 0; }
  bool healthy() const override { return healthy_; }
  Status failure() const override { return Status::ok(); }
  core::SoftState soft_state() const override { return st.engine.soft; }
  host::HostStatus status() const override { return st; }
  bool managed() const override { return managed_; }
  std::optional<Term> term_at(LogIndex i) const override {
    auto it = terms.find(i.value());
    if (it == terms.end()) return std::nullopt;
    return Term(it->second);
  }

  GroupId id{0};
  core::Capabilities caps;
  host::HostStatus st;
  std::map<uint64_t, uint64_t> terms;  // index -> term of the local log
  bool managed_ = false;               // a primary-backup group
  bool healthy_ = true;

 private:
  kv::MemoryStateMachine sm_;
};

// Node 1 leads term 2 of {1, 2, 3}; its log holds 1..10 (1..4 of term 1),
// commit index 8; n2 matches through 9, n3 through 6.
inline FakeGroup leader() {
  FakeGroup g;
  g.st.engine.soft = core::SoftState{core::Role::kLeader, Term(2), NodeId(1)};
  g.st.engine.commit_index = LogIndex(8);
  g.st.engine.last_index = LogIndex(10);
  g.st.engine.peers = {{NodeId(1), LogIndex(10), LogIndex(11)},
                       {NodeId(2), LogIndex(9), LogIndex(10)},
                       {NodeId(3), LogIndex(6), LogIndex(7)}};
  g.st.durable_index = LogIndex(10);
  for (uint64_t i = 1; i <= 10; ++i) g.terms[i] = i <= 4 ? 1 : 2;
  return g;
}

}  // namespace chorus::server
