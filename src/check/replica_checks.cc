#include "check/replica_checks.h"

#include <fmt/format.h>

namespace chorus::check {

std::optional<std::string> AppliedLog::record(uint64_t node, const EntryId& e) {
  auto [it, inserted] = by_index_.try_emplace(e.index, e);
  if (inserted) {
    max_index_ = std::max(max_index_, e.index);
    return std::nullopt;
  }
  if (it->second == e) return std::nullopt;
  return fmt::format(
      "n{} applied index {} term {}, but index {} was applied with term {} elsewhere: a "
      "committed entry changed",
      node, e.index, e.term, e.index, it->second.term);
}

std::optional<EntryId> AppliedLog::at(uint64_t index) const {
  auto it = by_index_.find(index);
  if (it == by_index_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> check_log_matching(const std::vector<LogView>& logs) {
  std::vector<std::string> out;
  for (size_t a = 0; a < logs.size(); ++a) {
    for (size_t b = a + 1; b < logs.size(); ++b) {
      std::unordered_map<uint64_t, const EntryId*> in_b;
      for (const auto& e : logs[b].entries) in_b[e.index] = &e;
      bool matched_above = false;
      for (auto it = logs[a].entries.rbegin(); it != logs[a].entries.rend(); ++it) {
        auto f = in_b.find(it->index);
        if (f == in_b.end()) continue;
        if (f->second->term == it->term) matched_above = true;
        if (matched_above && !(*f->second == *it)) {
          out.push_back(
              fmt::format("log matching: n{} and n{} share a later entry but differ at index {}",
                          logs[a].node, logs[b].node, it->index));
          break;
        }
      }
    }
  }
  return out;
}

std::vector<std::string> check_acknowledged_present(const std::vector<LogView>& logs,
                                                    const std::map<uint64_t, uint64_t>& acked) {
  std::vector<std::string> out;
  for (const auto& log : logs) {
    if (log.entries.empty()) continue;
    const uint64_t first = log.entries.front().index;
    for (const auto& [index, hash] : acked) {
      if (index < first) continue;  // covered by the snapshot (checked by convergence)
      const uint64_t offset = index - first;
      const bool same = offset < log.entries.size() && log.entries[offset].index == index &&
                        log.entries[offset].hash == hash;
      if (!same) {
        out.push_back(
            fmt::format("acknowledged write at index {} is missing from n{}'s log after recovery",
                        index, log.node));
        break;
      }
    }
  }
  return out;
}

std::vector<std::string> check_committed_match_applied(const std::vector<LogView>& logs,
                                                       const AppliedLog& applied) {
  std::vector<std::string> out;
  for (const auto& log : logs) {
    if (!log.up) continue;
    for (const auto& e : log.entries) {
      if (e.index > log.commit) break;
      auto a = applied.at(e.index);
      if (a && a->term != e.term) {
        out.push_back(
            fmt::format("n{} holds committed index {} with term {}, applied elsewhere with term {}",
                        log.node, e.index, e.term, a->term));
        break;
      }
    }
  }
  return out;
}

std::vector<std::string> check_converged(const std::vector<ReplicaState>& replicas) {
  std::vector<std::string> out;
  for (size_t i = 1; i < replicas.size(); ++i) {
    const auto& a = replicas[0];
    const auto& b = replicas[i];
    if (a.applied == b.applied && a.digest != b.digest) {
      out.push_back(
          fmt::format("convergence: n{} and n{} applied the same index {} but hold different data",
                      b.node, a.node, a.applied));
    }
  }
  return out;
}

}  // namespace chorus::check
