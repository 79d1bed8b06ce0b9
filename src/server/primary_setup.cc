#include "server/primary_setup.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "host/replica_host.h"

namespace chorus::server {
namespace {

constexpr uint64_t kMaxMs = 600'000;

struct OptionDef {
  std::string_view name;
  std::vector<std::string_view> strategies;
};

const std::vector<OptionDef>& option_defs() {
  static const std::vector<OptionDef> defs = {
      {"acks", {"semi-sync"}},
      {"ack_timeout_ms", {"semi-sync"}},
      {"on_timeout", {"semi-sync"}},
      {"prepare_timeout_ms", {"sync-all"}},
      {"on_replica_failure", {"sync-all"}},
      {"promotion", {"sync-all", "semi-sync", "async"}},
      {"lease_ms", {"sync-all", "semi-sync", "async"}},
      {"failure_timeout_ms", {"sync-all", "semi-sync", "async"}},
  };
  return defs;
}

Result<uint64_t> number(const std::map<std::string, std::string>& o, std::string_view name,
                        uint64_t dflt, uint64_t lo, uint64_t hi) {
  auto it = o.find(std::string(name));
  if (it == o.end()) return dflt;
  uint64_t v = 0;
  const std::string& s = it->second;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < lo || v > hi) {
    return Status::invalid_argument(
        fmt::format("option '{}': '{}' is not an integer in [{}, {}]", name, s, lo, hi));
  }
  return v;
}

Result<std::string> word(const std::map<std::string, std::string>& o, std::string_view name,
                         std::string_view dflt, std::vector<std::string_view> allowed) {
  auto it = o.find(std::string(name));
  if (it == o.end()) return std::string(dflt);
  if (std::find(allowed.begin(), allowed.end(), it->second) == allowed.end()) {
    std::string list;
    for (auto a : allowed) list += (list.empty() ? "" : " or ") + std::string(a);
    return Status::invalid_argument(
        fmt::format("option '{}': '{}' is not one of {}", name, it->second, list));
  }
  return it->second;
}

std::string_view default_promotion(std::string_view strategy) {
  return strategy == "async" ? "available" : "safe";
}

// Everything validate_primary_options checks, with the parsed values.
struct Parsed {
  uint64_t acks, ack_timeout_ms, prepare_timeout_ms, lease_ms, failure_timeout_ms;
  std::string on_timeout, on_replica_failure, promotion;
};

Result<Parsed> parse(std::string_view strategy, const std::map<std::string, std::string>& o) {
  const auto known = primary_option_names(strategy);
  for (const auto& [name, value] : o) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return Status::invalid_argument(fmt::format(
          "option '{}': unknown for strategy {} (its options: {})", name, strategy, list));
    }
  }
  Parsed p;
  CHORUS_ASSIGN_OR_RETURN(p.acks, number(o, "acks", 1, 1, 63));
  CHORUS_ASSIGN_OR_RETURN(p.ack_timeout_ms, number(o, "ack_timeout_ms", 500, 1, kMaxMs));
  CHORUS_ASSIGN_OR_RETURN(p.prepare_timeout_ms, number(o, "prepare_timeout_ms", 500, 1, kMaxMs));
  // At most a minute: the host delivers at most max_catch_up_ticks after a
  // stall, so a longer lease could end later in real time than the
  // manager's view of it.
  CHORUS_ASSIGN_OR_RETURN(p.lease_ms, number(o, "lease_ms", 150, 1, 60'000));
  CHORUS_ASSIGN_OR_RETURN(p.failure_timeout_ms, number(o, "failure_timeout_ms", 150, 1, kMaxMs));
  CHORUS_ASSIGN_OR_RETURN(p.on_timeout, word(o, "on_timeout", "error", {"error", "degrade"}));
  CHORUS_ASSIGN_OR_RETURN(p.on_replica_failure,
                          word(o, "on_replica_failure", "block", {"block", "reconfigure"}));
  CHORUS_ASSIGN_OR_RETURN(p.promotion,
                          word(o, "promotion", default_promotion(strategy), {"safe", "available"}));
  if (strategy == "async" && p.promotion == "safe") {
    return Status::invalid_argument(
        "option 'promotion': async acknowledges a write on the primary alone, so no promotion is "
        "safe; it accepts only 'available'");
  }
  return p;
}

primary::AckRule rule_of(std::string_view strategy) {
  if (strategy == "sync-all") return primary::AckRule::kSyncAll;
  if (strategy == "semi-sync") return primary::AckRule::kSemiSync;
  return primary::AckRule::kAsync;
}

}  // namespace

bool is_primary_strategy(std::string_view s) {
  return s == "sync-all" || s == "semi-sync" || s == "async";
}

std::vector<std::string_view> primary_option_names(std::string_view strategy) {
  std::vector<std::string_view> out;
  for (const auto& d : option_defs()) {
    if (std::find(d.strategies.begin(), d.strategies.end(), strategy) != d.strategies.end())
      out.push_back(d.name);
  }
  return out;
}

