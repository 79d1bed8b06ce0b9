// The keyspace table: what a keyspace may be, how keys route, and how the
// table changes (keyspaces.h).
#include "server/keyspaces.h"

#include <gtest/gtest.h>

#include <map>

#include "server/primary_setup.h"
#include "server/routed_state.h"
#include "storage/kv/state_machine.h"

namespace chorus::server {
namespace {

KeyspaceSpec ks(std::string name, std::string prefix, std::string strategy = "raft") {
  return KeyspaceSpec{std::move(name), std::move(prefix), std::move(strategy), {}};
}

KeyspaceTable table_of(const std::vector<KeyspaceSpec>& specs) {
  KeyspaceTable t;
  for (const auto& s : specs) {
    auto next = t.with(s);
    EXPECT_TRUE(next.is_ok()) << next.status().to_string();
    t = std::move(next).value();
  }
  return t;
}

TEST(KeyspaceSpecs, EachProblemIsNamed) {
  struct Case {
    KeyspaceSpec spec;
    const char* error;  // "" = valid
  };
  const Case cases[] = {
      {ks("orders", "orders:"), ""},
      {ks("", "x:"), "name: keyspace names are 1 to 64"},
      {ks("a b", "x:"), "name: keyspace names are 1 to 64"},
      {ks(std::string(65, 'a'), "x:"), "name: keyspace names are 1 to 64"},
      {ks("default", "x:"), "name: 'default' is the keyspace of keys no prefix matches"},
      {ks("orders", ""), "prefix: must not be empty"},
      {ks("orders", std::string(257, 'p')), "prefix: at most 256 bytes"},
      {ks("orders", "o:", "paxos"), ""},
      {KeyspaceSpec{"orders", "o:", "paxos", {{"acks", "1"}}},
       "option 'acks': unknown for strategy paxos (its options: none)"},
      {ks("orders", "o:", "zab"),
       "strategy: 'zab' is not built yet (built: raft, paxos, sync-all, semi-sync, async)"},
      {ks("orders", "o:", "quorum"),
       "strategy: 'quorum' is not a strategy (built: raft, paxos, sync-all, semi-sync, async)"},
      {ks("orders", "o:", "semi-sync"), ""},
      {KeyspaceSpec{"orders", "o:", "semi-sync", {{"acks", "2"}, {"on_timeout", "degrade"}}}, ""},
      {KeyspaceSpec{"orders", "o:", "semi-sync", {{"acks", "0"}}},
       "option 'acks': '0' is not an integer in [1, 63]"},
      {KeyspaceSpec{"orders", "o:", "semi-sync", {{"on_timeout", "panic"}}},
       "option 'on_timeout': 'panic' is not one of error or degrade"},
      {KeyspaceSpec{"orders", "o:", "async", {{"promotion", "safe"}}},
       "option 'promotion': async acknowledges a write on the primary alone"},
      {KeyspaceSpec{"orders", "o:", "sync-all", {{"acks", "1"}}},
       "option 'acks': unknown for strategy sync-all"},
      {KeyspaceSpec{"orders", "o:", "sync-all", {{"lease_ms", "x"}}},
       "option 'lease_ms': 'x' is not an integer"},
      {KeyspaceSpec{"orders", "o:", "raft", {{"acks", "1"}}},
       "option 'acks': unknown for strategy raft (its options: none)"},
  };
  for (const auto& c : cases) {
    Status st = validate_keyspace(c.spec);
    if (std::string(c.error).empty()) {
      EXPECT_TRUE(st.is_ok()) << c.spec.name << ": " << st.to_string();
    } else {
      EXPECT_EQ(st.message().rfind(c.error, 0), 0u) << st.message();
    }
  }
}

TEST(KeyspaceTable, TheLongestPrefixWinsAndEverythingElseIsDefault) {
  const KeyspaceTable t = table_of({ks("orders", "orders:"), ks("eu", "orders:eu:"), ks("u", "u")});
  EXPECT_EQ(t.name_of("orders:1"), "orders");
  EXPECT_EQ(t.name_of("orders:eu:7"), "eu");
  EXPECT_EQ(t.name_of("orders"), "default") << "a prefix must match whole";
  EXPECT_EQ(t.name_of("user:1"), "u");
  EXPECT_EQ(t.name_of(""), "default");
  EXPECT_EQ(t.group_of("zzz"), kDefaultGroup);
  EXPECT_NE(t.group_of("orders:1"), t.group_of("orders:eu:1"));
}

TEST(KeyspaceTable, ChangesAreValidatedAgainstTheTableTheyReplace) {
  KeyspaceTable t = table_of({ks("orders", "orders:")});
  EXPECT_EQ(t.version(), 1u);
  EXPECT_EQ(t.proto().keyspaces(0).group_id(), kFirstKeyspaceGroup);
  EXPECT_EQ(t.with(ks("orders", "o2:")).status().message(), "name: keyspace 'orders' exists");
  EXPECT_EQ(t.with(ks("o2", "orders:")).status().message(),
            "prefix: 'orders:' is the prefix of keyspace 'orders'");
  auto dropped = t.without("orders");
  ASSERT_TRUE(dropped.is_ok());
  EXPECT_EQ(dropped->version(), 2u);
  EXPECT_EQ(dropped->name_of("orders:1"), "default");
  EXPECT_EQ(t.without("nope").status().code(), StatusCode::kNotFound);
  // A group id is never reused, so a dropped keyspace's messages in flight
  // can never reach a new keyspace's group.
  auto again = dropped->with(ks("orders", "orders:"));
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->proto().keyspaces(0).group_id(), kFirstKeyspaceGroup + 1);
}

TEST(KeyspaceTable, BytesRoundTripAndEqualTablesAreEqualBytes) {
  KeyspaceTable t = table_of({ks("b", "b:"), ks("a", "a:")});
  auto back = KeyspaceTable::parse(t.serialize());
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(back->serialize(), t.serialize());
  EXPECT_EQ(back->proto().keyspaces(0).name(), "a") << "sorted by name";
  EXPECT_TRUE(KeyspaceTable::parse("").is_ok()) << "never written: empty";
  EXPECT_EQ(KeyspaceTable::parse("\xff\xff").status().code(), StatusCode::kCorruption);
}

TEST(KeyspaceTable, AtMostMaxKeyspaces) {
  KeyspaceTable t;
  for (size_t i = 0; i < kMaxKeyspaces; ++i) {
    t = std::move(t.with(ks("k" + std::to_string(i), "p" + std::to_string(i) + ":"))).value();
  }
  EXPECT_EQ(t.with(ks("one-more", "x:")).status().message(), "name: at most 1024 keyspaces");
}

// Reads across keyspaces see one state: each key from its own group, and a
// scan merged in key order without keys another keyspace shadows.
TEST(RoutedState, ReadsAndScansSpanGroups) {
  const KeyspaceTable t = table_of({ks("orders", "orders:")});
  kv::MemoryStateMachine def;
  kv::MemoryStateMachine orders;
  def.apply(LogIndex(1), kv::encode(kv::make_put("a", "1")));
  def.apply(LogIndex(2), kv::encode(kv::make_put("orders:stale", "shadowed")));
  def.apply(LogIndex(3), kv::encode(kv::make_put("z", "26")));
  orders.apply(LogIndex(1), kv::encode(kv::make_put("orders:1", "x")));
  orders.apply(LogIndex(2), kv::encode(kv::make_put("orders:2", "y")));
  RoutedState all(t, {{kDefaultGroup, &def}, {t.group_of("orders:1"), &orders}});
  EXPECT_EQ(all.read("orders:1").value(), std::optional<std::string>("x"));
  EXPECT_EQ(all.read("orders:stale").value(), std::nullopt) << "it routes to orders";
  EXPECT_EQ(all.read("a").value(), std::optional<std::string>("1"));
  std::vector<std::string> seen;
  std::string start;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = all.scan(start, 2);
    ASSERT_TRUE(page.is_ok());
    for (auto& [k, v] : page->items) seen.push_back(k);
    if (page->next.empty()) break;
    start = page->next;
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "orders:1", "orders:2", "z"}));
}

}  // namespace
}  // namespace chorus::server

