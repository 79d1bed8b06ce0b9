// Tests for the RESP2 codec. Every parser input goes through parse_checked(),
// which parses it whole, byte by byte and in seeded random pieces and
// requires the same commands and error from each, so split independence is
// checked on every case below, not just in one test.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "base/prng.h"
#include "net/resp/resp_encoder.h"
#include "net/resp/resp_parser.h"

// ---- Allocation probe -------------------------------------------------------
// The global operator new is replaced for this binary so the limit tests can
// check the largest single allocation made while parsing a declared length.
namespace {
std::atomic<size_t> g_largest_allocation{0};
void* counted_alloc(size_t n) {
  size_t seen = g_largest_allocation.load(std::memory_order_relaxed);
  while (n > seen && !g_largest_allocation.compare_exchange_weak(seen, n)) {
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(size_t n) {
  return counted_alloc(n);
}
void* operator new[](size_t n) {
  return counted_alloc(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t) noexcept {
  std::free(p);
}

namespace chorus::net::resp {
namespace {

using Args = std::vector<std::string>;
using Kind = ParseResult::Kind;

constexpr size_t kInline = Limits{}.inline_bytes_max;  // 64 KiB

// Everything a byte stream parses to.
struct Outcome {
  std::vector<Args> commands;
  std::string error;  // empty: no error, the rest (if any) awaits more bytes
  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  os << o.commands.size() << " commands [";
  for (const Args& c : o.commands) {
    os << "[";
    for (const std::string& a : c) os << "\"" << a << "\" ";
    os << "]";
  }
  return os << "] error=\"" << o.error << "\"";
}

// Feeds `input` to a fresh parser in pieces of the given sizes (cycled),
// checking the consumed-count contract on every call.
Outcome feed(std::string_view input, const std::vector<size_t>& pieces, const Limits& limits) {
  Parser parser(limits);
  Outcome out;
  size_t offset = 0;
  for (size_t k = 0; offset < input.size(); ++k) {
    std::string_view piece = input.substr(offset, pieces[k % pieces.size()]);
    offset += piece.size();
    for (;;) {
      ParseResult r = parser.parse(piece);
      EXPECT_LE(r.consumed, piece.size());
      if (r.kind == Kind::kError) {
        EXPECT_TRUE(parser.failed());
        out.error = r.error;
        return out;
      }
      if (r.kind == Kind::kNeedMore) {
        EXPECT_EQ(r.consumed, piece.size());
        break;
      }
      EXPECT_GE(r.consumed, 1u);  // a request ends on a byte of this piece
      EXPECT_FALSE(r.args.empty());
      out.commands.push_back(std::move(r.args));
      piece.remove_prefix(r.consumed);
    }
  }
  return out;
}

// Parses whole, byte by byte, and in three seeded random splittings; all must
// agree. Returns the outcome.
Outcome parse_checked(std::string_view input, const Limits& limits = {}) {
  const Outcome whole = feed(input, {input.size() + 1}, limits);
  EXPECT_EQ(feed(input, {1}, limits), whole) << "byte at a time";
  Prng prng(input.size());
  for (int round = 0; round < 3; ++round) {
    std::vector<size_t> pieces;
    for (int i = 0; i < 16; ++i) pieces.push_back(prng.uniform(1, 1 + input.size() / 3));
    EXPECT_EQ(feed(input, pieces, limits), whole) << "random pieces, round " << round;
  }
  return whole;
}

Outcome commands(std::vector<Args> c) {
  return Outcome{std::move(c), ""};
}
Outcome error(std::string e) {
  return Outcome{{}, std::move(e)};
}

std::string encode(const Args& args) {
  std::string out;
  append_command(&out, args);
  return out;
}

// ---- Multibulk requests ------------------------------------------------------

TEST(Multibulk, ParsesOneCommand) {
  EXPECT_EQ(parse_checked("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$5\r\nhello\r\n"),
            commands({{"SET", "a", "hello"}}));
}

TEST(Multibulk, ArgumentsMayBeEmptyOrHoldAnyByte) {
  const std::string binary("a\r\n\0$*\xff", 7);
  EXPECT_EQ(parse_checked("*3\r\n$3\r\nSET\r\n$0\r\n\r\n$7\r\n" + binary + "\r\n"),
            commands({{"SET", "", binary}}));
}

TEST(Multibulk, ZeroAndNegativeCountsAreSkipped) {
  EXPECT_EQ(parse_checked("*0\r\n*-1\r\n*-99\r\n*1\r\n$4\r\nPING\r\n"), commands({{"PING"}}));
}

TEST(Multibulk, ConsumedEndsAtTheCommandsLastByte) {
  const std::string a = encode({"GET", "k"});
  const std::string b = encode({"PING"});
  const std::string input = a + b + "*2\r\n$3";
  Parser parser;
  ParseResult r = parser.parse(input);
  ASSERT_EQ(r.kind, Kind::kCommand);
  EXPECT_EQ(r.consumed, a.size());
  r = parser.parse(std::string_view(input).substr(a.size()));
  ASSERT_EQ(r.kind, Kind::kCommand);
  EXPECT_EQ(r.consumed, b.size());
  r = parser.parse(std::string_view(input).substr(a.size() + b.size()));
  EXPECT_EQ(r.kind, Kind::kNeedMore);
  EXPECT_EQ(r.consumed, 6u);  // the partial request is held by the parser
  EXPECT_EQ(parser.parse("\r\nGET\r\n$1\r\nk").kind, Kind::kNeedMore);
  r = parser.parse("\r\n");
  ASSERT_EQ(r.kind, Kind::kCommand);
  EXPECT_EQ(r.args, (Args{"GET", "k"}));
}

TEST(Multibulk, EmptyInputNeedsMore) {
  Parser parser;
  const ParseResult r = parser.parse("");
  EXPECT_EQ(r.kind, Kind::kNeedMore);
  EXPECT_EQ(r.consumed, 0u);
}

// ---- Pipelining ---------------------------------------------------------------

TEST(Pipelining, ManyCommandsInOneBufferComeOutInOrder) {
  std::string input;
  std::vector<Args> expected;
  for (int i = 0; i < 200; ++i) {
    Args args{"SET", "key" + std::to_string(i), std::string(static_cast<size_t>(i), 'v')};
    if (i % 3 == 0) {
      input += "SET key" + std::to_string(i) + " \"" + args[2] + "\"\r\n";
    } else {
      input += encode(args);
    }
    expected.push_back(args);
  }
  EXPECT_EQ(parse_checked(input), commands(expected));
}

TEST(Pipelining, InlineAndMultibulkMix) {
  EXPECT_EQ(parse_checked("PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nGET a\n"),
            commands({{"PING"}, {"ECHO", "hi"}, {"GET", "a"}}));
}

// ---- Inline requests ------------------------------------------------------------

TEST(Inline, SplitsOnWhitespace) {
  EXPECT_EQ(parse_checked("PING\r\n"), commands({{"PING"}}));
  EXPECT_EQ(parse_checked("  SET \t a\vb   c  \r\n"), commands({{"SET", "a\vb", "c"}}));
  EXPECT_EQ(parse_checked("SET a b\n"), commands({{"SET", "a", "b"}}));  // LF alone ends a line
  EXPECT_EQ(parse_checked("GET a\rb\r\n"), commands({{"GET", "a", "b"}}));
}

TEST(Inline, EmptyLinesAreSkipped) {
  EXPECT_EQ(parse_checked("\r\n\n   \r\n\t\nPING\r\n"), commands({{"PING"}}));
  EXPECT_EQ(parse_checked("\r\n\r\n"), commands({}));
}

TEST(Inline, DoubleQuotesTakeEscapes) {
  EXPECT_EQ(parse_checked(R"(SET k "a\nb\r\t\b\a\x41\x4a\x4b\"\\\q" x)"
                          "\r\n"),
            commands({{"SET", "k", "a\nb\r\t\b\aAJK\"\\q", "x"}}));
  EXPECT_EQ(parse_checked("SET k \"sp ace\"\r\n"), commands({{"SET", "k", "sp ace"}}));
  EXPECT_EQ(parse_checked("SET k \"\"\r\n"), commands({{"SET", "k", ""}}));
  EXPECT_EQ(parse_checked(R"(SET k "\x00\xff")"
                          "\r\n"),
            commands({{"SET", "k", std::string("\0\xff", 2)}}));
}

TEST(Inline, BadHexEscapeIsLiteral) {
  EXPECT_EQ(parse_checked(R"(ECHO "\xZZ\x4")"
                          "\r\n"),
            commands({{"ECHO", "xZZx4"}}));
}

TEST(Inline, SingleQuotesTakeOnlyAnEscapedQuote) {
  EXPECT_EQ(parse_checked(R"(ECHO 'it\'s \n "x"')"
                          "\r\n"),
            commands({{"ECHO", R"(it's \n "x")"}}));
}

TEST(Inline, QuoteMayStartInsideAWord) {
  EXPECT_EQ(parse_checked("ECHO a\"b c\" d'e f'\r\n"), commands({{"ECHO", "ab c", "de f"}}));
}

TEST(Inline, NulByteEndsTheLine) {
  EXPECT_EQ(parse_checked(std::string("PING\0 junk \"\r\nGET a\r\n", 21)),
            commands({{"PING"}, {"GET", "a"}}));
}

TEST(Inline, LineAtTheLimitIsAccepted) {
  const std::string arg(kInline - 5, 'x');
  EXPECT_EQ(parse_checked("ECHO " + arg + "\n"), commands({{"ECHO", arg}}));
  // CR counts towards the limit (it is a byte before the LF).
  EXPECT_EQ(parse_checked("ECHO " + arg.substr(1) + "\r\n"), commands({{"ECHO", arg.substr(1)}}));
}

// ---- Protocol errors -----------------------------------------------------------

TEST(ProtocolError, InvalidMultibulkLength) {
  for (const char* bad :
       {"*abc\r\n", "*\r\n", "*01\r\n", "*+1\r\n", "*1 \r\n", "* 1\r\n", "*-0\r\n", "*1\n",
        "*1\rx\n", "*99999999999999999999\r\n", "*9223372036854775808\r\n"}) {
    EXPECT_EQ(parse_checked(bad), error("Protocol error: invalid multibulk length")) << bad;
  }
}

TEST(ProtocolError, TooBigMbulkCountString) {
  EXPECT_EQ(parse_checked("*" + std::string(kNumberLineBytesMax + 1, '1')),
            error("Protocol error: too big mbulk count string"));
  // At the limit it is a (bad) number, not a too-long line.
  EXPECT_EQ(parse_checked("*" + std::string(kNumberLineBytesMax, '1') + "\n"),
            error("Protocol error: invalid multibulk length"));
}

TEST(ProtocolError, ExpectedDollar) {
  EXPECT_EQ(parse_checked("*1\r\nPING\r\n"), error("Protocol error: expected '$', got 'P'"));
  EXPECT_EQ(parse_checked("*2\r\n$1\r\na\r\n:1\r\n"),
            error("Protocol error: expected '$', got ':'"));
  EXPECT_EQ(parse_checked("*1\r\n\r\n"), error(R"(Protocol error: expected '$', got '\x0d')"));
  EXPECT_EQ(parse_checked(std::string("*1\r\n\xfe", 5)),
            error(R"(Protocol error: expected '$', got '\xfe')"));
}

TEST(ProtocolError, InvalidBulkLength) {
  for (const char* bad : {"*1\r\n$abc\r\n", "*1\r\n$-1\r\n", "*1\r\n$-5\r\n", "*1\r\n$\r\n",
                          "*1\r\n$03\r\n", "*1\r\n$3\n", "*1\r\n$99999999999999999999\r\n"}) {
    EXPECT_EQ(parse_checked(bad), error("Protocol error: invalid bulk length")) << bad;
  }
}

TEST(ProtocolError, TooBigBulkCountString) {
  EXPECT_EQ(parse_checked("*1\r\n$" + std::string(100, '9')),
            error("Protocol error: too big bulk count string"));
}

TEST(ProtocolError, BulkDataNotFollowedByCrlf) {
  for (const char* bad : {"*1\r\n$4\r\nPINGXX", "*1\r\n$4\r\nPING\rX", "*1\r\n$4\r\nPING\n\r",
                          "*1\r\n$3\r\nPING\r\n"}) {
    EXPECT_EQ(parse_checked(bad), error("Protocol error: expected CRLF after bulk data")) << bad;
  }
}

TEST(ProtocolError, TooBigInlineRequest) {
  const std::string arg(kInline - 5, 'x');
  EXPECT_EQ(parse_checked("ECHO " + arg + "y\n"), error("Protocol error: too big inline request"));
  EXPECT_EQ(parse_checked("ECHO " + arg + "\r\n"), error("Protocol error: too big inline request"));
  // Detected without waiting for the LF that never comes.
  EXPECT_EQ(parse_checked(std::string(kInline + 1, 'x')),
            error("Protocol error: too big inline request"));
  EXPECT_EQ(parse_checked(std::string(kInline, 'x')), commands({}));
}

TEST(ProtocolError, UnbalancedQuotes) {
  for (const char* bad : {"SET k \"abc\r\n", "SET k 'abc\r\n", "SET k \"a\"b\r\n", "SET k 'a'b\r\n",
                          "SET k \"abc\\\r\n", "ECHO \"\\\"\r\n"}) {
    EXPECT_EQ(parse_checked(bad), error("Protocol error: unbalanced quotes in request")) << bad;
  }
}

TEST(ProtocolError, CommandsBeforeTheErrorAreReturnedInOrder) {
  EXPECT_EQ(parse_checked("PING\r\n*1\r\n$4\r\nPING\r\n*x\r\nPING\r\n"),
            (Outcome{{{"PING"}, {"PING"}}, "Protocol error: invalid multibulk length"}));
}

TEST(ProtocolError, ParserStaysFailedAndConsumesNothing) {
  Parser parser;
  ParseResult r = parser.parse("*1\r\n$x\r\n");
  ASSERT_EQ(r.kind, Kind::kError);
  EXPECT_TRUE(parser.failed());
  EXPECT_EQ(parser.pending_bytes(), 0u);
  r = parser.parse("PING\r\n");
  EXPECT_EQ(r.kind, Kind::kError);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_EQ(r.error, "Protocol error: invalid bulk length");
}

// ---- Limits --------------------------------------------------------------------

TEST(Limits, ArgsMax) {
  Limits limits;
  limits.args_max = 3;
  EXPECT_EQ(parse_checked(encode({"a", "b", "c"}), limits), commands({{"a", "b", "c"}}));
  EXPECT_EQ(parse_checked(encode({"a", "b", "c", "d"}), limits),
            error("Protocol error: invalid multibulk length"));
  // Defaults: 1024 * 1024 arguments.
  EXPECT_EQ(parse_checked("*1048576\r\n"), commands({}));
  EXPECT_EQ(parse_checked("*1048577\r\n"), error("Protocol error: invalid multibulk length"));
}

TEST(Limits, BulkBytesMax) {
  Limits limits;
  limits.bulk_bytes_max = 5;
  EXPECT_EQ(parse_checked(encode({"ECHO", "12345"}), limits), commands({{"ECHO", "12345"}}));
  EXPECT_EQ(parse_checked(encode({"ECHO", "123456"}), limits),
            error("Protocol error: invalid bulk length"));
  // Defaults: 512 MiB, Redis's proto-max-bulk-len.
  EXPECT_EQ(parse_checked("*1\r\n$536870912\r\n"), commands({}));
  EXPECT_EQ(parse_checked("*1\r\n$536870913\r\n"), error("Protocol error: invalid bulk length"));
}

TEST(Limits, CommandBytesMax) {
  Limits limits;
  limits.command_bytes_max = 10;
  EXPECT_EQ(parse_checked(encode({"12345", "67890"}), limits), commands({{"12345", "67890"}}));
  EXPECT_EQ(parse_checked(encode({"12345", "678901"}), limits),
            error("Protocol error: too big multibulk request"));
  // The limit is per request, not per connection.
  EXPECT_EQ(parse_checked(encode({"12345", "67890"}) + encode({"12345", "67890"}), limits),
            commands({{"12345", "67890"}, {"12345", "67890"}}));
}

TEST(Limits, InlineBytesMax) {
  Limits limits;
  limits.inline_bytes_max = 8;
  EXPECT_EQ(parse_checked("GET abcd\nGET abc\r\n", limits),
            commands({{"GET", "abcd"}, {"GET", "abc"}}));
  EXPECT_EQ(parse_checked("GET abcde\n", limits), error("Protocol error: too big inline request"));
}

TEST(Limits, SetLimitsAppliesToTheNextLength) {
  Parser parser;
  ASSERT_EQ(parser.parse("*2\r\n$4\r\nECHO\r\n").kind, Kind::kNeedMore);
  Limits limits;
  limits.bulk_bytes_max = 2;
  parser.set_limits(limits);
  EXPECT_EQ(parser.limits().bulk_bytes_max, 2u);
  const ParseResult r = parser.parse("$3\r\nabc\r\n");
  EXPECT_EQ(r.kind, Kind::kError);
  EXPECT_EQ(r.error, "Protocol error: invalid bulk length");
}

// Runs `input` through a fresh default parser and returns the largest single
// allocation made meanwhile.
size_t largest_allocation_while_parsing(std::string_view input, Kind expected) {
  Parser parser;
  g_largest_allocation = 0;
  const Kind kind = parser.parse(input).kind;
  const size_t largest = g_largest_allocation;
  EXPECT_EQ(kind, expected) << input;
  return largest;
}

TEST(Limits, HugeDeclaredLengthsAreRejectedWithoutAllocating) {
  EXPECT_LT(largest_allocation_while_parsing("*1\r\n$9223372036854775807\r\n", Kind::kError), 256u);
  EXPECT_LT(largest_allocation_while_parsing("*1\r\n$536870913\r\n", Kind::kError), 256u);
  EXPECT_LT(largest_allocation_while_parsing("*9223372036854775807\r\n", Kind::kError), 256u);
}

TEST(Limits, DeclaredLengthsWithinLimitsReserveOnlyASlack) {
  // A client that declares the largest allowed bulk and sends 3 bytes costs
  // at most kReserveBytesMax, not 512 MiB.
  EXPECT_LE(largest_allocation_while_parsing("*1\r\n$536870912\r\nabc", Kind::kNeedMore),
            kReserveBytesMax + 64);
  // The largest allowed count reserves at most kReserveArgsMax slots.
  EXPECT_LE(largest_allocation_while_parsing("*1048576\r\n$1\r\na\r\n", Kind::kNeedMore),
            kReserveArgsMax * sizeof(std::string));
}

TEST(Limits, LargeBulkInOneBytePiecesIsLinear) {
  // 4 MiB one byte at a time: quadratic re-scanning would not finish.
  const std::string value(4u << 20, 'v');
  const std::string input = encode({"SET", "k", value});
  Parser parser;
  size_t commands_seen = 0;
  for (size_t i = 0; i < input.size(); ++i) {
    const ParseResult r = parser.parse(std::string_view(input).substr(i, 1));
    ASSERT_NE(r.kind, Kind::kError);
    if (r.kind == Kind::kCommand) {
      ++commands_seen;
      EXPECT_EQ(r.args[2], value);
    }
  }
  EXPECT_EQ(commands_seen, 1u);
  EXPECT_EQ(parser.pending_bytes(), 0u);
}

TEST(Limits, PendingBytesCountsWhatWasReceived) {
  Parser parser;
  ASSERT_EQ(parser.parse("*2\r\n$3\r\nGET\r\n$10\r\nabcd").kind, Kind::kNeedMore);
  EXPECT_EQ(parser.pending_bytes(), 7u);  // "GET" + "abcd"
  ASSERT_EQ(parser.parse("efghij\r\nPI").kind, Kind::kCommand);
  EXPECT_EQ(parser.pending_bytes(), 0u);
}

// ---- parse_integer (Redis string2ll) ------------------------------------------

TEST(ParseInteger, AcceptsOnlyCanonicalDecimal) {
  struct Case {
    const char* text;
    std::optional<int64_t> value;
  };
  const Case cases[] = {
      {"0", 0},
      {"7", 7},
      {"-7", -7},
      {"1024", 1024},
      {"9223372036854775807", std::numeric_limits<int64_t>::max()},
      {"-9223372036854775808", std::numeric_limits<int64_t>::min()},
      {"9223372036854775808", std::nullopt},
      {"-9223372036854775809", std::nullopt},
      {"18446744073709551616", std::nullopt},
      {"", std::nullopt},
      {"-", std::nullopt},
      {"-0", std::nullopt},
      {"007", std::nullopt},
      {"+7", std::nullopt},
      {" 7", std::nullopt},
      {"7 ", std::nullopt},
      {"7a", std::nullopt},
      {"1.5", std::nullopt},
      {"000000000000000000001", std::nullopt},
  };
  for (const Case& c : cases) EXPECT_EQ(parse_integer(c.text), c.value) << c.text;
}

// ---- Encoder -------------------------------------------------------------------

TEST(Encoder, SimpleStringReplacesLineBreaks) {
  std::string out;
  append_simple_string(&out, "OK");
  append_simple_string(&out, "a\r\nb\nc");
  append_simple_string(&out, "");
  EXPECT_EQ(out, "+OK\r\n+a  b c\r\n+\r\n");
}

TEST(Encoder, ErrorReplacesLineBreaks) {
  std::string out;
  append_error(&out, "ERR unknown command 'FOO'");
  append_error(&out, "ERR Protocol error: x\r\n+OK");
  EXPECT_EQ(out, "-ERR unknown command 'FOO'\r\n-ERR Protocol error: x  +OK\r\n");
}

TEST(Encoder, Integer) {
  std::string out;
  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{42}, std::numeric_limits<int64_t>::min(),
                    std::numeric_limits<int64_t>::max()}) {
    append_integer(&out, v);
  }
  EXPECT_EQ(out, ":0\r\n:-1\r\n:42\r\n:-9223372036854775808\r\n:9223372036854775807\r\n");
}

TEST(Encoder, BulkStringCarriesAnyBytes) {
  std::string out;
  append_bulk_string(&out, "foo");
  append_bulk_string(&out, "");
  append_bulk_string(&out, std::string("\r\n\0", 3));
  EXPECT_EQ(out, std::string("$3\r\nfoo\r\n$0\r\n\r\n$3\r\n\r\n\0\r\n", 24));
}

TEST(Encoder, NullsAndArrayHeader) {
  std::string out;
  append_null_bulk(&out);
  append_null_array(&out);
  append_array_header(&out, 0);
  append_array_header(&out, 3);
  EXPECT_EQ(out, "$-1\r\n*-1\r\n*0\r\n*3\r\n");
}

TEST(Encoder, CommandIsAnArrayOfBulkStrings) {
  EXPECT_EQ(encode({"SET", "k", ""}), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
}

// ---- Round trip ------------------------------------------------------------------

Args random_command(Prng& prng) {
  Args args(prng.uniform(1, 8));
  for (std::string& a : args) {
    // Mostly short, sometimes empty, sometimes longer than kReserveBytesMax.
    const uint64_t len = prng.chance(0.02) ? prng.uniform(kReserveBytesMax, 3 * kReserveBytesMax)
                                           : prng.uniform(0, 40);
    a.resize(len);
    for (char& c : a) c = static_cast<char>(prng.uniform(0, 255));
  }
  return args;
}

TEST(RoundTrip, RandomCommandsSurviveEncodeThenParse) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Prng prng(seed);
    std::vector<Args> sent;
    std::string wire;
    for (int i = 0; i < 50; ++i) {
      sent.push_back(random_command(prng));
      append_command(&wire, sent.back());
    }
    std::vector<size_t> pieces;
    for (int i = 0; i < 32; ++i) pieces.push_back(prng.uniform(1, 3000));
    EXPECT_EQ(feed(wire, pieces, {}), commands(sent)) << "seed " << seed;
    EXPECT_EQ(feed(wire, {wire.size()}, {}), commands(sent)) << "seed " << seed;
  }
}

TEST(RoundTrip, EveryByteValueSurvives) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(parse_checked(encode({"SET", all, all})), commands({{"SET", all, all}}));
}

}  // namespace
}  // namespace chorus::net::resp
