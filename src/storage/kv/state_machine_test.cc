// One suite for every key-value state machine (issue: "tested by the same
// suite"): each TYPED_TEST runs against MemoryStateMachine and
// RocksDbStateMachine. Then tests that compare the two, and RocksDB-only
// tests for reopening and crashes.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "base/prng.h"
#include "storage/kv/command_logic.h"
#include "storage/kv/rocksdb_state_machine.h"
#include "storage/kv/state_machine.h"

namespace chorus::kv {
namespace {

namespace fs = std::filesystem;

// A directory under /tmp, removed with everything in it when the owner dies.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "chorus_kv_test.XXXXXX").string();
    CHORUS_ASSERT(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct MemoryHost {
  static constexpr const char* kName = "Memory";
  std::unique_ptr<StateMachine> make(StateMachineOptions opts = {}) {
    return std::make_unique<MemoryStateMachine>(opts);
  }
};

struct RocksDbHost {
  static constexpr const char* kName = "RocksDb";
  std::unique_ptr<StateMachine> make(StateMachineOptions opts = {}) {
    RocksDbStateMachineOptions ro;
    ro.sm = opts;
    ro.block_cache_bytes = size_t{8} << 20;
    ro.write_buffer_bytes = size_t{4} << 20;
    const fs::path path = dir.path() / ("db" + std::to_string(next++));
    auto sm = RocksDbStateMachine::open(path.string(), ro);
    CHORUS_ASSERT_MSG(sm.is_ok(), sm.status().to_string().c_str());
    return std::move(sm).value();
  }
  TempDir dir;
  int next = 0;
};

struct HostNames {
  template <class T>
  static std::string GetName(int) {
    return T::kName;
  }
};

// ---- Command helpers ----------------------------------------------------------

kvpb::Command put(std::string key, std::string value, int64_t expire_at_ms = 0) {
  kvpb::Command c = make_put(std::move(key), std::move(value));
  c.mutable_put()->set_expire_at_ms(expire_at_ms);
  return c;
}

kvpb::Command put_if(std::string key, std::string value, kvpb::Put::Condition cond,
                     bool return_old = false) {
  kvpb::Command c = make_put(std::move(key), std::move(value));
  c.mutable_put()->set_condition(cond);
  c.mutable_put()->set_return_old(return_old);
  return c;
}

kvpb::Command get_set(std::string key, std::string value) {
  return put_if(std::move(key), std::move(value), kvpb::Put::ALWAYS, true);
}

kvpb::Command at(int64_t now_ms, kvpb::Command c) {
  c.set_now_ms(now_ms);
  return c;
}

kvpb::Command session(uint64_t client_id, uint64_t seq, kvpb::Command c) {
  c.set_client_id(client_id);
  c.set_seq(seq);
  return c;
}

std::string chunk_text(const std::vector<std::string>& chunks) {
  std::string s;
  for (const auto& c : chunks) s += c;
  return s;
}

// A source handing out `image` in pieces of `piece` bytes.
StateMachine::ChunkSource pieces(const std::string& image, size_t piece) {
  auto pos = std::make_shared<size_t>(0);
  return [image, piece, pos]() -> Result<std::optional<std::string>> {
    if (*pos >= image.size()) return std::optional<std::string>();
    std::string chunk = image.substr(*pos, piece);
    *pos += chunk.size();
    return std::optional<std::string>(std::move(chunk));
  };
}

// ---- Random workload (determinism tests) ---------------------------------------

// One random log entry: a command (sometimes retried, stale or garbage) or a no-op.
struct RandomEntry {
  std::string bytes;
  bool noop = false;
};

class Workload {
 public:
  explicit Workload(uint64_t seed) : prng_(seed) {}

  RandomEntry next() {
    if (prng_.chance(0.03)) return {"", true};
    if (prng_.chance(0.02)) return {std::string("\xff\xff\x01garbage", 10), false};
    kvpb::Command c = op();
    now_ms_ += static_cast<int64_t>(prng_.uniform(0, 40));
    // Sometimes an older leader clock: the replicated time must not go back.
    c.set_now_ms(prng_.chance(0.1) ? now_ms_ - 100 : now_ms_);
    if (prng_.chance(0.5)) {
      const size_t client = prng_.uniform(0, seqs_.size() - 1);
      uint64_t seq = ++seqs_[client];
      if (prng_.chance(0.15) && seq > 2) seq -= prng_.uniform(0, 2);  // retry or stale
      c.set_client_id(client + 1);
      c.set_seq(seq);
    }
    return {encode(c), false};
  }

 private:
  std::string key() { return "k" + std::to_string(prng_.uniform(0, 24)); }
  std::string value() {
    switch (prng_.uniform(0, 3)) {
      case 0:
        return std::to_string(static_cast<int64_t>(prng_.uniform(0, 200)) - 100);
      case 1:
        return "";
      default:
        return "v" + std::to_string(prng_.uniform(0, 9));
    }
  }
  int64_t expiry() {
    if (prng_.chance(0.6)) return 0;
    return now_ms_ + static_cast<int64_t>(prng_.uniform(0, 400)) - 20;
  }

  kvpb::Command op() {
    switch (prng_.uniform(0, 7)) {
      case 0: {
        kvpb::Command c = put(key(), value(), expiry());
        c.mutable_put()->set_condition(static_cast<kvpb::Put::Condition>(prng_.uniform(0, 2)));
        c.mutable_put()->set_return_old(prng_.chance(0.3));
        return c;
      }
      case 1: {
        std::vector<std::string> keys;
        for (uint64_t i = prng_.uniform(1, 3); i > 0; --i) keys.push_back(key());
        return make_delete(std::move(keys));
      }
      case 2:
        return make_cas(key(), value(), value());
      case 3:
        return make_append(key(), value());
      case 4: {
        const int64_t delta = prng_.chance(0.05) ? std::numeric_limits<int64_t>::max()
                                                 : static_cast<int64_t>(prng_.uniform(0, 20)) - 10;
        return make_incr_by(key(), delta);
      }
      case 5: {
        kvpb::Command c = make_multi_put({{key(), value()}, {key(), value()}});
        c.mutable_multi_put()->mutable_kvs(0)->set_expire_at_ms(expiry());
        return c;
      }
      case 6:
        return make_tick(now_ms_);
      default:
        return put(key(), value());
    }
  }

  Prng prng_;
  int64_t now_ms_ = 1000;
  std::vector<uint64_t> seqs_ = std::vector<uint64_t>(6, 0);
};

// Applies `entries` from index applied+1 in batches of random sizes (1..max_batch).
std::vector<kvpb::Result> apply_all(StateMachine& sm, const std::vector<RandomEntry>& entries,
                                    uint64_t batch_seed, size_t max_batch) {
  Prng prng(batch_seed);
  std::vector<kvpb::Result> results;
  size_t i = 0;
  while (i < entries.size()) {
    const size_t n = std::min<size_t>(prng.uniform(1, max_batch), entries.size() - i);
    std::vector<StateMachine::Entry> batch;
    for (size_t j = 0; j < n; ++j) {
      const RandomEntry& e = entries[i + j];
      batch.push_back({sm.applied_index() + (j + 1), e.bytes, e.noop});
    }
    auto r = sm.apply_batch(batch);
    CHORUS_ASSERT_MSG(r.is_ok(), r.status().to_string().c_str());
    results.insert(results.end(), r->begin(), r->end());
    i += n;
  }
  return results;
}

std::vector<RandomEntry> random_entries(uint64_t seed, size_t n) {
  Workload w(seed);
  std::vector<RandomEntry> out;
  for (size_t i = 0; i < n; ++i) out.push_back(w.next());
  return out;
}

std::string result_text(const kvpb::Result& r) {
  return r.ShortDebugString();
}

// ---- The typed suite ------------------------------------------------------------

template <class Host>
class StateMachineTest : public ::testing::Test {
 protected:
  void SetUp() override { sm_ = host_.make(); }

  kvpb::Result apply_to(StateMachine& sm, const kvpb::Command& c) {
    return apply_bytes_to(sm, encode(c));
  }
  kvpb::Result apply_bytes_to(StateMachine& sm, const std::string& bytes) {
    const StateMachine::Entry e{sm.applied_index().next(), bytes};
    auto r = sm.apply_batch({&e, 1});
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? r->front() : kvpb::Result();
  }
  kvpb::Result apply(const kvpb::Command& c) { return apply_to(*sm_, c); }
  kvpb::Result apply_bytes(const std::string& bytes) { return apply_bytes_to(*sm_, bytes); }

  std::optional<std::string> get(std::string_view key) {
    auto v = sm_->read(key);
    EXPECT_TRUE(v.is_ok()) << v.status().to_string();
    return v.is_ok() ? *v : std::nullopt;
  }
  uint64_t count() {
    auto n = sm_->key_count();
    EXPECT_TRUE(n.is_ok()) << n.status().to_string();
    return n.is_ok() ? *n : 0;
  }
  uint64_t digest_of(const StateMachine& sm) {
    auto d = sm.state_digest();
    EXPECT_TRUE(d.is_ok()) << d.status().to_string();
    return d.is_ok() ? *d : 0;
  }
  std::string snapshot_of(const StateMachine& sm) {
    auto s = sm.snapshot();
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s.is_ok() ? *s : "";
  }
  std::vector<std::pair<std::string, std::string>> scan_all(size_t page_size) {
    std::vector<std::pair<std::string, std::string>> all;
    std::string start;
    for (int pages = 0; pages < 1000; ++pages) {
      auto page = sm_->scan(start, page_size);
      EXPECT_TRUE(page.is_ok());
      if (!page.is_ok()) break;
      EXPECT_LE(page->items.size(), page_size);
      all.insert(all.end(), page->items.begin(), page->items.end());
      if (page->next.empty()) break;
      start = page->next;
    }
    return all;
  }

  // A state with data, expiry and sessions, for the snapshot tests.
  void build_rich_state(StateMachine& sm) {
    for (int i = 0; i < 40; ++i) {
      apply_to(sm,
               at(100, put("key" + std::to_string(i), std::string(i, 'v'), i % 3 ? 0 : 5000 + i)));
    }
    apply_to(sm, at(120, put("short-lived", "x", 150)));
    apply_to(sm, session(7, 1, at(130, make_append("key1", "+"))));
    apply_to(sm, session(9, 4, at(140, make_incr_by("counter", 5))));
    apply_to(sm, at(200, make_tick(200)));  // "short-lived" is now dead
  }

  Host host_;
  std::unique_ptr<StateMachine> sm_;
};

using Hosts = ::testing::Types<MemoryHost, RocksDbHost>;
TYPED_TEST_SUITE(StateMachineTest, Hosts, HostNames);

TYPED_TEST(StateMachineTest, PutThenGet) {
  EXPECT_EQ(this->get("a"), std::nullopt);
  EXPECT_EQ(this->apply(put("a", "1")).code(), kvpb::Result::OK);
  EXPECT_EQ(this->get("a"), "1");
  this->apply(put("a", "2"));
  EXPECT_EQ(this->get("a"), "2");
  this->apply(put("", "empty key"));
  EXPECT_EQ(this->get(""), "empty key");
  EXPECT_EQ(this->sm_->applied_index(), LogIndex(3));
}

TYPED_TEST(StateMachineTest, SetNxAppliesOnlyWhenAbsent) {
  EXPECT_EQ(this->apply(put_if("a", "1", kvpb::Put::IF_ABSENT)).code(), kvpb::Result::OK);
  EXPECT_EQ(this->apply(put_if("a", "2", kvpb::Put::IF_ABSENT)).code(),
            kvpb::Result::CONDITION_FAILED);
  EXPECT_EQ(this->get("a"), "1");
}

TYPED_TEST(StateMachineTest, SetXxAppliesOnlyWhenPresent) {
  EXPECT_EQ(this->apply(put_if("a", "1", kvpb::Put::IF_PRESENT)).code(),
            kvpb::Result::CONDITION_FAILED);
  EXPECT_EQ(this->get("a"), std::nullopt);
  this->apply(put("a", "1"));
  EXPECT_EQ(this->apply(put_if("a", "2", kvpb::Put::IF_PRESENT)).code(), kvpb::Result::OK);
  EXPECT_EQ(this->get("a"), "2");
}

TYPED_TEST(StateMachineTest, SetGetReturnsTheOldValue) {
  kvpb::Result r = this->apply(get_set("a", "1"));
  EXPECT_FALSE(r.found());
  r = this->apply(get_set("a", "2"));
  EXPECT_TRUE(r.found());
  EXPECT_EQ(r.value(), "1");
  EXPECT_EQ(this->get("a"), "2");
  // NX GET on an existing key: answers the old value, sets nothing.
  r = this->apply(put_if("a", "3", kvpb::Put::IF_ABSENT, /*return_old=*/true));
  EXPECT_EQ(r.code(), kvpb::Result::CONDITION_FAILED);
  EXPECT_TRUE(r.found());
  EXPECT_EQ(r.value(), "2");
  EXPECT_EQ(this->get("a"), "2");
}

TYPED_TEST(StateMachineTest, KeyIsDeadOnceReplicatedTimeReachesItsExpiry) {
  this->apply(at(0, put("a", "1", 1000)));
  this->apply(put("b", "2"));
  this->apply(make_tick(999));
  EXPECT_EQ(this->get("a"), "1");
  EXPECT_EQ(this->count(), 2u);
  this->apply(make_tick(1000));  // now_ms == expire_at_ms: dead
  EXPECT_EQ(this->sm_->now_ms(), 1000);
  EXPECT_EQ(this->get("a"), std::nullopt);
  EXPECT_EQ(this->count(), 1u);
  EXPECT_EQ(this->scan_all(10).size(), 1u);
}

TYPED_TEST(StateMachineTest, ReplicatedTimeNeverGoesBack) {
  this->apply(make_tick(1000));
  this->apply(at(500, put("a", "1", 800)));  // an older leader clock
  EXPECT_EQ(this->sm_->now_ms(), 1000);
  EXPECT_EQ(this->get("a"), std::nullopt);  // expired on arrival: never stored
  EXPECT_EQ(this->count(), 0u);
  this->apply(at(400, put("b", "1", 1001)));
  EXPECT_EQ(this->get("b"), "1");
  this->apply(at(1001, make_tick(1001)));
  EXPECT_EQ(this->get("b"), std::nullopt);
}

TYPED_TEST(StateMachineTest, SetWithoutExpiryClearsTheExpiry) {
  this->apply(put("a", "1", 100));
  this->apply(put("a", "2"));
  this->apply(make_tick(200));
  EXPECT_EQ(this->get("a"), "2");
}

TYPED_TEST(StateMachineTest, SetWithPastExpiryDeletesTheKey) {
  this->apply(at(10, put("a", "1")));
  EXPECT_EQ(this->count(), 1u);
  kvpb::Result r = this->apply(at(10, get_set("a", "2")));
  this->apply(at(10, put("a", "3", 5)));
  EXPECT_EQ(r.value(), "1");
  EXPECT_EQ(this->get("a"), std::nullopt);
  EXPECT_EQ(this->count(), 0u);
}

TYPED_TEST(StateMachineTest, DeadKeyIsAbsentForEveryCondition) {
  auto revive = [this](const std::string& key) { this->apply(at(100, put(key, "7", 150))); };
  for (const char* k : {"nx", "xx", "cas", "app", "incr", "del", "getset"}) revive(k);
  this->apply(make_tick(150));
  EXPECT_EQ(this->apply(put_if("nx", "n", kvpb::Put::IF_ABSENT)).code(), kvpb::Result::OK);
  EXPECT_EQ(this->apply(put_if("xx", "n", kvpb::Put::IF_PRESENT)).code(),
            kvpb::Result::CONDITION_FAILED);
  EXPECT_EQ(this->apply(make_cas("cas", "7", "n")).code(), kvpb::Result::CONDITION_FAILED);
  EXPECT_EQ(this->apply(make_append("app", "z")).integer(), 1);
  EXPECT_EQ(this->apply(make_incr_by("incr", 2)).integer(), 2);
  EXPECT_EQ(this->apply(make_delete({"del"})).integer(), 0);
  EXPECT_FALSE(this->apply(get_set("getset", "n")).found());
  // The recreated keys carry no expiry.
  this->apply(make_tick(1'000'000));
  EXPECT_EQ(this->get("nx"), "n");
  EXPECT_EQ(this->get("xx"), std::nullopt);
  EXPECT_EQ(this->get("cas"), std::nullopt);
  EXPECT_EQ(this->get("app"), "z");
  EXPECT_EQ(this->get("incr"), "2");
  EXPECT_EQ(this->get("getset"), "n");
}

TYPED_TEST(StateMachineTest, ManyKeysExpiringAtOnceArePurgedOverSeveralBatches) {
  std::vector<StateMachine::Entry> batch;
  std::vector<std::string> cmds;
  for (int i = 0; i < 3000; ++i) {
    cmds.push_back(encode(put("e" + std::to_string(i), "v", 50)));
  }
  cmds.push_back(encode(put("keep", "v")));
  for (size_t i = 0; i < cmds.size(); ++i) batch.push_back({LogIndex(i + 1), cmds[i]});
  ASSERT_TRUE(this->sm_->apply_batch(batch).is_ok());
  EXPECT_EQ(this->count(), 3001u);
  this->apply(make_tick(50));  // purges at most kExpiredPurgeMaxPerBatch of them
  EXPECT_EQ(this->count(), 1u);
  for (int i = 0; i < 5; ++i) this->apply(make_tick(60 + i));
  EXPECT_EQ(this->count(), 1u);
  this->apply(put("e7", "back"));
  EXPECT_EQ(this->count(), 2u);
  EXPECT_EQ(this->scan_all(100).size(), 2u);
}

TYPED_TEST(StateMachineTest, DeleteCountsLiveKeysOnce) {
  this->apply(put("a", "1"));
  this->apply(put("b", "1"));
  this->apply(put("c", "1"));
  EXPECT_EQ(this->apply(make_delete({"a", "b", "missing", "a"})).integer(), 2);
  EXPECT_EQ(this->get("a"), std::nullopt);
  EXPECT_EQ(this->get("c"), "1");
  EXPECT_EQ(this->count(), 1u);
}

TYPED_TEST(StateMachineTest, CasSwapsOnlyOnMatch) {
  EXPECT_EQ(this->apply(make_cas("a", "", "1")).code(), kvpb::Result::CONDITION_FAILED);
  EXPECT_EQ(this->get("a"), std::nullopt);  // CAS never creates a key
  this->apply(put("a", "1", 500));
  EXPECT_EQ(this->apply(make_cas("a", "2", "3")).code(), kvpb::Result::CONDITION_FAILED);
  EXPECT_EQ(this->get("a"), "1");
  EXPECT_EQ(this->apply(make_cas("a", "1", "3")).code(), kvpb::Result::OK);
  this->apply(make_tick(600));  // a successful CAS clears the expiry, as SET does
  EXPECT_EQ(this->get("a"), "3");
}

TYPED_TEST(StateMachineTest, AppendCreatesAndExtendsAndKeepsExpiry) {
  EXPECT_EQ(this->apply(make_append("a", "xy")).integer(), 2);
  EXPECT_EQ(this->apply(make_append("a", "z")).integer(), 3);
  EXPECT_EQ(this->get("a"), "xyz");
  this->apply(put("t", "1", 100));
  EXPECT_EQ(this->apply(make_append("t", "2")).integer(), 2);
  this->apply(make_tick(100));
  EXPECT_EQ(this->get("t"), std::nullopt);
}

TYPED_TEST(StateMachineTest, IncrByCreatesAddsAndKeepsExpiry) {
  EXPECT_EQ(this->apply(make_incr_by("n", 5)).integer(), 5);
  EXPECT_EQ(this->apply(make_incr_by("n", -7)).integer(), -2);
  EXPECT_EQ(this->get("n"), "-2");
  this->apply(put("t", "10", 100));
  EXPECT_EQ(this->apply(make_incr_by("t", 1)).integer(), 11);
  this->apply(make_tick(100));
  EXPECT_EQ(this->get("t"), std::nullopt);
}

TYPED_TEST(StateMachineTest, IncrByRejectsWhatRedisRejects) {
  for (const char* bad : {"abc", "1.5", " 1", "1 ", "+1", "01", "-0", "", "-",
                          "9223372036854775808", "99999999999999999999"}) {
    this->apply(put("n", bad));
    EXPECT_EQ(this->apply(make_incr_by("n", 1)).code(), kvpb::Result::NOT_INTEGER) << bad;
    EXPECT_EQ(this->get("n"), bad);
  }
  this->apply(put("n", "-9223372036854775808"));
  EXPECT_EQ(this->apply(make_incr_by("n", 0)).integer(), std::numeric_limits<int64_t>::min());
}

TYPED_TEST(StateMachineTest, IncrByOverflowChangesNothing) {
  this->apply(put("n", "9223372036854775807"));
  EXPECT_EQ(this->apply(make_incr_by("n", 1)).code(), kvpb::Result::OVERFLOW);
  EXPECT_EQ(this->get("n"), "9223372036854775807");
  this->apply(put("m", "-9223372036854775807"));
  EXPECT_EQ(this->apply(make_incr_by("m", -1)).integer(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(this->apply(make_incr_by("m", -1)).code(), kvpb::Result::OVERFLOW);
}

TYPED_TEST(StateMachineTest, MultiPutWritesEveryPairLaterPairWins) {
  kvpb::Command c = make_multi_put({{"a", "1"}, {"b", "2"}, {"a", "3"}});
  c.mutable_multi_put()->mutable_kvs(1)->set_expire_at_ms(100);
  EXPECT_EQ(this->apply(c).code(), kvpb::Result::OK);
  EXPECT_EQ(this->get("a"), "3");
  EXPECT_EQ(this->get("b"), "2");
  EXPECT_EQ(this->count(), 2u);
  this->apply(make_tick(100));
  EXPECT_EQ(this->get("b"), std::nullopt);
}

TYPED_TEST(StateMachineTest, OversizeKeysAndValuesAreTooLarge) {
  StateMachineOptions opts;
  opts.limits.key_bytes_max = 8;
  opts.limits.value_bytes_max = 16;
  this->sm_ = this->host_.make(opts);
  EXPECT_EQ(this->apply(put("123456789", "v")).code(), kvpb::Result::TOO_LARGE);
  EXPECT_EQ(this->apply(put("k", std::string(17, 'v'))).code(), kvpb::Result::TOO_LARGE);
  EXPECT_EQ(this->apply(put("k", std::string(16, 'v'))).code(), kvpb::Result::OK);
  EXPECT_EQ(this->apply(make_append("k", "w")).code(), kvpb::Result::TOO_LARGE);
  EXPECT_EQ(this->get("k"), std::string(16, 'v'));
  EXPECT_EQ(this->apply(make_multi_put({{"x", "1"}, {"y", std::string(17, 'v')}})).code(),
            kvpb::Result::TOO_LARGE);
  EXPECT_EQ(this->get("x"), std::nullopt);  // all or nothing
  EXPECT_EQ(this->apply(make_cas("k", std::string(16, 'v'), std::string(17, 'w'))).code(),
            kvpb::Result::TOO_LARGE);
}

TYPED_TEST(StateMachineTest, RetryOfTheLastSeqReturnsTheCachedResultWithoutApplying) {
  EXPECT_EQ(this->apply(session(1, 1, make_append("a", "x"))).integer(), 1);
  EXPECT_EQ(this->apply(session(1, 1, make_append("a", "x"))).integer(), 1);
  EXPECT_EQ(this->get("a"), "x");
  EXPECT_EQ(this->apply(session(1, 2, make_append("a", "x"))).integer(), 2);
  EXPECT_EQ(this->get("a"), "xx");
}

TYPED_TEST(StateMachineTest, OlderSeqIsStale) {
  this->apply(session(1, 5, make_append("a", "x")));
  EXPECT_EQ(this->apply(session(1, 4, make_append("a", "x"))).code(), kvpb::Result::STALE_SEQUENCE);
  EXPECT_EQ(this->get("a"), "x");
  // Other clients are independent.
  EXPECT_EQ(this->apply(session(2, 1, make_append("a", "y"))).integer(), 2);
}

TYPED_TEST(StateMachineTest, FailedOutcomeIsCachedToo) {
  this->apply(put("a", "1"));
  EXPECT_EQ(this->apply(session(1, 1, make_cas("a", "2", "3"))).code(),
            kvpb::Result::CONDITION_FAILED);
  this->apply(put("a", "2"));  // now the CAS would succeed, but the retry is not re-applied
  EXPECT_EQ(this->apply(session(1, 1, make_cas("a", "2", "3"))).code(),
            kvpb::Result::CONDITION_FAILED);
  EXPECT_EQ(this->get("a"), "2");
}

TYPED_TEST(StateMachineTest, SessionTableEvictsTheLeastRecentlyAppliedSession) {
  StateMachineOptions opts;
  opts.limits.max_sessions = 2;
  this->sm_ = this->host_.make(opts);
  this->apply(session(1, 1, make_append("a", "x")));
  this->apply(session(2, 1, make_append("b", "x")));
  this->apply(session(1, 2, make_append("a", "x")));  // client 1 is now the most recent
  this->apply(session(3, 1, make_append("c", "x")));  // evicts client 2
  EXPECT_EQ(this->apply(session(1, 2, make_append("a", "x"))).integer(), 2);  // cached
  EXPECT_EQ(this->apply(session(3, 1, make_append("c", "x"))).integer(), 1);  // cached
  // Client 2 was forgotten: its retry applies again (the documented limit).
  EXPECT_EQ(this->apply(session(2, 1, make_append("b", "x"))).integer(), 2);
}

TYPED_TEST(StateMachineTest, UndecodableCommandIsBadCommandAndChangesNothingButTheIndex) {
  this->apply(at(50, put("a", "1")));
  EXPECT_EQ(this->apply_bytes(std::string("\xff\xff\xff", 3)).code(), kvpb::Result::BAD_COMMAND);
  // A well-formed message without an op, carrying a session and a time: not applied either.
  kvpb::Command no_op;
  no_op.set_client_id(4);
  no_op.set_seq(9);
  no_op.set_now_ms(10'000);
  EXPECT_EQ(this->apply(no_op).code(), kvpb::Result::BAD_COMMAND);
  EXPECT_EQ(this->sm_->applied_index(), LogIndex(3));
  EXPECT_EQ(this->sm_->now_ms(), 50);
  EXPECT_EQ(this->get("a"), "1");
  EXPECT_EQ(this->count(), 1u);
  EXPECT_EQ(this->apply(session(4, 9, make_append("b", "x"))).integer(), 1);  // not cached
}

TYPED_TEST(StateMachineTest, NoopAdvancesOnlyTheAppliedIndex) {
  this->apply(put("a", "1"));
  const StateMachine::Entry e{.index = LogIndex(5), .command = "ignored", .noop = true};
  auto r = this->sm_->apply_batch({&e, 1});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->front().code(), kvpb::Result::OK);
  EXPECT_EQ(this->sm_->applied_index(), LogIndex(5));
  EXPECT_EQ(this->get("a"), "1");
}

TYPED_TEST(StateMachineTest, BatchSeesItsOwnWrites) {
  const std::vector<std::string> cmds = {encode(put("a", "1")), encode(make_incr_by("a", 4)),
                                         encode(make_append("a", "0")), "",
                                         encode(make_delete({"a", "a"}))};
  std::vector<StateMachine::Entry> batch;
  for (size_t i = 0; i < cmds.size(); ++i) {
    batch.push_back({LogIndex(i + 1), cmds[i], cmds[i].empty()});
  }
  auto r = this->sm_->apply_batch(batch);
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[1].integer(), 5);
  EXPECT_EQ((*r)[2].integer(), 2);
  EXPECT_EQ((*r)[4].integer(), 1);
  EXPECT_EQ(this->sm_->applied_index(), LogIndex(5));
  EXPECT_EQ(this->count(), 0u);
}

TYPED_TEST(StateMachineTest, ScanPagesThroughLiveKeysInOrder) {
  std::vector<std::pair<std::string, std::string>> want;
  for (int i = 0; i < 25; ++i) {
    char key[8];
    snprintf(key, sizeof key, "k%02d", i);
    this->apply(put(key, std::to_string(i), i % 5 == 0 ? 10 : 0));
    if (i % 5 != 0) want.emplace_back(key, std::to_string(i));
  }
  this->apply(make_tick(10));
  EXPECT_EQ(this->scan_all(7), want);
  EXPECT_EQ(this->scan_all(1000), want);
  auto page = this->sm_->scan("k12", 3);
  ASSERT_TRUE(page.is_ok());
  ASSERT_EQ(page->items.size(), 3u);
  EXPECT_EQ(page->items[0].first, "k12");
  EXPECT_EQ(page->next, "k16");   // k15 is dead
  page = this->sm_->scan("", 0);  // clamped to one item
  ASSERT_TRUE(page.is_ok());
  EXPECT_EQ(page->items.size(), 1u);
  EXPECT_EQ(this->count(), want.size());
}

TYPED_TEST(StateMachineTest, SnapshotRoundTripKeepsEverything) {
  this->build_rich_state(*this->sm_);
  const std::string image = this->snapshot_of(*this->sm_);
  auto copy = this->host_.make();
  copy->apply_batch(std::vector<StateMachine::Entry>{{LogIndex(1), encode(put("junk", "1"))}})
      .status()
      .ignore();
  ASSERT_TRUE(copy->restore(image).is_ok());
  EXPECT_EQ(this->digest_of(*copy), this->digest_of(*this->sm_));
  EXPECT_EQ(this->snapshot_of(*copy), image);
  EXPECT_EQ(copy->applied_index(), this->sm_->applied_index());
  EXPECT_EQ(copy->now_ms(), 200);
  EXPECT_EQ(*copy->read("key3"), std::string(3, 'v'));
  EXPECT_EQ(*copy->read("junk"), std::nullopt);
  EXPECT_EQ(*copy->read("short-lived"), std::nullopt);
  EXPECT_EQ(*copy->key_count(), *this->sm_->key_count());
  // Sessions came along: a retry is answered from the cache, an old seq is stale.
  EXPECT_EQ(this->apply_to(*copy, session(9, 4, make_incr_by("counter", 5))).integer(), 5);
  EXPECT_EQ(this->apply_to(*copy, session(9, 3, make_incr_by("counter", 5))).code(),
            kvpb::Result::STALE_SEQUENCE);
  // Expiry came along too.
  this->apply_to(*copy, make_tick(5000));
  EXPECT_EQ(*copy->read("key0"), std::nullopt);
  EXPECT_EQ(*copy->read("key1"), "v+");
}

TYPED_TEST(StateMachineTest, SnapshotStreamsInChunksAndLoadsFromAnyChunking) {
  StateMachineOptions opts;
  opts.snapshot_chunk_bytes = 64;
  this->sm_ = this->host_.make(opts);
  this->build_rich_state(*this->sm_);
  std::vector<std::string> chunks;
  ASSERT_TRUE(this->sm_
                  ->save_snapshot([&](std::string_view c) {
                    chunks.emplace_back(c);
                    return Status::ok();
                  })
                  .is_ok());
  ASSERT_GT(chunks.size(), 3u);
  for (size_t i = 0; i + 1 < chunks.size(); ++i) EXPECT_EQ(chunks[i].size(), 64u);
  const std::string image = chunk_text(chunks);
  EXPECT_EQ(image, this->snapshot_of(*this->sm_));  // chunking does not change the bytes
  for (size_t piece : {1, 2, 7, 64, 1000}) {
    auto copy = this->host_.make();
    ASSERT_TRUE(copy->load_snapshot(pieces(image, piece)).is_ok()) << piece;
    EXPECT_EQ(this->digest_of(*copy), this->digest_of(*this->sm_));
  }
}

TYPED_TEST(StateMachineTest, TruncatedSnapshotIsRejectedAndStateUnchanged) {
  this->build_rich_state(*this->sm_);
  const std::string image = this->snapshot_of(*this->sm_);
  auto target = this->host_.make();
  this->apply_to(*target, at(7, put("mine", "1", 100)));
  this->apply_to(*target, session(3, 3, make_append("mine2", "x")));
  const uint64_t before = this->digest_of(*target);
  for (size_t len = 0; len < image.size(); ++len) {
    Status st = target->load_snapshot(pieces(image.substr(0, len), 5));
    ASSERT_FALSE(st.is_ok()) << "prefix " << len << " of " << image.size();
    EXPECT_EQ(st.code(), StatusCode::kCorruption);
  }
  EXPECT_EQ(this->digest_of(*target), before);
  EXPECT_EQ(target->applied_index(), LogIndex(2));
  EXPECT_EQ(*target->read("mine"), "1");
}

TYPED_TEST(StateMachineTest, CorruptSnapshotIsRejectedAndStateUnchanged) {
  this->build_rich_state(*this->sm_);
  const std::string image = this->snapshot_of(*this->sm_);
  auto target = this->host_.make();
  this->apply_to(*target, put("mine", "1"));
  const uint64_t before = this->digest_of(*target);
  for (size_t i = 0; i < image.size(); ++i) {
    for (unsigned char flip : {0x01, 0x80}) {
      std::string bad = image;
      bad[i] = static_cast<char>(bad[i] ^ flip);
      EXPECT_FALSE(target->restore(bad).is_ok()) << "byte " << i << " flip " << int{flip};
    }
  }
  EXPECT_FALSE(target->restore(image + "x").is_ok());  // bytes after the trailer
  EXPECT_FALSE(target->restore("").is_ok());
  EXPECT_FALSE(target->restore("CHKVSNAP").is_ok());
  EXPECT_EQ(this->digest_of(*target), before);
  EXPECT_TRUE(target->restore(image + "").is_ok());
  EXPECT_EQ(this->digest_of(*target), this->digest_of(*this->sm_));
}

TYPED_TEST(StateMachineTest, SourceErrorAbortsTheLoadAndSinkErrorAbortsTheSave) {
  this->build_rich_state(*this->sm_);
  const std::string image = this->snapshot_of(*this->sm_);
  auto target = this->host_.make();
  this->apply_to(*target, put("mine", "1"));
  const uint64_t before = this->digest_of(*target);
  auto inner = pieces(image, 100);
  int calls = 0;
  Status st = target->load_snapshot([&]() -> Result<std::optional<std::string>> {
    if (++calls == 3) return Status::io_error("peer went away");
    return inner();
  });
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_EQ(this->digest_of(*target), before);

  int chunks = 0;
  st = this->sm_->save_snapshot([&](std::string_view) {
    return ++chunks == 1 ? Status::io_error("disk full") : Status::ok();
  });
  EXPECT_EQ(st.code(), StatusCode::kIoError);
}

TYPED_TEST(StateMachineTest, SameCommandsGiveSameStateWhateverTheBatching) {
  for (uint64_t seed : {1, 2, 3}) {
    const auto entries = random_entries(seed, 1500);
    auto a = this->host_.make();
    auto b = this->host_.make();
    const auto ra = apply_all(*a, entries, seed, 1);
    const auto rb = apply_all(*b, entries, seed * 77, 64);
    ASSERT_EQ(ra.size(), rb.size());
    for (size_t i = 0; i < ra.size(); ++i) {
      ASSERT_EQ(result_text(ra[i]), result_text(rb[i])) << "seed " << seed << " entry " << i;
    }
    EXPECT_EQ(this->digest_of(*a), this->digest_of(*b)) << "seed " << seed;
    EXPECT_EQ(this->snapshot_of(*a), this->snapshot_of(*b)) << "seed " << seed;
  }
}

TYPED_TEST(StateMachineTest, DifferentStatesHaveDifferentDigests) {
  auto a = this->host_.make();
  auto b = this->host_.make();
  this->apply_to(*a, put("k", "1"));
  this->apply_to(*b, put("k", "2"));
  EXPECT_NE(this->digest_of(*a), this->digest_of(*b));
  auto c = this->host_.make();
  this->apply_to(*c, session(1, 1, put("k", "1")));  // same data, one more session
  EXPECT_NE(this->digest_of(*a), this->digest_of(*c));
}

// ---- Memory and RocksDB agree -----------------------------------------------------

TEST(StateMachines, MemoryAndRocksDbAgreeOnEveryResultAndDigest) {
  RocksDbHost rocks_host;
  for (uint64_t seed : {11, 12}) {
    const auto entries = random_entries(seed, 3000);
    MemoryStateMachine mem;
    auto rocks = rocks_host.make();
    const auto rm = apply_all(mem, entries, seed, 16);
    const auto rr = apply_all(*rocks, entries, seed + 1, 16);
    for (size_t i = 0; i < rm.size(); ++i) {
      ASSERT_EQ(result_text(rm[i]), result_text(rr[i])) << "seed " << seed << " entry " << i;
    }
    EXPECT_EQ(mem.digest(), *rocks->state_digest());
    EXPECT_EQ(*mem.snapshot(), *rocks->snapshot());
    // A snapshot moves between implementations.
    MemoryStateMachine mem2;
    ASSERT_TRUE(mem2.restore(*rocks->snapshot()).is_ok());
    auto rocks2 = rocks_host.make();
    ASSERT_TRUE(rocks2->restore(*mem.snapshot()).is_ok());
    EXPECT_EQ(mem2.digest(), mem.digest());
    EXPECT_EQ(*rocks2->state_digest(), mem.digest());
  }
}

// The simulator's use of the in-memory machine (src/sim/cluster.h).
TEST(MemoryStateMachine, InfallibleConveniencesForTheSimulator) {
  MemoryStateMachine sm;
  EXPECT_EQ(sm.apply(LogIndex(1), encode(make_put("a", "1"))).code(), kvpb::Result::OK);
  sm.apply_noop(LogIndex(2));
  EXPECT_EQ(sm.applied_index(), LogIndex(2));
  EXPECT_EQ(sm.get("a"), "1");
  EXPECT_EQ(sm.size(), 1u);
  auto image = sm.snapshot();
  ASSERT_TRUE(image.is_ok());
  MemoryStateMachine copy;
  ASSERT_TRUE(copy.restore(*image).is_ok());
  EXPECT_EQ(copy.digest(), sm.digest());
  EXPECT_EQ(copy.applied_index(), LogIndex(2));
}

TEST(MemoryStateMachine, ApplyingOutOfOrderIsABug) {
  MemoryStateMachine sm;
  sm.apply_noop(LogIndex(3));
  EXPECT_DEATH(sm.apply_noop(LogIndex(3)), "out of order");
}

TEST(ParseRedisInt64, AcceptsExactlyRedisIntegers) {
  EXPECT_EQ(parse_redis_int64("0"), 0);
  EXPECT_EQ(parse_redis_int64("-1"), -1);
  EXPECT_EQ(parse_redis_int64("9223372036854775807"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(parse_redis_int64("-9223372036854775808"), std::numeric_limits<int64_t>::min());
  for (const char* bad : {"", "-", "+1", "01", "-0", "00", " 1", "1x", "9223372036854775808",
                          "-9223372036854775809", "123456789012345678901"}) {
    EXPECT_EQ(parse_redis_int64(bad), std::nullopt) << bad;
  }
}

// ---- RocksDB only -------------------------------------------------------------------

RocksDbStateMachineOptions small_rocks() {
  RocksDbStateMachineOptions o;
  o.block_cache_bytes = size_t{8} << 20;
  o.write_buffer_bytes = size_t{4} << 20;
  return o;
}

std::unique_ptr<RocksDbStateMachine> open_rocks(const fs::path& path,
                                                RocksDbStateMachineOptions o = small_rocks()) {
  auto sm = RocksDbStateMachine::open(path.string(), o);
  EXPECT_TRUE(sm.is_ok()) << sm.status().to_string();
  return sm.is_ok() ? std::move(sm).value() : nullptr;
}

TEST(RocksDbStateMachine, ReopenKeepsDataAppliedIndexTimeAndSessions) {
  TempDir dir;
  const auto entries = random_entries(5, 2000);
  uint64_t digest = 0;
  {
    auto sm = open_rocks(dir.path() / "db");
    ASSERT_NE(sm, nullptr);
    apply_all(*sm, entries, 5, 32);
    ASSERT_TRUE(sm->apply(sm->applied_index().next(), encode(session(77, 1, make_append("s", "x"))))
                    .is_ok());
    digest = *sm->state_digest();
  }
  auto sm = open_rocks(dir.path() / "db");
  ASSERT_NE(sm, nullptr);
  EXPECT_EQ(*sm->state_digest(), digest);
  EXPECT_EQ(sm->applied_index(), LogIndex(entries.size() + 1));
  EXPECT_TRUE(sm->dropped_on_open().empty());
  auto r = sm->apply(sm->applied_index().next(), encode(session(77, 1, make_append("s", "x"))));
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->integer(), 1);  // the session survived the reopen: cached, not re-applied
  MemoryStateMachine mem;
  apply_all(mem, entries, 5, 1);
  mem.apply(mem.applied_index().next(), encode(session(77, 1, make_append("s", "x"))));
  mem.apply(mem.applied_index().next(), encode(session(77, 1, make_append("s", "x"))));
  EXPECT_EQ(mem.digest(), *sm->state_digest());
}

TEST(RocksDbStateMachine, RestoreSwitchesGenerationAndSurvivesReopen) {
  TempDir dir;
  MemoryStateMachine source;
  apply_all(source, random_entries(8, 500), 8, 8);
  {
    auto sm = open_rocks(dir.path() / "db");
    ASSERT_NE(sm, nullptr);
    ASSERT_TRUE(sm->apply(LogIndex(1), encode(make_put("old", "1"))).is_ok());
    EXPECT_EQ(sm->generation(), 1u);
    ASSERT_TRUE(sm->restore(*source.snapshot()).is_ok());
    EXPECT_EQ(sm->generation(), 2u);
    EXPECT_FALSE(sm->restore("garbage").is_ok());
    EXPECT_EQ(sm->generation(), 2u);
    // Applying continues after the snapshot's index.
    ASSERT_TRUE(sm->apply(sm->applied_index().next(), encode(make_put("new", "1"))).is_ok());
    source.apply(source.applied_index().next(), encode(make_put("new", "1")));
  }
  auto sm = open_rocks(dir.path() / "db");
  ASSERT_NE(sm, nullptr);
  EXPECT_EQ(sm->generation(), 2u);
  EXPECT_TRUE(sm->dropped_on_open().empty());  // the failed restore cleaned up after itself
  EXPECT_EQ(*sm->state_digest(), source.digest());
  EXPECT_EQ(*sm->read("old"), std::nullopt);
}

TEST(RocksDbStateMachine, RestartAfterCrashMidRestore) {
  GTEST_FLAG_SET(death_test_style, "fast");
  TempDir dir;
  const fs::path path = dir.path() / "db";
  MemoryStateMachine source;
  for (int i = 0; i < 2000; ++i) {
    source.apply(LogIndex(i + 1),
                 encode(make_put("key" + std::to_string(i), std::string(100, 'v'))));
  }
  const std::string image = *source.snapshot();
  uint64_t digest = 0;
  {
    auto sm = open_rocks(path);
    ASSERT_NE(sm, nullptr);
    ASSERT_TRUE(sm->apply(LogIndex(1), encode(make_put("before", "1"))).is_ok());
    digest = *sm->state_digest();
  }
  // The child process opens the database, streams half the snapshot into a
  // new generation (restore batches of 16 KiB reach RocksDB), then dies.
  EXPECT_EXIT(
      {
        RocksDbStateMachineOptions o = small_rocks();
        o.restore_batch_bytes = 16 << 10;
        auto sm = RocksDbStateMachine::open(path.string(), o);
        if (!sm.is_ok()) _exit(1);
        auto inner = pieces(image, 4096);
        size_t given = 0;
        (void)(*sm)->load_snapshot([&]() -> Result<std::optional<std::string>> {
          given += 4096;
          if (given > image.size() / 2) _exit(42);  // crash: no cleanup, no close
          return inner();
        });
        _exit(2);
      },
      ::testing::ExitedWithCode(42), "");
  auto sm = open_rocks(path);
  ASSERT_NE(sm, nullptr);
  EXPECT_EQ(sm->dropped_on_open(), std::vector<std::string>{"g2"});
  EXPECT_EQ(sm->generation(), 1u);
  EXPECT_EQ(*sm->state_digest(), digest);
  EXPECT_EQ(*sm->read("before"), "1");
  // And a complete restore works afterwards.
  ASSERT_TRUE(sm->restore(image).is_ok());
  EXPECT_EQ(*sm->state_digest(), source.digest());
}

TEST(RocksDbStateMachine, SyncedWritesWorkToo) {
  TempDir dir;
  RocksDbStateMachineOptions o = small_rocks();
  o.sync_writes = true;
  auto sm = open_rocks(dir.path() / "db", o);
  ASSERT_NE(sm, nullptr);
  ASSERT_TRUE(sm->apply(LogIndex(1), encode(make_put("a", "1"))).is_ok());
  ASSERT_TRUE(sm->sync().is_ok());
  EXPECT_EQ(*sm->read("a"), "1");
}

TEST(RocksDbStateMachine, OpeningAnUnusableDirectoryFails) {
  TempDir dir;
  const fs::path file = dir.path() / "not-a-dir";
  { std::ofstream(file) << "x"; }
  auto sm = RocksDbStateMachine::open(file.string(), small_rocks());
  EXPECT_FALSE(sm.is_ok());
}

}  // namespace
}  // namespace chorus::kv
