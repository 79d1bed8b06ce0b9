#include "server/routed_state.h"

#include <algorithm>

#include "base/assert.h"

namespace chorus::server {

Result<std::optional<std::string>> RoutedState::read(std::string_view key) const {
  auto it = groups_.find(table_.group_of(key));
  if (it == groups_.end()) return std::optional<std::string>();
  return it->second->read(key);
}

// Counts what each group holds. A key shadowed in default by a newer
// keyspace's prefix is counted there too (counting only routed keys would
// cost a scan of every group).
Result<uint64_t> RoutedState::key_count() const {
  uint64_t n = 0;
  for (const auto& [gid, sm] : groups_) {
    CHORUS_ASSIGN_OR_RETURN(uint64_t k, sm->key_count());
    n += k;
  }
  return n;
}

Result<kv::StateMachine::ScanPage> RoutedState::scan(std::string_view start, size_t limit) const {
  limit = std::max<size_t>(1, limit);
  std::vector<std::pair<std::string, std::string>> merged;
  std::string next;  // the smallest key some group has not returned yet
  for (const auto& [gid, sm] : groups_) {
    CHORUS_ASSIGN_OR_RETURN(ScanPage page, sm->scan(start, limit));
    for (auto& item : page.items) {
      if (table_.group_of(item.first) == gid) merged.push_back(std::move(item));
    }
    if (!page.next.empty() && (next.empty() || page.next < next)) next = page.next;
  }
  std::sort(merged.begin(), merged.end());
  // Every group's page is complete only below its own `next`: beyond the
  // smallest of them, another group may hold keys not fetched yet.
  if (!next.empty()) {
    std::erase_if(merged, [&](const auto& item) { return item.first >= next; });
  }
  ScanPage out;
  if (merged.size() > limit) {
    // Everything from merged[limit] on is returned by a later page.
    next = merged[limit].first;
    merged.resize(limit);
  }
  out.items = std::move(merged);
  out.next = std::move(next);
  return out;
}

// The latest replicated time among the groups (for TTL arithmetic).
int64_t RoutedState::now_ms() const {
  int64_t t = 0;
  for (const auto& [gid, sm] : groups_) t = std::max(t, sm->now_ms());
  return t;
}

Result<std::vector<kvpb::Result>> RoutedState::apply_batch(std::span<const Entry>) {
  CHORUS_ASSERT_MSG(false, "RoutedState is read-only");
  return Status::invalid_argument("read-only");
}

Status RoutedState::save_snapshot(const ChunkSink&) const {
  return Status::invalid_argument("RoutedState has no snapshot of its own");
}

Status RoutedState::load_snapshot(const ChunkSource&) {
  return Status::invalid_argument("RoutedState is read-only");
}

}  // namespace chorus::server