Status validate_primary_options(std::string_view strategy,
                                const std::map<std::string, std::string>& options) {
  return parse(strategy, options).status();
}

Result<PrimarySettings> primary_settings(std::string_view strategy,
                                         const std::map<std::string, std::string>& options,
                                         const NodeConfig& node) {
  CHORUS_ASSIGN_OR_RETURN(Parsed p, parse(strategy, options));
  const uint64_t tick = std::max<uint64_t>(1, node.raft.tick_ms);
  auto ticks = [&](uint64_t ms, std::string_view name, uint64_t at_least) -> Result<uint64_t> {
    const uint64_t t = ms / tick;
    if (t < at_least) {
      return Status::invalid_argument(
          fmt::format("option '{}': {} ms is under {} ticks of {} ms (raft.tick_ms)", name, ms,
                      at_least, tick));
    }
    return t;
  };
  if (!node.raft.check_quorum) {
    // The metadata leader renews leases; cut off from a majority it must
    // step down before a new leader's manager can appoint another primary.
    return Status::invalid_argument(fmt::format(
        "strategy: {} needs raft.check_quorum = true (the configuration manager's leases rely on "
        "the metadata leader stepping down when cut off)",
        strategy));
  }
  const size_t nodes = node.voter_ids().size();
  if (strategy == "semi-sync" && p.acks >= nodes) {
    return Status::invalid_argument(fmt::format(
        "option 'acks': {} backups cannot acknowledge in a cluster of {} nodes (at most {})",
        p.acks, nodes, nodes == 0 ? 0 : nodes - 1));
  }
  PrimarySettings s;
  primary::Options& e = s.engine;
  e.id = NodeId(node.node_id);
  e.acks = static_cast<uint32_t>(p.acks);
  CHORUS_ASSIGN_OR_RETURN(uint64_t prepare, ticks(p.prepare_timeout_ms, "prepare_timeout_ms", 1));
  CHORUS_ASSIGN_OR_RETURN(uint64_t ack, ticks(p.ack_timeout_ms, "ack_timeout_ms", 1));
  e.prepare_timeout_ticks = static_cast<uint32_t>(prepare);
  e.ack_timeout_ticks = static_cast<uint32_t>(ack);
  e.on_timeout =
      p.on_timeout == "degrade" ? primary::OnTimeout::kDegrade : primary::OnTimeout::kError;
  e.promotion_available = p.promotion == "available";
  e.heartbeat_interval_ticks = node.raft.heartbeat_interval_ticks;
  e.max_entries_per_append = node.raft.max_entries_per_append;
  e.max_bytes_per_append = node.raft.max_bytes_per_append;
  e.max_uncommitted_bytes = node.raft.max_uncommitted_bytes;
  e.snapshot_trailing_entries = node.raft.snapshot_trailing_entries;
  // Unreplicated entries a snapshot keeps so that a failover names what it
  // drops (docs/strategies.md, "Loss accounting"): ~100k entries of a few
  // hundred bytes, tens of MB, only while a backup lags that far.
  e.retain_unreplicated_entries = 100000;
  e.retain_unreplicated_bytes = 128u << 20;  // in memory, on the primary
  CHORUS_RETURN_IF_ERROR(e.validate());

  primary::ManagerOptions& m = s.manager;
  m.rule = rule_of(strategy);
  m.acks = e.acks;
  m.promotion = e.promotion_available ? primary::Promotion::kAvailable : primary::Promotion::kSafe;
  m.on_replica_failure = p.on_replica_failure == "reconfigure"
                             ? primary::OnReplicaFailure::kReconfigure
                             : primary::OnReplicaFailure::kBlock;
  CHORUS_ASSIGN_OR_RETURN(m.lease_ticks, ticks(p.lease_ms, "lease_ms", 4));
  // The host delivers at most max_catch_up_ticks after a stall; a lease
  // longer than that could outlive the manager's view of it (review).
  const uint64_t max_lease_ticks = host::HostOptions{}.max_catch_up_ticks / 2;
  if (m.lease_ticks > max_lease_ticks) {
    return Status::invalid_argument(
        fmt::format("option 'lease_ms': {} ms is {} ticks of {} ms; at most {} ticks", p.lease_ms,
                    m.lease_ticks, tick, max_lease_ticks));
  }
  CHORUS_ASSIGN_OR_RETURN(m.failure_timeout_ticks,
                          ticks(p.failure_timeout_ms, "failure_timeout_ms", 2));
  m.renew_interval_ticks = std::max<uint64_t>(1, m.lease_ticks / 4);
  m.promotion_wait_ticks = std::max<uint64_t>(2, m.failure_timeout_ticks / 2);
  CHORUS_RETURN_IF_ERROR(m.validate());
  return s;
}

}  // namespace chorus::server
