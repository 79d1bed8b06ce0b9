#include "core/raft/messages.h"

#include <fmt/format.h>

namespace chorus::raft {
namespace {
template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// (clang 14 needs the deduction guide that C++20 makes implicit.)
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;
}  // namespace

std::string_view message_name(const Body& b) {
  return std::visit(
      Overloaded{
          [](const RequestVote& m) -> std::string_view {
            return m.pre_vote ? "PreVote" : "RequestVote";
          },
          [](const RequestVoteResponse& m) -> std::string_view {
            return m.pre_vote ? "PreVoteResponse" : "RequestVoteResponse";
          },
          [](const AppendEntries&) -> std::string_view { return "AppendEntries"; },
          [](const AppendEntriesResponse&) -> std::string_view { return "AppendEntriesResponse"; },
          [](const Heartbeat&) -> std::string_view { return "Heartbeat"; },
          [](const HeartbeatResponse&) -> std::string_view { return "HeartbeatResponse"; },
          [](const InstallSnapshot&) -> std::string_view { return "InstallSnapshot"; },
          [](const ForwardProposals&) -> std::string_view { return "ForwardProposals"; },
          [](const ReadIndexRequest&) -> std::string_view { return "ReadIndexRequest"; },
          [](const ReadIndexResponse&) -> std::string_view { return "ReadIndexResponse"; },
      },
      b);
}

std::string describe(const Message& m) {
  std::string head = fmt::format("{} {}->{} t{}", message_name(m.body), m.from.value(),
                                 m.to.value(), m.term.value());
  std::string tail = std::visit(
      Overloaded{
          [](const RequestVote& v) {
            return fmt::format("last={}/{}", v.last_log_index.value(), v.last_log_term.value());
          },
          [](const RequestVoteResponse& v) {
            return std::string(v.granted ? "granted" : "rejected");
          },
          [](const AppendEntries& a) {
            return fmt::format("prev={}/{} n={} commit={}", a.prev_log_index.value(),
                               a.prev_log_term.value(), a.entries.size(), a.leader_commit.value());
          },
          [](const AppendEntriesResponse& r) {
            if (r.success) return fmt::format("ok match={}", r.match_index.value());
            return fmt::format("reject at={} hint={}/{}", r.rejected_index.value(),
                               r.conflict_index.value(), r.conflict_term.value());
          },
          [](const Heartbeat& h) {
            return fmt::format("commit={} round={}", h.commit.value(), h.read_round);
          },
          [](const HeartbeatResponse& h) { return fmt::format("round={}", h.read_round); },
          [](const InstallSnapshot& s) {
            return fmt::format("snap={}/{}", s.snapshot.meta.index.value(),
                               s.snapshot.meta.term.value());
          },
          [](const ForwardProposals& p) { return fmt::format("n={}", p.data.size()); },
          [](const ReadIndexRequest& r) { return fmt::format("ctx={}", r.ctx); },
          [](const ReadIndexResponse& r) {
            return fmt::format("ctx={} index={}", r.ctx, r.index.value());
          },
      },
      m.body);
  return head + " " + tail;
}

}  // namespace chorus::raft
