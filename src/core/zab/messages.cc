#include "core/zab/messages.h"

#include <fmt/format.h>

#include "base/overloaded.h"

namespace chorus::zab {

std::string to_string(Zxid z) {
  return fmt::format("0x{:x}.{}", z.epoch, z.counter);
}

std::string_view server_state_name(ServerState s) {
  switch (s) {
    case ServerState::kLooking:
      return "LOOKING";
    case ServerState::kFollowing:
      return "FOLLOWING";
    case ServerState::kLeading:
      return "LEADING";
  }
  CHORUS_UNREACHABLE();
}

std::string_view sync_mode_name(SyncMode m) {
  switch (m) {
    case SyncMode::kDiff:
      return "DIFF";
    case SyncMode::kTrunc:
      return "TRUNC";
    case SyncMode::kSnap:
      return "SNAP";
  }
  CHORUS_UNREACHABLE();
}

std::string_view message_name(const Body& b) {
  static constexpr std::string_view kNames[] = {
      "Notification", "FollowerInfo", "NewEpoch", "AckEpoch", "NewLeader", "NewLeaderAck",
      "UpToDate",     "Proposal",     "Ack",      "Commit",   "Ping"};
  static_assert(std::size(kNames) == std::variant_size_v<Body>);
  return kNames[b.index()];
}

namespace {

std::string entry_range(const std::vector<core::Entry>& v) {
  if (v.empty()) return "none";
  return fmt::format("{}..{} @{}..{}", to_string(Zxid::from_term(v.front().term)),
                     to_string(Zxid::from_term(v.back().term)), v.front().index.value(),
                     v.back().index.value());
}

}  // namespace

std::string describe(const Message& m) {
  const std::string head =
      fmt::format("{} {}->{}", message_name(m.body), m.from.value(), m.to.value());
  return std::visit(
      Overloaded{
          [&](const Notification& n) {
            return fmt::format("{} {} round={} vote=(n{}, {}, peer_epoch={})", head,
                               server_state_name(n.state), n.election_epoch, n.vote.leader.value(),
                               to_string(n.vote.zxid), n.vote.peer_epoch);
          },
          [&](const FollowerInfo& f) {
            return fmt::format("{} accepted_epoch={} session={}", head, f.accepted_epoch,
                               f.session);
          },
          [&](const NewEpoch& e) {
            return fmt::format("{} e={} session={}", head, e.epoch, e.session);
          },
          [&](const AckEpoch& a) {
            return fmt::format("{} e={} session={} current_epoch={} last={} @{}{}", head, a.epoch,
                               a.session, a.current_epoch, to_string(a.last_zxid),
                               a.last_index.value(), a.already_accepted ? " (not counted)" : "");
          },
          [&](const NewLeader& n) {
            return fmt::format("{} e={} session={} {} trunc=@{} entries={} commit={}{}", head,
                               n.epoch, n.session, sync_mode_name(n.mode), n.trunc_index.value(),
                               entry_range(n.entries), n.commit.value(),
                               n.complete ? "" : " partial");
          },
          [&](const NewLeaderAck& a) {
            return fmt::format("{} e={} session={} last=@{}", head, a.epoch, a.session,
                               a.last_index.value());
          },
          [&](const UpToDate& u) {
            return fmt::format("{} e={} session={} commit={}", head, u.epoch, u.session,
                               u.commit.value());
          },
          [&](const Proposal& p) {
            return fmt::format("{} e={} {}", head, p.epoch, entry_range(p.entries));
          },
          [&](const Ack& a) {
            return fmt::format("{} e={} {} @{}", head, a.epoch, to_string(a.zxid), a.index.value());
          },
          [&](const Commit& c) {
            return fmt::format("{} e={} {} @{}", head, c.epoch, to_string(c.zxid), c.index.value());
          },
          [&](const Ping& p) {
            return fmt::format("{} e={} commit={} last=@{}", head, p.epoch, p.commit.value(),
                               p.last_index.value());
          },
      },
      m.body);
}

std::string encode_durable_state(const DurableState& ds) {
  std::string out(24, '\0');
  for (int i = 0; i < 8; ++i) {
    out[i] = static_cast<char>((ds.accepted_epoch >> (8 * i)) & 0xff);
    out[8 + i] = static_cast<char>((ds.current_epoch >> (8 * i)) & 0xff);
    out[16 + i] = static_cast<char>((ds.incarnation >> (8 * i)) & 0xff);
  }
  return out;
}

Result<DurableState> decode_durable_state(std::string_view bytes) {
  if (bytes.size() != 24) {
    return Status::corruption(fmt::format("zab durable state: {} bytes, want 24", bytes.size()));
  }
  DurableState ds;
  for (int i = 0; i < 8; ++i) {
    ds.accepted_epoch |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
    ds.current_epoch |= uint64_t{static_cast<uint8_t>(bytes[8 + i])} << (8 * i);
    ds.incarnation |= uint64_t{static_cast<uint8_t>(bytes[16 + i])} << (8 * i);
  }
  if (ds.accepted_epoch > kMaxEpoch || ds.current_epoch > ds.accepted_epoch ||
      ds.incarnation > kMaxIncarnation) {
    return Status::corruption(
        "zab durable state: epoch or incarnation out of range, or current > accepted");
  }
  return ds;
}

}  // namespace chorus::zab
