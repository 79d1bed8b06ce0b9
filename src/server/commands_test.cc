// The command layer, one command at a time: the kind of Plan, the exact RESP
// bytes of every reply (ReadOps run against a MemoryStateMachine, WriteOps
// applied to it the way the node applies them), the kvpb::Command of every
// write, and every Redis error text. Then SCAN end to end and the glob table.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "server/commands.h"
#include "server/glob.h"
#include "storage/kv/state_machine.h"

namespace chorus::server {
namespace {

using Args = std::vector<std::string>;

// ---- A small RESP2 reader for checking structured replies ------------------------

struct Reply {
  char type = 0;  // '+', '-', ':', '$', '*'
  bool null = false;
  std::string str;
  int64_t integer = 0;
  std::vector<Reply> elems;
};

Reply read_reply(std::string_view& in) {
  Reply r;
  const size_t eol = in.find("\r\n");
  CHORUS_ASSERT(!in.empty() && eol != std::string_view::npos);
  r.type = in[0];
  const std::string line(in.substr(1, eol - 1));
  in.remove_prefix(eol + 2);
  switch (r.type) {
    case '+':
    case '-':
      r.str = line;
      break;
    case ':':
      r.integer = std::stoll(line);
      break;
    case '$': {
      const long long n = std::stoll(line);
      r.null = n < 0;
      if (n >= 0) {
        r.str = std::string(in.substr(0, static_cast<size_t>(n)));
        CHORUS_ASSERT(in.substr(static_cast<size_t>(n), 2) == "\r\n");
        in.remove_prefix(static_cast<size_t>(n) + 2);
      }
      break;
    }
    case '*': {
      const long long n = std::stoll(line);
      r.null = n < 0;
      for (long long i = 0; i < n; ++i) r.elems.push_back(read_reply(in));
      break;
    }
    default:
      CHORUS_UNREACHABLE();
  }
  return r;
}

// Parses exactly one reply; the bytes must hold nothing else.
Reply parse(std::string_view bytes) {
  Reply r = read_reply(bytes);
  EXPECT_TRUE(bytes.empty()) << "trailing bytes: " << bytes;
  return r;
}

// ---- The fixture: a session, a view, a state machine applied like the node ----------

class CommandsTest : public ::testing::Test {
 protected:
  CommandsTest() {
    session_.id = 42;
    view_.node_id = 3;
    view_.role = "leader";
    view_.status_json = R"({"role":"leader","term":7})";
    view_.time_base_ms = 1'000'000;
  }

  Plan plan(const Args& args) { return plan_command(args, session_, view_); }

  // The reply of a command that must be answered at once.
  std::string immediate(const Args& args) {
    Plan p = plan(args);
    if (!std::holds_alternative<ImmediateReply>(p)) {
      ADD_FAILURE() << args[0] << ": not an ImmediateReply";
      return "";
    }
    return std::get<ImmediateReply>(p).resp;
  }

  // The kvpb::Command of a write.
  kvpb::Command command_of(const Args& args) {
    Plan p = plan(args);
    if (!std::holds_alternative<WriteOp>(p)) {
      ADD_FAILURE() << args[0] << ": not a WriteOp";
      return {};
    }
    return std::get<WriteOp>(p).command;
  }

  // Applies a command at the next index with the replicated time `now_ms_`.
  kvpb::Result apply(kvpb::Command cmd) {
    cmd.set_now_ms(now_ms_);
    return sm_.apply(LogIndex(++index_), kv::encode(cmd));
  }

  // Executes any plan the way the node does and returns the RESP bytes.
  std::string run(const Args& args) {
    Plan p = plan(args);
    if (auto* r = std::get_if<ImmediateReply>(&p)) return r->resp;
    if (auto* w = std::get_if<WriteOp>(&p)) {
      w->command.set_client_id(session_.id);
      w->command.set_seq(++seq_);
      return w->reply(apply(w->command));
    }
    return std::get<ReadOp>(p).run(sm_);
  }

  void put(std::string key, std::string value) {
    ASSERT_EQ(apply(kv::make_put(std::move(key), std::move(value))).code(), kvpb::Result::OK);
  }