namespace chorus::server {
namespace {

NodeConfig three_nodes() {
  NodeConfig c;
  c.node_id = 1;
  c.peers = {PeerConfig{2, {"127.0.0.1", 2}}, PeerConfig{3, {"127.0.0.1", 3}}};
  c.raft.tick_ms = 10;
  return c;
}

// Keyspace options become the engine's and the manager's settings in ticks
// of the node; what only the node knows (its cluster size, its tick) is
// checked there, naming the option.
TEST(PrimarySettings, OptionsBecomeTicksAndNodeLimitsAreChecked) {
  auto s = primary_settings("semi-sync", {{"acks", "2"}, {"on_timeout", "degrade"}}, three_nodes());
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(s->engine.acks, 2u);
  EXPECT_EQ(s->engine.on_timeout, primary::OnTimeout::kDegrade);
  EXPECT_EQ(s->engine.ack_timeout_ticks, 50u);
  EXPECT_EQ(s->manager.lease_ticks, 15u);
  EXPECT_EQ(s->manager.renew_interval_ticks, 3u);
  EXPECT_EQ(s->manager.failure_timeout_ticks, 15u);
  EXPECT_EQ(s->manager.promotion, primary::Promotion::kSafe);
  EXPECT_EQ(s->manager.rule, primary::AckRule::kSemiSync);

  EXPECT_EQ(primary_settings("semi-sync", {{"acks", "3"}}, three_nodes()).status().message(),
            "option 'acks': 3 backups cannot acknowledge in a cluster of 3 nodes (at most 2)");
  EXPECT_EQ(primary_settings("async", {{"lease_ms", "30"}}, three_nodes()).status().message(),
            "option 'lease_ms': 30 ms is under 4 ticks of 10 ms (raft.tick_ms)");
  NodeConfig fast_ticks = three_nodes();
  fast_ticks.raft.tick_ms = 1;  // 60 s of 1 ms ticks: more than the host ever catches up
  EXPECT_EQ(primary_settings("async", {{"lease_ms", "60000"}}, fast_ticks).status().message(),
            "option 'lease_ms': 60000 ms is 60000 ticks of 1 ms; at most 5000 ticks");
  NodeConfig no_quorum_check = three_nodes();
  no_quorum_check.raft.check_quorum = false;
  EXPECT_EQ(primary_settings("async", {}, no_quorum_check)
                .status()
                .message()
                .rfind("strategy: async needs raft.check_quorum = true", 0),
            0u);
  auto a = primary_settings("async", {}, three_nodes());
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->manager.promotion, primary::Promotion::kAvailable);
  EXPECT_TRUE(a->engine.promotion_available);
  auto r = primary_settings("sync-all", {{"on_replica_failure", "reconfigure"}}, three_nodes());
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->manager.on_replica_failure, primary::OnReplicaFailure::kReconfigure);
  EXPECT_EQ(r->engine.prepare_timeout_ticks, 50u);
}

}  // namespace
}  // namespace chorus::server
