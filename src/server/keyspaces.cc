#include "server/keyspaces.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "host/registry.h"
#include "server/primary_setup.h"

namespace chorus::server {
namespace {

// Strategies of the design (docs/design.md) that are not built yet: named
// here so that asking for one says "not built yet", not "unknown".
constexpr std::array<std::string_view, 3> kPlannedStrategies = {"zab", "eventual", "hybrid"};

// The options each built strategy accepts (raft and paxos have none: their
// settings are the node's [raft] section).
std::vector<std::string_view> options_of(std::string_view strategy) {
  return primary_option_names(strategy);
}

bool name_char_ok(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

std::string list(const std::vector<std::string_view>& names) {
  std::string out;
  for (auto n : names) out += (out.empty() ? "" : ", ") + std::string(n);
  return out.empty() ? "none" : out;
}

}  // namespace

std::vector<std::string_view> built_strategies() {
  return host::strategy_names();
}

Status validate_keyspace(const KeyspaceSpec& spec) {
  if (spec.name.empty() || spec.name.size() > kMaxKeyspaceNameBytes ||
      !std::all_of(spec.name.begin(), spec.name.end(), name_char_ok)) {
    return Status::invalid_argument(fmt::format(
        "name: keyspace names are 1 to {} characters from [A-Za-z0-9_-]", kMaxKeyspaceNameBytes));
  }
  if (spec.name == kDefaultKeyspaceName) {
    return Status::invalid_argument(
        "name: 'default' is the keyspace of keys no prefix matches; it cannot be created");
  }
  if (spec.prefix.empty()) return Status::invalid_argument("prefix: must not be empty");
  if (spec.prefix.size() > kMaxPrefixBytes) {
    return Status::invalid_argument(fmt::format("prefix: at most {} bytes", kMaxPrefixBytes));
  }
  const auto built = built_strategies();
  if (std::find(built.begin(), built.end(), spec.strategy) == built.end()) {
    const bool planned = std::find(kPlannedStrategies.begin(), kPlannedStrategies.end(),
                                   spec.strategy) != kPlannedStrategies.end();
    return Status::invalid_argument(fmt::format("strategy: '{}' is {} (built: {})", spec.strategy,
                                                planned ? "not built yet" : "not a strategy",
                                                list(built)));
  }
  if (is_primary_strategy(spec.strategy)) {
    return validate_primary_options(spec.strategy, spec.options);
  }
  const auto known = options_of(spec.strategy);
  for (const auto& [option, value] : spec.options) {
    if (std::find(known.begin(), known.end(), option) == known.end()) {
      return Status::invalid_argument(
          fmt::format("option '{}': unknown for strategy {} (its options: {})", option,
                      spec.strategy, list(known)));
    }
  }
  return Status::ok();
}

Result<KeyspaceTable> KeyspaceTable::parse(std::string_view bytes) {
  KeyspaceTable t;
  if (bytes.empty()) {
    t.t_.set_next_group_id(kFirstKeyspaceGroup);
    return t;
  }
  if (!t.t_.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return Status::corruption("keyspace table: bytes do not parse as metapb.KeyspaceTable");
  }
  if (t.t_.next_group_id() < kFirstKeyspaceGroup) {
    return Status::corruption("keyspace table: next_group_id below the first keyspace group");
  }
  return t;
}

std::string KeyspaceTable::serialize() const {
  std::string out;
  // Deterministic: map fields in key order, so equal tables are equal bytes
  // (the compare-and-set compares bytes).
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  t_.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

Result<KeyspaceTable> KeyspaceTable::with(const KeyspaceSpec& spec) const {
  CHORUS_RETURN_IF_ERROR(validate_keyspace(spec));
  if (find(spec.name) != nullptr) {
    return Status::invalid_argument(fmt::format("name: keyspace '{}' exists", spec.name));
  }
  for (const auto& d : t_.keyspaces()) {
    if (d.prefix() == spec.prefix) {
      return Status::invalid_argument(
          fmt::format("prefix: '{}' is the prefix of keyspace '{}'", spec.prefix, d.name()));
    }
  }
  if (static_cast<size_t>(t_.keyspaces_size()) >= kMaxKeyspaces) {
    return Status::invalid_argument(fmt::format("name: at most {} keyspaces", kMaxKeyspaces));
  }
  KeyspaceTable next = *this;
  metapb::KeyspaceDef* d = next.t_.add_keyspaces();
  d->set_name(spec.name);
  d->set_prefix(spec.prefix);
  d->set_strategy(spec.strategy);
  for (const auto& [k, v] : spec.options) (*d->mutable_options())[k] = v;
  d->set_group_id(next.t_.next_group_id());
  next.t_.set_next_group_id(next.t_.next_group_id() + 1);
  next.t_.set_version(t_.version() + 1);
  auto* ks = next.t_.mutable_keyspaces();
  std::sort(ks->begin(), ks->end(),
            [](const auto& a, const auto& b) { return a.name() < b.name(); });
  return next;
}

Result<KeyspaceTable> KeyspaceTable::without(std::string_view name) const {
  KeyspaceTable next = *this;
  auto* ks = next.t_.mutable_keyspaces();
  auto it = std::find_if(ks->begin(), ks->end(), [&](const auto& d) { return d.name() == name; });
  if (it == ks->end()) {
    return Status::not_found(fmt::format("no keyspace '{}'", name));
  }
  ks->erase(it);
  next.t_.set_version(t_.version() + 1);
  return next;
}

const metapb::KeyspaceDef* KeyspaceTable::find(std::string_view name) const {
  for (const auto& d : t_.keyspaces()) {
    if (d.name() == name) return &d;
  }
  return nullptr;
}

const metapb::KeyspaceDef* KeyspaceTable::route(std::string_view key) const {
  const metapb::KeyspaceDef* best = nullptr;
  for (const auto& d : t_.keyspaces()) {
    if (key.starts_with(d.prefix()) &&
        (best == nullptr || d.prefix().size() > best->prefix().size()))
      best = &d;
  }
  return best;
}

GroupId KeyspaceTable::group_of(std::string_view key) const {
  const auto* d = route(key);
  return d == nullptr ? kDefaultGroup : GroupId(d->group_id());
}

std::string_view KeyspaceTable::name_of(std::string_view key) const {
  const auto* d = route(key);
  return d == nullptr ? kDefaultKeyspaceName : std::string_view(d->name());
}

KeyspaceSpec spec_of(const metapb::KeyspaceDef& d) {
  KeyspaceSpec s;
  s.name = d.name();
  s.prefix = d.prefix();
  s.strategy = d.strategy();
  for (const auto& [k, v] : d.options()) s.options[k] = v;
  return s;
}

}  // namespace chorus::server