  Session session_;
  ServerView view_;
  kv::MemoryStateMachine sm_;
  uint64_t index_ = 0;
  uint64_t seq_ = 0;
  int64_t now_ms_ = 1'000'000;
};

// ---- Dispatch: kinds, names, arity, unknown commands --------------------------------

TEST_F(CommandsTest, EachCommandPlansTheRightKind) {
  const std::vector<Args> immediate_cmds = {
      {"PING"},          {"ECHO", "x"},         {"QUIT"},    {"SELECT", "0"},
      {"HELLO"},         {"CLIENT", "ID"},      {"COMMAND"}, {"CONFIG", "GET", "save"},
      {"CHORUS.STATUS"}, {"CHORUS.CONSISTENCY"}};
  const std::vector<Args> writes = {{"SET", "k", "v"},        {"SETNX", "k", "v"},
                                    {"SETEX", "k", "1", "v"}, {"PSETEX", "k", "1", "v"},
                                    {"GETSET", "k", "v"},     {"APPEND", "k", "v"},
                                    {"MSET", "k", "v"},       {"INCR", "k"},
                                    {"INCRBY", "k", "2"},     {"DECR", "k"},
                                    {"DECRBY", "k", "2"},     {"DEL", "k"},
                                    {"UNLINK", "k"},          {"CHORUS.CAS", "k", "a", "b"}};
  const std::vector<Args> reads = {{"GET", "k"},  {"STRLEN", "k"}, {"MGET", "k"}, {"EXISTS", "k"},
                                   {"TYPE", "k"}, {"DBSIZE"},      {"SCAN", "0"}, {"INFO"}};
  for (const Args& a : immediate_cmds) {
    EXPECT_TRUE(std::holds_alternative<ImmediateReply>(plan(a))) << a[0];
  }
  for (const Args& a : writes) {
    EXPECT_TRUE(std::holds_alternative<WriteOp>(plan(a))) << a[0];
    EXPECT_TRUE(command_is_write(a[0])) << a[0];
  }
  for (const Args& a : reads) {
    EXPECT_TRUE(std::holds_alternative<ReadOp>(plan(a))) << a[0];
    EXPECT_FALSE(command_is_write(a[0])) << a[0];
  }
}

TEST_F(CommandsTest, CommandNamesAreCaseInsensitive) {
  EXPECT_EQ(run({"set", "k", "v"}), "+OK\r\n");
  EXPECT_EQ(run({"GeT", "k"}), "$1\r\nv\r\n");
  EXPECT_EQ(run({"pInG"}), "+PONG\r\n");
  EXPECT_EQ(run({"client", "gEtNaMe"}), "$-1\r\n");
  EXPECT_EQ(run({"Chorus.Status"}), "$26\r\n{\"role\":\"leader\",\"term\":7}\r\n");
  EXPECT_TRUE(command_is_write("sEt"));
  EXPECT_EQ(command_metric_name("MGET"), "mget");
  EXPECT_EQ(command_metric_name("nosuch"), "unknown");
}

TEST_F(CommandsTest, UnknownCommandUsesRedisText) {
  EXPECT_EQ(immediate({"foo", "a", "b"}),
            "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n");
  EXPECT_EQ(immediate({"FOO"}), "-ERR unknown command 'FOO', with args beginning with: \r\n");
  // Arguments are shown up to a 128-byte budget, each cut to what is left.
  const std::string long_arg(200, 'x');
  EXPECT_EQ(
      immediate({"foo", long_arg, "more"}),
      "-ERR unknown command 'foo', with args beginning with: '" + std::string(128, 'x') + "' \r\n");
  EXPECT_EQ(immediate({std::string(200, 'n')}),
            "-ERR unknown command '" + std::string(128, 'n') + "', with args beginning with: \r\n");
  // User bytes never break the protocol: CR and LF become spaces.
  EXPECT_EQ(immediate({"fo\r\no", "a\nb"}),
            "-ERR unknown command 'fo  o', with args beginning with: 'a b' \r\n");
}

TEST_F(CommandsTest, WrongArityNamesTheCommandInLowercase) {
  EXPECT_EQ(immediate({"GET"}), "-ERR wrong number of arguments for 'get' command\r\n");
  EXPECT_EQ(immediate({"GET", "a", "b"}), "-ERR wrong number of arguments for 'get' command\r\n");
  EXPECT_EQ(immediate({"SET", "k"}), "-ERR wrong number of arguments for 'set' command\r\n");
  EXPECT_EQ(immediate({"MSET", "a", "1", "b"}),
            "-ERR wrong number of arguments for 'mset' command\r\n");
  EXPECT_EQ(immediate({"PING", "a", "b"}), "-ERR wrong number of arguments for 'ping' command\r\n");
  EXPECT_EQ(immediate({"DBSIZE", "x"}), "-ERR wrong number of arguments for 'dbsize' command\r\n");
  EXPECT_EQ(immediate({"CLIENT"}), "-ERR wrong number of arguments for 'client' command\r\n");
  EXPECT_EQ(immediate({"CLIENT", "SETNAME"}),
            "-ERR wrong number of arguments for 'client|setname' command\r\n");
  EXPECT_EQ(immediate({"CONFIG", "GET"}),
            "-ERR wrong number of arguments for 'config|get' command\r\n");
  EXPECT_EQ(immediate({"CHORUS.CONSISTENCY", "lease", "x"}),
            "-ERR wrong number of arguments for 'chorus.consistency' command\r\n");
}

TEST_F(CommandsTest, EmptyCommandGetsNoReply) {
  const ImmediateReply r = std::get<ImmediateReply>(plan({}));
  EXPECT_EQ(r.resp, "");
  EXPECT_FALSE(r.close_after);
}

// ---- Strings -----------------------------------------------------------------------

TEST_F(CommandsTest, GetReturnsBulkOrNull) {
  EXPECT_EQ(run({"GET", "k"}), "$-1\r\n");
  put("k", "hello");
  EXPECT_EQ(run({"GET", "k"}), "$5\r\nhello\r\n");
  put("empty", "");
  EXPECT_EQ(run({"GET", "empty"}), "$0\r\n\r\n");
  put("bin", std::string("a\0\r\nb", 5));
  EXPECT_EQ(run({"GET", "bin"}), std::string("$5\r\na\0\r\nb\r\n", 11));
}

TEST_F(CommandsTest, SetBuildsAPut) {
  kvpb::Command c = command_of({"SET", "k", "v"});
  ASSERT_TRUE(c.has_put());
  EXPECT_EQ(c.put().key(), "k");
  EXPECT_EQ(c.put().value(), "v");
  EXPECT_EQ(c.put().condition(), kvpb::Put::ALWAYS);
  EXPECT_EQ(c.put().expire_at_ms(), 0);
  EXPECT_FALSE(c.put().return_old());
  EXPECT_EQ(c.client_id(), 0u);  // the node fills the session, seq and time
  EXPECT_EQ(c.now_ms(), 0);

  EXPECT_EQ(command_of({"SET", "k", "v", "nx"}).put().condition(), kvpb::Put::IF_ABSENT);
  EXPECT_EQ(command_of({"SET", "k", "v", "XX"}).put().condition(), kvpb::Put::IF_PRESENT);
  EXPECT_TRUE(command_of({"SET", "k", "v", "GET"}).put().return_old());
  c = command_of({"SET", "k", "v", "NX", "GET", "EX", "10"});
  EXPECT_EQ(c.put().condition(), kvpb::Put::IF_ABSENT);
  EXPECT_TRUE(c.put().return_old());
  EXPECT_EQ(c.put().expire_at_ms(), 1'000'000 + 10'000);
}

TEST_F(CommandsTest, SetExpiryFormsGiveAbsoluteTimes) {
  EXPECT_EQ(command_of({"SET", "k", "v", "EX", "5"}).put().expire_at_ms(), 1'005'000);
  EXPECT_EQ(command_of({"SET", "k", "v", "px", "250"}).put().expire_at_ms(), 1'000'250);
  EXPECT_EQ(command_of({"SET", "k", "v", "EXAT", "2000"}).put().expire_at_ms(), 2'000'000);
  EXPECT_EQ(command_of({"SET", "k", "v", "PXAT", "1234"}).put().expire_at_ms(), 1234);
  // The same form twice: the last one wins (Redis).
  EXPECT_EQ(command_of({"SET", "k", "v", "EX", "1", "EX", "2"}).put().expire_at_ms(), 1'002'000);
}

TEST_F(CommandsTest, SetOptionConflictsAreSyntaxErrors) {
  const std::string syntax = "-ERR syntax error\r\n";
  EXPECT_EQ(immediate({"SET", "k", "v", "NX", "XX"}), syntax);
  EXPECT_EQ(immediate({"SET", "k", "v", "XX", "NX"}), syntax);
  EXPECT_EQ(immediate({"SET", "k", "v", "EX", "1", "PX", "1"}), syntax);
  EXPECT_EQ(immediate({"SET", "k", "v", "EXAT", "1", "PXAT", "1"}), syntax);
  EXPECT_EQ(immediate({"SET", "k", "v", "KEEPTTL", "EX", "1"}), syntax);
  EXPECT_EQ(immediate({"SET", "k", "v", "PX", "1", "KEEPTTL"}), syntax);
  EXPECT_EQ(immediate({"SET", "k", "v", "EX"}), syntax);
  EXPECT_EQ(immediate({"SET", "k", "v", "FOO"}), syntax);
  EXPECT_EQ(immediate({"SET", "k", "v", "NXX"}), syntax);
}

TEST_F(CommandsTest, SetRejectsInvalidExpireTimes) {
  const std::string invalid = "-ERR invalid expire time in 'set' command\r\n";
  EXPECT_EQ(immediate({"SET", "k", "v", "EX", "0"}), invalid);
  EXPECT_EQ(immediate({"SET", "k", "v", "PX", "-5"}), invalid);
  EXPECT_EQ(immediate({"SET", "k", "v", "EXAT", "0"}), invalid);
  EXPECT_EQ(immediate({"SET", "k", "v", "EX", "9223372036854776"}), invalid);  // * 1000 overflows
  EXPECT_EQ(immediate({"SET", "k", "v", "PX", "9223372036854775807"}), invalid);  // + base
  EXPECT_EQ(immediate({"SET", "k", "v", "EX", "ten"}),
            "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(immediate({"SET", "k", "v", "EX", "+5"}),
            "-ERR value is not an integer or out of range\r\n");
}

TEST_F(CommandsTest, SetKeepTtlIsRefused) {
  EXPECT_EQ(immediate({"SET", "k", "v", "KEEPTTL"}), "-ERR SET KEEPTTL is not supported\r\n");
}

TEST_F(CommandsTest, SetRepliesFollowTheCondition) {
  EXPECT_EQ(run({"SET", "k", "v1"}), "+OK\r\n");
  EXPECT_EQ(run({"SET", "k", "v2", "NX"}), "$-1\r\n");
  EXPECT_EQ(run({"GET", "k"}), "$2\r\nv1\r\n");
  EXPECT_EQ(run({"SET", "other", "x", "XX"}), "$-1\r\n");
  EXPECT_EQ(run({"EXISTS", "other"}), ":0\r\n");
  EXPECT_EQ(run({"SET", "k", "v3", "XX"}), "+OK\r\n");
  EXPECT_EQ(run({"SET", "k", "v4", "GET"}), "$2\r\nv3\r\n");
  EXPECT_EQ(run({"SET", "new", "n", "GET"}), "$-1\r\n");
  // NX GET on an existing key: the old value, and nothing written.
  EXPECT_EQ(run({"SET", "k", "v5", "NX", "GET"}), "$2\r\nv4\r\n");
  EXPECT_EQ(run({"GET", "k"}), "$2\r\nv4\r\n");
}

TEST_F(CommandsTest, SetExpiresAtTheReplicatedTime) {
  EXPECT_EQ(run({"SET", "k", "v", "PX", "100"}), "+OK\r\n");
  now_ms_ = 1'000'099;
  apply(kv::make_tick(now_ms_));
  EXPECT_EQ(run({"GET", "k"}), "$1\r\nv\r\n");
  now_ms_ = 1'000'100;
  apply(kv::make_tick(now_ms_));
  EXPECT_EQ(run({"GET", "k"}), "$-1\r\n");
  // EXAT in the past deletes the key, as in Redis.
  put("old", "x");
  EXPECT_EQ(run({"SET", "old", "y", "EXAT", "5"}), "+OK\r\n");
  EXPECT_EQ(run({"EXISTS", "old"}), ":0\r\n");
}

TEST_F(CommandsTest, SetnxSetexPsetexGetset) {
  EXPECT_EQ(run({"SETNX", "k", "a"}), ":1\r\n");
  EXPECT_EQ(run({"SETNX", "k", "b"}), ":0\r\n");
  EXPECT_EQ(command_of({"SETNX", "k", "a"}).put().condition(), kvpb::Put::IF_ABSENT);

  kvpb::Command c = command_of({"SETEX", "s", "7", "v"});
  EXPECT_EQ(c.put().value(), "v");
  EXPECT_EQ(c.put().expire_at_ms(), 1'007'000);
  EXPECT_EQ(command_of({"PSETEX", "s", "7", "v"}).put().expire_at_ms(), 1'000'007);
  EXPECT_EQ(run({"SETEX", "s", "7", "v"}), "+OK\r\n");
  EXPECT_EQ(immediate({"SETEX", "s", "0", "v"}), "-ERR invalid expire time in 'setex' command\r\n");
  EXPECT_EQ(immediate({"PSETEX", "s", "-1", "v"}),
            "-ERR invalid expire time in 'psetex' command\r\n");

  EXPECT_TRUE(command_of({"GETSET", "k", "z"}).put().return_old());
  EXPECT_EQ(run({"GETSET", "k", "z"}), "$1\r\na\r\n");
  EXPECT_EQ(run({"GETSET", "fresh", "z"}), "$-1\r\n");
  EXPECT_EQ(run({"GET", "fresh"}), "$1\r\nz\r\n");
}

TEST_F(CommandsTest, AppendAndStrlen) {
  kvpb::Command c = command_of({"APPEND", "k", "ab"});
  ASSERT_TRUE(c.has_append());
  EXPECT_EQ(c.append().key(), "k");
  EXPECT_EQ(c.append().value(), "ab");
  EXPECT_EQ(run({"STRLEN", "k"}), ":0\r\n");
  EXPECT_EQ(run({"APPEND", "k", "ab"}), ":2\r\n");
  EXPECT_EQ(run({"APPEND", "k", "cde"}), ":5\r\n");
  EXPECT_EQ(run({"STRLEN", "k"}), ":5\r\n");
  EXPECT_EQ(run({"GET", "k"}), "$5\r\nabcde\r\n");
}

TEST_F(CommandsTest, MgetAndMset) {
  kvpb::Command c = command_of({"MSET", "a", "1", "b", "2"});
  ASSERT_TRUE(c.has_multi_put());
  ASSERT_EQ(c.multi_put().kvs_size(), 2);
  EXPECT_EQ(c.multi_put().kvs(1).key(), "b");
  EXPECT_EQ(c.multi_put().kvs(1).value(), "2");
  EXPECT_EQ(c.multi_put().kvs(1).expire_at_ms(), 0);
  EXPECT_EQ(run({"MSET", "a", "1", "b", "2"}), "+OK\r\n");
  EXPECT_EQ(run({"MGET", "a", "nope", "b", "a"}), "*4\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n$1\r\n1\r\n");
}

// ---- Counters ----------------------------------------------------------------------

TEST_F(CommandsTest, IncrFamilyBuildsIncrBy) {
  auto delta = [&](const Args& a) {
    kvpb::Command c = command_of(a);
    EXPECT_TRUE(c.has_incr_by());
    EXPECT_EQ(c.incr_by().key(), "n");
    return c.incr_by().delta();
  };
  EXPECT_EQ(delta({"INCR", "n"}), 1);
  EXPECT_EQ(delta({"DECR", "n"}), -1);
  EXPECT_EQ(delta({"INCRBY", "n", "-7"}), -7);
  EXPECT_EQ(delta({"DECRBY", "n", "7"}), -7);
  EXPECT_EQ(delta({"INCRBY", "n", "-9223372036854775808"}), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(delta({"DECRBY", "n", "9223372036854775807"}), -std::numeric_limits<int64_t>::max());
}

TEST_F(CommandsTest, IncrFamilyReplies) {
  EXPECT_EQ(run({"INCR", "n"}), ":1\r\n");
  EXPECT_EQ(run({"INCRBY", "n", "10"}), ":11\r\n");
  EXPECT_EQ(run({"DECR", "n"}), ":10\r\n");
  EXPECT_EQ(run({"DECRBY", "n", "15"}), ":-5\r\n");
  EXPECT_EQ(run({"GET", "n"}), "$2\r\n-5\r\n");
}

TEST_F(CommandsTest, IncrFamilyErrors) {
  const std::string not_int = "-ERR value is not an integer or out of range\r\n";
  EXPECT_EQ(immediate({"INCRBY", "n", "x"}), not_int);
  EXPECT_EQ(immediate({"INCRBY", "n", "1.5"}), not_int);
  EXPECT_EQ(immediate({"INCRBY", "n", " 1"}), not_int);
  EXPECT_EQ(immediate({"INCRBY", "n", "01"}), not_int);
  EXPECT_EQ(immediate({"INCRBY", "n", "-0"}), not_int);
  EXPECT_EQ(immediate({"INCRBY", "n", "9223372036854775808"}), not_int);
  EXPECT_EQ(immediate({"DECRBY", "n", "-9223372036854775809"}), not_int);
  EXPECT_EQ(immediate({"DECRBY", "n", "-9223372036854775808"}),
            "-ERR decrement would overflow\r\n");
  put("s", "abc");
  EXPECT_EQ(run({"INCR", "s"}), not_int);
  put("max", "9223372036854775807");
  EXPECT_EQ(run({"INCR", "max"}), "-ERR increment or decrement would overflow\r\n");
  put("min", "-9223372036854775808");
  EXPECT_EQ(run({"DECRBY", "min", "1"}), "-ERR increment or decrement would overflow\r\n");
}

// ---- Keys --------------------------------------------------------------------------

TEST_F(CommandsTest, DelCountsRemovedKeys) {
  kvpb::Command c = command_of({"DEL", "a", "b", "a"});
  ASSERT_TRUE(c.has_del());
  ASSERT_EQ(c.del().keys_size(), 3);
  EXPECT_EQ(c.del().keys(2), "a");
  put("a", "1");
  put("b", "2");
  EXPECT_EQ(run({"DEL", "a", "b", "a", "zz"}), ":2\r\n");
  EXPECT_EQ(run({"DEL", "a"}), ":0\r\n");
  put("c", "3");
  EXPECT_EQ(run({"UNLINK", "c"}), ":1\r\n");
}

TEST_F(CommandsTest, ExistsCountsDuplicates) {
  put("a", "1");
  EXPECT_EQ(run({"EXISTS", "a", "a", "b", "a"}), ":3\r\n");
  EXPECT_EQ(run({"EXISTS", "b"}), ":0\r\n");
}

TEST_F(CommandsTest, TypeAndDbsize) {
  EXPECT_EQ(run({"DBSIZE"}), ":0\r\n");
  put("a", "1");
  put("b", "2");
  EXPECT_EQ(run({"DBSIZE"}), ":2\r\n");
  EXPECT_EQ(run({"TYPE", "a"}), "+string\r\n");
  EXPECT_EQ(run({"TYPE", "zz"}), "+none\r\n");
}

// ---- Write results the command does not expect -------------------------------------

TEST_F(CommandsTest, WriteResultCodesMapToErrors) {
  auto reply_for = [&](const Args& a, kvpb::Result::Code code) {
    kvpb::Result r;
    r.set_code(code);
    return std::get<WriteOp>(plan(a)).reply(r);
  };
  EXPECT_EQ(reply_for({"SET", "k", "v"}, kvpb::Result::STALE_SEQUENCE), "-ERR stale request\r\n");
  EXPECT_EQ(reply_for({"SET", "k", "v"}, kvpb::Result::BAD_COMMAND),
            "-ERR internal: bad command\r\n");
  EXPECT_EQ(reply_for({"APPEND", "k", "v"}, kvpb::Result::TOO_LARGE), "-ERR value too large\r\n");
  EXPECT_EQ(reply_for({"MSET", "k", "v"}, kvpb::Result::TOO_LARGE), "-ERR value too large\r\n");
  EXPECT_EQ(reply_for({"DEL", "k"}, kvpb::Result::CONDITION_FAILED),
            "-ERR internal: unexpected result CONDITION_FAILED\r\n");
  EXPECT_EQ(reply_for({"SET", "k", "v", "XX"}, kvpb::Result::CONDITION_FAILED), "$-1\r\n");
}

// A state machine whose every read fails.
class BrokenStateMachine final : public kv::StateMachine {
 public:
  Result<std::vector<kvpb::Result>> apply_batch(std::span<const Entry>) override { return err(); }
  LogIndex applied_index() const override { return LogIndex(0); }
  int64_t now_ms() const override { return 0; }
  Result<std::optional<std::string>> read(std::string_view) const override { return err(); }
  Result<uint64_t> key_count() const override { return err(); }
  Result<ScanPage> scan(std::string_view, size_t) const override { return err(); }
  Status save_snapshot(const ChunkSink&) const override { return err(); }
  Status load_snapshot(const ChunkSource&) override { return err(); }
  Status sync() override { return err(); }

 private:
  static Status err() { return Status::io_error("disk on fire"); }
};

TEST_F(CommandsTest, StorageErrorsBecomeRespErrors) {
  BrokenStateMachine broken;
  const std::string expected =
      "-ERR storage error: " + Status::io_error("disk on fire").to_string() + "\r\n";
  for (const Args& a : std::vector<Args>{{"GET", "k"},
                                         {"STRLEN", "k"},
                                         {"MGET", "a", "b"},
                                         {"EXISTS", "k"},
                                         {"TYPE", "k"},
                                         {"DBSIZE"},
                                         {"SCAN", "0"},
                                         {"INFO"}}) {
    EXPECT_EQ(std::get<ReadOp>(plan(a)).run(broken), expected) << a[0];
  }
}

// ---- SCAN --------------------------------------------------------------------------

struct ScanPageReply {
  std::string cursor;
  std::vector<std::string> keys;
};

ScanPageReply scan_page(const std::string& bytes) {
  Reply r = parse(bytes);
  EXPECT_EQ(r.type, '*') << bytes;
  ScanPageReply page;
  if (r.type != '*' || r.elems.size() != 2) return page;
  page.cursor = r.elems[0].str;
  for (const Reply& k : r.elems[1].elems) page.keys.push_back(k.str);
  return page;
}

TEST_F(CommandsTest, ScanWithCountAndMatchVisitsEachMatchingKeyOnce) {
  std::set<std::string> expected;
  for (int i = 0; i < 1000; ++i) {
    const std::string key = "key:" + std::to_string(i);
    put(key, "v");
    if (glob_match("key:1*", key)) expected.insert(key);
  }
  put("other", "x");
  ASSERT_EQ(expected.size(), 111u);  // 1, 10..19, 100..199
  std::multiset<std::string> seen;
  std::string cursor = "0";
  int calls = 0;
  do {
    ScanPageReply page = scan_page(run({"SCAN", cursor, "MATCH", "key:1*", "COUNT", "7"}));
    ASSERT_LE(page.keys.size(), 7u);
    seen.insert(page.keys.begin(), page.keys.end());
    cursor = page.cursor;
    ASSERT_LT(++calls, 1000) << "SCAN does not terminate";
  } while (cursor != "0");
  EXPECT_EQ(calls, 143);  // ceil(1001 / 7): COUNT bounds the keys examined
  EXPECT_EQ(seen, std::multiset<std::string>(expected.begin(), expected.end()));
}

TEST_F(CommandsTest, ScanWithoutOptions) {
  EXPECT_EQ(run({"SCAN", "0"}), "*2\r\n$1\r\n0\r\n*0\r\n");
  for (int i = 0; i < 15; ++i) put("k" + std::to_string(100 + i), "v");
  ScanPageReply first = scan_page(run({"SCAN", "0"}));
  EXPECT_EQ(first.keys.size(), 10u);  // Redis's default COUNT
  EXPECT_EQ(first.keys.front(), "k100");
  ASSERT_NE(first.cursor, "0");
  // redis-cli parses the cursor with strtoull: it must be a plain decimal < 2^63.
  EXPECT_LT(std::stoull(first.cursor), uint64_t{1} << 63);
  ScanPageReply second = scan_page(run({"SCAN", first.cursor}));
  EXPECT_EQ(second.cursor, "0");
  EXPECT_EQ(second.keys, (std::vector<std::string>{"k110", "k111", "k112", "k113", "k114"}));
  // A cursor stays valid: a retried page gives the same keys.
  EXPECT_EQ(scan_page(run({"SCAN", first.cursor})).keys, second.keys);
  // MATCH "*" matches everything, the empty key included.
  put("", "empty");
  EXPECT_EQ(scan_page(run({"SCAN", "0", "MATCH", "*", "COUNT", "100"})).keys.size(), 16u);
}

TEST_F(CommandsTest, ScanTypeFilter) {
  put("a", "1");
  EXPECT_EQ(scan_page(run({"SCAN", "0", "TYPE", "STRING"})).keys.size(), 1u);
  EXPECT_EQ(scan_page(run({"SCAN", "0", "TYPE", "hash"})).keys.size(), 0u);
}

TEST_F(CommandsTest, ScanArgumentErrors) {
  const std::string invalid = "-ERR invalid cursor\r\n";
  EXPECT_EQ(immediate({"SCAN", "abc"}), invalid);
  EXPECT_EQ(immediate({"SCAN", " 1"}), invalid);
  EXPECT_EQ(immediate({"SCAN", "1x"}), invalid);
  EXPECT_EQ(immediate({"SCAN", "99999999999999999999"}), invalid);  // ERANGE
  EXPECT_EQ(immediate({"SCAN", "12345"}), invalid);                 // never handed out
  EXPECT_EQ(immediate({"SCAN", "0", "COUNT", "0"}), "-ERR syntax error\r\n");
  EXPECT_EQ(immediate({"SCAN", "0", "COUNT", "x"}),
            "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(immediate({"SCAN", "0", "COUNT"}), "-ERR syntax error\r\n");
  EXPECT_EQ(immediate({"SCAN", "0", "BOGUS", "1"}), "-ERR syntax error\r\n");
  // As strtoull reads it, "" and "+0" are the cursor 0.
  EXPECT_TRUE(std::holds_alternative<ReadOp>(plan({"SCAN", ""})));
  EXPECT_TRUE(std::holds_alternative<ReadOp>(plan({"SCAN", "+0"})));
}

TEST_F(CommandsTest, ScanCursorFromAnotherConnectionIsRefused) {
  for (int i = 0; i < 20; ++i) put("k" + std::to_string(i), "v");
  const std::string cursor = scan_page(run({"SCAN", "0"})).cursor;
  ASSERT_NE(cursor, "0");
  Session other;
  other.id = 43;
  const Plan p = plan_command({"SCAN", cursor}, other, view_);
  EXPECT_EQ(std::get<ImmediateReply>(p).resp, "-ERR invalid cursor\r\n");
}

TEST(ScanCursorTableTest, CursorsAreUniqueNonZeroAndBounded) {
  ScanCursorTable a, b;
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t ca = a.add(1, "a" + std::to_string(i));
    const uint64_t cb = b.add(2, "b" + std::to_string(i));
    EXPECT_NE(ca, 0u);
    EXPECT_LT(ca, uint64_t{1} << 63);
    EXPECT_TRUE(seen.insert(ca).second);
    EXPECT_TRUE(seen.insert(cb).second);
    EXPECT_EQ(a.find(ca), "a" + std::to_string(i));
    EXPECT_EQ(a.find(cb), std::nullopt);
  }
  EXPECT_EQ(a.size(), ScanCursorTable::kCursorsMax);
}

TEST(ScanCursorTableTest, OldestCursorIsEvictedFirst) {
  ScanCursorTable t;
  const uint64_t first = t.add(1, "first");
  const uint64_t second = t.add(1, "second");
  for (size_t i = 2; i < ScanCursorTable::kCursorsMax; ++i) t.add(1, "x");
  EXPECT_EQ(t.find(first), "first");
  t.add(1, "one more");
  EXPECT_EQ(t.find(first), std::nullopt);
  EXPECT_EQ(t.find(second), "second");
  // The byte bound: big keys evict earlier.
  const std::string big(ScanCursorTable::kKeyBytesMax / 2 + 1, 'k');
  const uint64_t big1 = t.add(1, big);
  t.add(1, big);
  EXPECT_EQ(t.find(big1), std::nullopt);
  EXPECT_EQ(t.size(), 1u);
}

// ---- Connection commands ------------------------------------------------------------

TEST_F(CommandsTest, PingEchoQuitSelect) {
  EXPECT_EQ(immediate({"PING"}), "+PONG\r\n");
  EXPECT_EQ(immediate({"PING", "hi"}), "$2\r\nhi\r\n");
  EXPECT_EQ(immediate({"ECHO", "a b"}), "$3\r\na b\r\n");
  const ImmediateReply quit = std::get<ImmediateReply>(plan({"QUIT"}));
  EXPECT_EQ(quit.resp, "+OK\r\n");
  EXPECT_TRUE(quit.close_after);
  EXPECT_FALSE(std::get<ImmediateReply>(plan({"PING"})).close_after);
  EXPECT_EQ(immediate({"SELECT", "0"}), "+OK\r\n");
  EXPECT_EQ(immediate({"SELECT", "1"}), "-ERR DB index is out of range\r\n");
  EXPECT_EQ(immediate({"SELECT", "-1"}), "-ERR DB index is out of range\r\n");
  EXPECT_EQ(immediate({"SELECT", "x"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(immediate({"SELECT", "4294967296"}),
            "-ERR value is not an integer or out of range\r\n");
}

TEST_F(CommandsTest, HelloRepliesWithAFlatResp2Map) {
  const std::string expected =
      "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n"
      "$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:42\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n"
      "$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n";
  EXPECT_EQ(immediate({"HELLO"}), expected);
  EXPECT_EQ(immediate({"hello", "2"}), expected);
  EXPECT_EQ(immediate({"HELLO", "2", "SETNAME", "app1"}), expected);
  EXPECT_EQ(session_.name, "app1");
  EXPECT_EQ(immediate({"HELLO", "2", "AUTH", "default", "anything"}), expected);
  view_.role = "follower";
  EXPECT_NE(immediate({"HELLO"}).find("$4\r\nrole\r\n$7\r\nreplica\r\n"), std::string::npos);
}

TEST_F(CommandsTest, HelloRefusesResp3AndBadArguments) {
  EXPECT_EQ(immediate({"HELLO", "3"}), "-NOPROTO unsupported protocol version\r\n");
  EXPECT_EQ(immediate({"HELLO", "1"}), "-NOPROTO unsupported protocol version\r\n");
  EXPECT_EQ(immediate({"HELLO", "two"}),
            "-ERR Protocol version is not an integer or out of range\r\n");
  EXPECT_EQ(immediate({"HELLO", "2", "FOO"}), "-ERR Syntax error in HELLO option 'FOO'\r\n");
  EXPECT_EQ(immediate({"HELLO", "2", "SETNAME"}),
            "-ERR Syntax error in HELLO option 'SETNAME'\r\n");
  EXPECT_EQ(immediate({"HELLO", "2", "AUTH", "bob", "pw"}),
            "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
  EXPECT_EQ(immediate({"HELLO", "2", "SETNAME", "a b"}),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
  EXPECT_EQ(session_.name, "");
}

TEST_F(CommandsTest, ClientSubcommands) {
  EXPECT_EQ(immediate({"CLIENT", "ID"}), ":42\r\n");
  EXPECT_EQ(immediate({"CLIENT", "GETNAME"}), "$-1\r\n");
  EXPECT_EQ(immediate({"CLIENT", "SETNAME", "worker-1"}), "+OK\r\n");
  EXPECT_EQ(immediate({"CLIENT", "GETNAME"}), "$8\r\nworker-1\r\n");
  EXPECT_EQ(immediate({"CLIENT", "SETNAME", "bad name"}),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
  EXPECT_EQ(immediate({"CLIENT", "SETNAME", ""}), "+OK\r\n");  // clears it
  EXPECT_EQ(immediate({"CLIENT", "GETNAME"}), "$-1\r\n");
  EXPECT_EQ(immediate({"CLIENT", "SETINFO", "LIB-NAME", "redis-py"}), "+OK\r\n");
  EXPECT_EQ(immediate({"CLIENT", "SETINFO", "lib-ver", "5.0.1"}), "+OK\r\n");
  EXPECT_EQ(session_.lib_name, "redis-py");
  EXPECT_EQ(session_.lib_version, "5.0.1");
  EXPECT_EQ(immediate({"CLIENT", "SETINFO", "color", "red"}),
            "-ERR Unrecognized option 'color'\r\n");
  EXPECT_EQ(immediate({"CLIENT", "KILL", "x"}),
            "-ERR unknown subcommand 'KILL'. Try CLIENT HELP.\r\n");
}

// ---- Introspection: COMMAND, CONFIG, INFO ---------------------------------------------

TEST_F(CommandsTest, CommandIntrospection) {
  EXPECT_EQ(immediate({"COMMAND", "COUNT"}), ":" + std::to_string(command_count()) + "\r\n");
  EXPECT_EQ(immediate({"COMMAND", "DOCS"}), "*0\r\n");
  EXPECT_EQ(immediate({"COMMAND", "DOCS", "get"}), "*0\r\n");
  const Reply all = parse(immediate({"COMMAND"}));
  EXPECT_EQ(all.elems.size(), command_count());
  EXPECT_EQ(parse(immediate({"COMMAND", "LIST"})).elems.size(), command_count());
  const Reply info = parse(immediate({"COMMAND", "INFO", "mget", "nosuch"}));
  ASSERT_EQ(info.elems.size(), 2u);
  const Reply& mget = info.elems[0];
  ASSERT_EQ(mget.elems.size(), 10u);
  EXPECT_EQ(mget.elems[0].str, "mget");
  EXPECT_EQ(mget.elems[1].integer, -2);
  ASSERT_EQ(mget.elems[2].elems.size(), 2u);
  EXPECT_EQ(mget.elems[2].elems[0].str, "readonly");
  EXPECT_EQ(mget.elems[3].integer, 1);
  EXPECT_EQ(mget.elems[4].integer, -1);
  EXPECT_EQ(mget.elems[5].integer, 1);
  EXPECT_TRUE(info.elems[1].null);
  const Reply client = parse(immediate({"COMMAND", "INFO", "client"})).elems[0];
  EXPECT_EQ(client.elems[9].elems.at(0).elems.at(0).str, "client|id");
  EXPECT_EQ(immediate({"COMMAND", "FOO"}), "-ERR unknown subcommand 'FOO'. Try COMMAND HELP.\r\n");
}

TEST_F(CommandsTest, ConfigGetMatchesKnownParameters) {
  EXPECT_EQ(immediate({"CONFIG", "GET", "save"}), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
  EXPECT_EQ(immediate({"config", "get", "APPENDONLY"}), "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
  view_.max_bulk_bytes = 1024;
  EXPECT_EQ(immediate({"CONFIG", "GET", "proto-max-bulk-len"}),
            "*2\r\n$18\r\nproto-max-bulk-len\r\n$4\r\n1024\r\n");
  EXPECT_EQ(immediate({"CONFIG", "GET", "nosuch"}), "*0\r\n");
  // Globs, several patterns, each parameter once.
  const Reply r = parse(immediate({"CONFIG", "GET", "max*", "*memory", "databases"}));
  std::map<std::string, std::string> got;
  for (size_t i = 0; i + 1 < r.elems.size(); i += 2) got[r.elems[i].str] = r.elems[i + 1].str;
  EXPECT_EQ(r.elems.size(), 6u);
  EXPECT_EQ(got, (std::map<std::string, std::string>{
                     {"maxmemory", "0"}, {"maxclients", "10000"}, {"databases", "1"}}));
  EXPECT_EQ(parse(immediate({"CONFIG", "GET", "*"})).elems.size(), 14u);
  EXPECT_EQ(immediate({"CONFIG", "SET", "save", ""}), "-ERR CONFIG SET is not supported\r\n");
  EXPECT_EQ(immediate({"CONFIG", "REWRITE"}),
            "-ERR unknown subcommand 'REWRITE'. Try CONFIG HELP.\r\n");
}

std::string info_text(const std::string& bytes) {
  const Reply r = parse(bytes);
  EXPECT_EQ(r.type, '$');
  return r.str;
}

TEST_F(CommandsTest, InfoReportsRoleVersionsAndKeys) {
  put("a", "1");
  put("b", "2");
  const Plan p = plan({"INFO"});
  ASSERT_TRUE(std::get<ReadOp>(p).local_ok);
  const std::string text = info_text(std::get<ReadOp>(p).run(sm_));
  EXPECT_EQ(text.rfind("# Server\r\nredis_version:7.0.0\r\n", 0), 0u) << text;
  EXPECT_NE(text.find("\r\nchorus_version:0.1.0\r\n"), std::string::npos);
  EXPECT_NE(text.find("\r\nchorus_node_id:3\r\n"), std::string::npos);
  EXPECT_NE(text.find("\r\n\r\n# Replication\r\nrole:master\r\n"), std::string::npos);
  EXPECT_NE(text.find("\r\nchorus_role:leader\r\n"), std::string::npos);
  EXPECT_NE(text.find("\r\n\r\n# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n"),
            std::string::npos);
  EXPECT_EQ(text.substr(text.size() - 2), "\r\n");
}

TEST_F(CommandsTest, InfoSections) {
  view_.role = "follower";
  EXPECT_EQ(info_text(run({"INFO", "replication"})),
            "# Replication\r\nrole:slave\r\nconnected_slaves:0\r\nchorus_role:follower\r\n");
  EXPECT_EQ(info_text(run({"INFO", "KEYSPACE"})), "# Keyspace\r\n");  // no db0 line when empty
  EXPECT_EQ(info_text(run({"INFO", "nosuch"})), "");
  const std::string two = info_text(run({"INFO", "clients", "keyspace"}));
  EXPECT_EQ(two, "# Clients\r\nconnected_clients:0\r\nmaxclients:10000\r\n\r\n# Keyspace\r\n");
  EXPECT_NE(info_text(run({"INFO", "everything"})).find("# Server"), std::string::npos);
}

// ---- CHORUS.* ---------------------------------------------------------------------

TEST_F(CommandsTest, ChorusStatusIsTheViewsJson) {
  EXPECT_EQ(immediate({"CHORUS.STATUS"}), "$26\r\n{\"role\":\"leader\",\"term\":7}\r\n");
}

TEST_F(CommandsTest, ChorusCas) {
  kvpb::Command c = command_of({"CHORUS.CAS", "k", "old", "new"});
  ASSERT_TRUE(c.has_cas());
  EXPECT_EQ(c.cas().key(), "k");
  EXPECT_EQ(c.cas().expected(), "old");
  EXPECT_EQ(c.cas().value(), "new");
  EXPECT_EQ(run({"CHORUS.CAS", "k", "old", "new"}), ":0\r\n");  // absent: never creates
  put("k", "old");
  EXPECT_EQ(run({"CHORUS.CAS", "k", "nope", "new"}), ":0\r\n");
  EXPECT_EQ(run({"chorus.cas", "k", "old", "new"}), ":1\r\n");
  EXPECT_EQ(run({"GET", "k"}), "$3\r\nnew\r\n");
}

// Every data command's plan names its keys, so the node can route it to its
// keyspace (and refuse a write whose keys span keyspaces).
TEST_F(CommandsTest, PlansCarryTheirKeysForRouting) {
  auto write_keys = [&](const Args& a) { return std::get<WriteOp>(plan(a)).keys; };
  auto read_keys = [&](const Args& a) { return std::get<ReadOp>(plan(a)).keys; };
  EXPECT_EQ(write_keys({"SET", "k", "v"}), (Args{"k"}));
  EXPECT_EQ(write_keys({"MSET", "a", "1", "b", "2"}), (Args{"a", "b"}));
  EXPECT_EQ(write_keys({"DEL", "a", "b", "c"}), (Args{"a", "b", "c"}));
  EXPECT_EQ(write_keys({"CHORUS.CAS", "k", "old", "new"}), (Args{"k"}));
  EXPECT_EQ(read_keys({"GET", "k"}), (Args{"k"}));
  EXPECT_EQ(read_keys({"MGET", "a", "b"}), (Args{"a", "b"}));
  EXPECT_TRUE(read_keys({"DBSIZE"}).empty()) << "the whole keyspace: every group";
  EXPECT_TRUE(read_keys({"SCAN", "0"}).empty());
}

TEST_F(CommandsTest, ChorusKeyspaceArgumentsAreCheckedBeforeTheNodeSeesThem) {
  Plan p = plan({"CHORUS.KEYSPACE", "CREATE", "orders", "PREFIX", "orders:", "strategy", "raft"});
  ASSERT_TRUE(std::holds_alternative<KeyspaceOp>(p));
  const auto& op = std::get<KeyspaceOp>(p);
  EXPECT_EQ(op.kind, KeyspaceOp::Kind::kCreate);
  EXPECT_EQ(op.spec, (KeyspaceSpec{"orders", "orders:", "raft", {}}));
  EXPECT_EQ(std::get<KeyspaceOp>(plan({"chorus.keyspace", "drop", "orders"})).kind,
            KeyspaceOp::Kind::kDrop);
  EXPECT_EQ(std::get<KeyspaceOp>(plan({"CHORUS.KEYSPACE", "LIST"})).kind, KeyspaceOp::Kind::kList);
  EXPECT_EQ(std::get<KeyspaceOp>(plan({"CHORUS.KEYSPACE", "INFO", "x"})).name, "x");
  EXPECT_EQ(
      immediate({"CHORUS.KEYSPACE", "CREATE", "o", "PREFIX", "o:", "STRATEGY", "zab", "acks", "1"}),
      "-ERR invalid keyspace: strategy: 'zab' is not built yet (built: raft, paxos, sync-all, "
      "semi-sync, async)\r\n");
  EXPECT_EQ(immediate({"CHORUS.KEYSPACE", "CREATE", "o", "PREFIX", "o:", "STRATEGY", "semi-sync",
                       "acks", "many"}),
            "-ERR invalid keyspace: option 'acks': 'many' is not an integer in [1, 63]\r\n");
  EXPECT_EQ(immediate({"CHORUS.KEYSPACE", "CREATE", "o", "PREFIX", "o:", "STRATEGY", "raft", "acks",
                       "1"}),
            "-ERR invalid keyspace: option 'acks': unknown for strategy raft (its options: "
            "none)\r\n");
  EXPECT_EQ(
      immediate({"CHORUS.KEYSPACE", "CREATE", "o", "STRATEGY", "raft", "PREFIX", "p:", "acks"}),
      "-ERR CHORUS.KEYSPACE CREATE: 'acks' has no value\r\n");
  EXPECT_EQ(immediate({"CHORUS.KEYSPACE", "CREATE", "o", "STRATEGY", "raft"}),
            "-ERR wrong number of arguments for 'chorus.keyspace|create' command\r\n");
  EXPECT_EQ(immediate({"CHORUS.KEYSPACE", "CREATE", "o", "STRATEGY", "raft", "x", "y"}),
            "-ERR CHORUS.KEYSPACE CREATE: PREFIX is required\r\n");
  EXPECT_EQ(immediate({"CHORUS.KEYSPACE", "DROP", "default"}),
            "-ERR the default keyspace cannot be dropped\r\n");
  EXPECT_EQ(immediate({"CHORUS.KEYSPACE", "RENAME", "a"}),
            "-ERR unknown subcommand 'RENAME'. Try CHORUS.KEYSPACE HELP.\r\n");
  EXPECT_EQ(keyspace_reply(KeyspaceAnswer{std::vector<KeyspaceSpec>{{"a", "a:", "raft", {}}}}),
            "*1\r\n*3\r\n$1\r\na\r\n$2\r\na:\r\n$4\r\nraft\r\n");
}

TEST_F(CommandsTest, ChorusConsistency) {
  EXPECT_EQ(immediate({"CHORUS.CONSISTENCY"}), "$12\r\nlinearizable\r\n");
  EXPECT_EQ(immediate({"CHORUS.CONSISTENCY", "FOLLOWER"}), "+OK\r\n");
  EXPECT_EQ(session_.consistency, Consistency::kFollower);
  EXPECT_EQ(immediate({"CHORUS.CONSISTENCY"}), "$8\r\nfollower\r\n");
  EXPECT_EQ(immediate({"CHORUS.CONSISTENCY", "lease"}),
            "-ERR lease reads are disabled (raft.lease_reads = false)\r\n");
  EXPECT_EQ(session_.consistency, Consistency::kFollower);
  view_.lease_reads_enabled = true;
  EXPECT_EQ(immediate({"CHORUS.CONSISTENCY", "lease"}), "+OK\r\n");
  EXPECT_EQ(session_.consistency, Consistency::kLease);
  EXPECT_EQ(immediate({"CHORUS.CONSISTENCY", "linearizable"}), "+OK\r\n");
  EXPECT_EQ(session_.consistency, Consistency::kLinearizable);
  EXPECT_EQ(immediate({"CHORUS.CONSISTENCY", "eventual"}),
            "-ERR unknown consistency mode 'eventual' (expected linearizable, lease or "
            "follower)\r\n");
}

// ---- WAIT, CHORUS.TOKEN, CHORUS.POLL ------------------------------------------------

TEST_F(CommandsTest, WaitArgumentErrorsAreRedis) {
  EXPECT_EQ(immediate({"WAIT"}), "-ERR wrong number of arguments for 'wait' command\r\n");
  EXPECT_EQ(immediate({"WAIT", "1"}), "-ERR wrong number of arguments for 'wait' command\r\n");
  EXPECT_EQ(immediate({"WAIT", "1", "2", "3"}),
            "-ERR wrong number of arguments for 'wait' command\r\n");
  EXPECT_EQ(immediate({"WAIT", "x", "0"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(immediate({"WAIT", "1.5", "0"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(immediate({"WAIT", "1", "-1"}), "-ERR timeout is negative\r\n");
  EXPECT_EQ(immediate({"WAIT", "1", "x"}), "-ERR timeout is not an integer or out of range\r\n");
}

TEST_F(CommandsTest, WaitCarriesTheSessionsLastWritePerKeyspace) {
  Plan p = plan({"wait", "2", "100"});
  ASSERT_TRUE(std::holds_alternative<WaitOp>(p));
  EXPECT_EQ(std::get<WaitOp>(p).numreplicas, 2u);
  EXPECT_EQ(std::get<WaitOp>(p).timeout_ms, 100u);
  EXPECT_TRUE(std::get<WaitOp>(p).writes.empty());

  session_.last_write_by_keyspace["default"] = WriteToken{"default", 2, 10};
  session_.last_write_by_keyspace["orders"] = WriteToken{"orders", 3, 1042};
  p = plan({"WAIT", "-1", "0"});
  ASSERT_TRUE(std::holds_alternative<WaitOp>(p));
  EXPECT_EQ(std::get<WaitOp>(p).numreplicas, 0u);  // reached at once, as in Redis
  EXPECT_EQ(std::get<WaitOp>(p).timeout_ms, 0u);
  EXPECT_EQ(std::get<WaitOp>(p).writes,
            (std::vector<WriteToken>{{"default", 2, 10}, {"orders", 3, 1042}}));
}

TEST_F(CommandsTest, ChorusTokenIsNilUntilTheConnectionWrote) {
  EXPECT_EQ(immediate({"CHORUS.TOKEN"}), "$-1\r\n");
  session_.last_write = WriteToken{"orders", 3, 1042};
  EXPECT_EQ(immediate({"chorus.token"}), "$13\r\norders:3:1042\r\n");
  EXPECT_EQ(immediate({"CHORUS.TOKEN", "x"}),
            "-ERR wrong number of arguments for 'chorus.token' command\r\n");
  // After an -UNCERTAIN write: no token rather than the previous write's.
  session_.last_write = WriteToken{"orders", 0, 0, true};
  EXPECT_EQ(immediate({"CHORUS.TOKEN"}),
            "-UNCERTAIN the connection's last write has an unknown outcome (it may still be "
            "applied), so it has no token\r\n");
}

TEST(WriteTokenTest, RoundTripsAndTakesTheNumbersFromTheRight) {
  const WriteToken t{"a:b:", 7, 99};
  EXPECT_EQ(t.to_string(), "a:b::7:99");
  EXPECT_EQ(WriteToken::parse(t.to_string()), t);
  EXPECT_EQ(WriteToken::parse("orders:3:1042"), (WriteToken{"orders", 3, 1042}));
  EXPECT_EQ(WriteToken::parse("default:0:1"), (WriteToken{"default", 0, 1}));
}

TEST(WriteTokenTest, MalformedTokensAreRefused) {
  for (std::string_view bad :
       {"", "orders", "orders:3", ":3:4", "orders:3:0", "orders:-3:4", "orders:3:+4", "orders:03:4",
        "orders:3:4x", "orders::4", "orders:3:", "orders:3:99999999999999999999"}) {
    EXPECT_FALSE(WriteToken::parse(bad).has_value()) << bad;
  }
}

TEST_F(CommandsTest, ChorusPollParsesTheTokenAndNamesAMalformedOne) {
  Plan p = plan({"CHORUS.POLL", "orders:3:1042"});
  ASSERT_TRUE(std::holds_alternative<PollOp>(p));
  EXPECT_EQ(std::get<PollOp>(p).token, (WriteToken{"orders", 3, 1042}));
  EXPECT_EQ(immediate({"CHORUS.POLL", "orders:3"}),
            "-ERR invalid write token 'orders:3' (expected keyspace:term:index as CHORUS.TOKEN "
            "prints it)\r\n");
  EXPECT_EQ(immediate({"CHORUS.POLL"}),
            "-ERR wrong number of arguments for 'chorus.poll' command\r\n");
}

// ---- Glob: Redis's stringmatchlen semantics ------------------------------------------

struct GlobCase {
  std::string_view pattern;
  std::string_view str;
  bool match;
  bool nocase = false;
};

TEST(GlobTest, MatchesLikeRedis) {
  const GlobCase cases[] = {
      {"*", "anything", true},
      {"*", "", false},  // the matcher itself; SCAN special-cases "*"
      {"", "", true},
      {"", "a", false},
      {"a*", "a", true},
      {"a*", "abc", true},
      {"a*", "ba", false},
      {"*a", "bca", true},
      {"**a**", "xa", true},
      {"h?llo", "hello", true},
      {"h?llo", "hallo", true},
      {"h?llo", "hllo", false},
      {"h*llo", "hllo", true},
      {"h*llo", "heeeello", true},
      {"h[ae]llo", "hello", true},
      {"h[ae]llo", "hallo", true},
      {"h[ae]llo", "hillo", false},
      {"h[^e]llo", "hallo", true},
      {"h[^e]llo", "hello", false},
      {"h[a-b]llo", "hbllo", true},
      {"h[a-b]llo", "hcllo", false},
      {"h[b-a]llo", "hallo", true},  // reversed range
      {"[\\]]", "]", true},
      {"[\\-]", "-", true},
      {"[a\\-z]", "b", false},
      {"h\\*llo", "h*llo", true},
      {"h\\*llo", "hello", false},
      {"\\?", "?", true},
      {"\\?", "a", false},
      {"a\\", "a\\", true},  // a lone trailing backslash is literal
      {"[abc", "a", true},   // unterminated class runs to the end
      {"[abc", "d", false},
      {"[", "a", false},
      {"[^", "a", true},
      {"[a-]", "-", false},  // the range ']'..'a'
      {"[a-]", "^", true},
      {"[]", "a", false},
      {"?", "", false},
      {"*?", "", false},
      {"a*b*c", "aXXbYYc", true},
      {"a*b*c", "aXXbYY", false},
      {"key:1*", "key:1", true},
      {"key:1*", "key:21", false},
      {"HELLO", "hello", false},
      {"HELLO", "hello", true, true},
      {"H[A-Z]LLO", "hello", true, true},
      {"[Z-a]", "b", false, true},  // bounds ordered before folding: empty range
      {"max*", "MAXMEMORY", true, true},
  };
  for (const GlobCase& c : cases) {
    EXPECT_EQ(glob_match(c.pattern, c.str, c.nocase), c.match)
        << "pattern '" << c.pattern << "' string '" << c.str << "' nocase " << c.nocase;
  }
}

TEST(GlobTest, BytesAreUnsignedAndBinarySafe) {
  EXPECT_TRUE(glob_match("[\x01-\xff]", "\x80"));
  EXPECT_TRUE(glob_match(std::string_view("a\0b", 3), std::string_view("a\0b", 3)));
  EXPECT_FALSE(glob_match(std::string_view("a\0b", 3), "a"));
  EXPECT_TRUE(glob_match("?", std::string_view("\0", 1)));
}

TEST(GlobTest, AbusivePatternsStayCheap) {
  // Exponential without Redis's "skip longer matches" rule.
  const std::string s(200, 'a');
  EXPECT_FALSE(glob_match("a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", s));
  // Deeper than kGlobNestingMax stars: no match rather than a stack overflow.
  std::string deep;
  for (int i = 0; i < kGlobNestingMax + 10; ++i) deep += "*a";
  EXPECT_FALSE(glob_match(deep, std::string(kGlobNestingMax + 10, 'a')));
  EXPECT_TRUE(glob_match(deep.substr(0, 200), std::string(100, 'a')));
}

}  // namespace
}  // namespace chorus::server
