#include "core/paxos/messages.h"

#include <fmt/format.h>

#include "base/overloaded.h"

namespace chorus::paxos {

namespace {

std::string ballot_str(Ballot b) {
  if (b == kChosenBallot) return "chosen";
  return fmt::format("{}.{}", b.round, b.node.value());
}

std::string slot_range(const std::vector<PValue>& v) {
  if (v.empty()) return "none";
  return fmt::format("{}..{}", v.front().slot.value(), v.back().slot.value());
}

}  // namespace

std::string_view message_name(const Body& b) {
  static constexpr std::string_view kNames[] = {"Prepare",        "Promise", "Accept",
                                                "Accepted",       "Nack",    "Heartbeat",
                                                "CatchupRequest", "Decide",  "InstallSnapshot"};
  static_assert(std::size(kNames) == std::variant_size_v<Body>);
  return kNames[b.index()];
}

std::string describe(const Message& m) {
  const std::string head =
      fmt::format("{} {}->{}", message_name(m.body), m.from.value(), m.to.value());
  return std::visit(
      Overloaded{
          [&](const Prepare& p) {
            return fmt::format("{} b={} first={}", head, ballot_str(p.ballot),
                               p.first_slot.value());
          },
          [&](const Promise& p) {
            return fmt::format("{} b={} accepted={} compacted={}", head, ballot_str(p.ballot),
                               slot_range(p.accepted), p.compacted_through.value());
          },
          [&](const Accept& a) {
            return fmt::format("{} b={} slots={} commit={}", head, ballot_str(a.ballot),
                               slot_range(a.proposals), a.commit.value());
          },
          [&](const Accepted& a) {
            return fmt::format("{} b={} n={}", head, ballot_str(a.ballot), a.slots.size());
          },
          [&](const Nack& n) {
            return fmt::format("{} b={} promised={}", head, ballot_str(n.ballot),
                               ballot_str(n.promised));
          },
          [&](const Heartbeat& h) {
            return fmt::format("{} b={} commit={}", head, ballot_str(h.ballot), h.commit.value());
          },
          [&](const CatchupRequest& c) {
            return fmt::format("{} {}..{}", head, c.first.value(), c.last.value());
          },
          [&](const Decide& d) { return fmt::format("{} slots={}", head, slot_range(d.chosen)); },
          [&](const InstallSnapshot& s) {
            return fmt::format("{} index={}", head, s.snapshot.meta.index.value());
          },
      },
      m.body);
}

std::string encode_durable_state(const DurableState& ds) {
  const uint64_t written = ds.written_through.value();
  std::string out(written == 0 ? 16 : 24, '\0');
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>((ds.promised.round >> (8 * i)) & 0xff);
    out[8 + i] = static_cast<char>((ds.promised.node.value() >> (8 * i)) & 0xff);
    if (written != 0) out[16 + i] = static_cast<char>((written >> (8 * i)) & 0xff);
  }
  return out;
}

Result<DurableState> decode_durable_state(std::string_view bytes) {
  // A new node: the host's metadata file was never written (the simulator
  // found that every fresh node refused to start).
  if (bytes.empty()) return DurableState{};
  if (bytes.size() != 16 && bytes.size() != 24) {
    return Status::corruption(
        fmt::format("paxos durable state: {} bytes, want 16 or 24", bytes.size()));
  }
  uint64_t round = 0;
  uint64_t node = 0;
  uint64_t written = 0;
  for (int i = 0; i < 8; ++i) {
    round |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
    node |= uint64_t{static_cast<uint8_t>(bytes[8 + i])} << (8 * i);
    if (bytes.size() == 24) written |= uint64_t{static_cast<uint8_t>(bytes[16 + i])} << (8 * i);
  }
  if (round > kMaxRound || node >= (uint64_t{1} << kNodeBits)) {
    return Status::corruption("paxos durable state: ballot out of range");
  }
  return DurableState{Ballot{round, NodeId(node)}, LogIndex(written)};
}

}  // namespace chorus::paxos
