// libFuzzer target for the RESP2 request parser (src/net/resp).
//
// Each input is a byte stream as a client would send it. It is parsed twice
// over, once with the default limits and once with tiny limits derived from
// the input's hash (so the limit paths are reached by short inputs), and each
// time:
//   * whole, byte by byte, and in pieces whose sizes come from the hash:
//     the same commands and the same error every time (split independence);
//   * every call consumes at most its input, all of it on "need more", at
//     least one byte when it completes a command, and the parser never holds
//     more bytes than it was given;
//   * no argument or command exceeds the limits in force;
//   * every command parsed with the default limits survives
//     encode (append_command) → parse as exactly that command;
//   * simple strings and errors built from the arguments are one line.
// A failed check aborts, which libFuzzer reports as a crash with the input.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "base/prng.h"
#include "net/resp/resp_encoder.h"
#include "net/resp/resp_parser.h"

namespace {

using chorus::Prng;
using chorus::net::resp::Limits;
using chorus::net::resp::Parser;
using chorus::net::resp::ParseResult;
using Kind = ParseResult::Kind;

#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "resp_fuzz: check failed: %s (line %d)\n", #cond, __LINE__); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

struct Outcome {
  std::vector<std::vector<std::string>> commands;
  std::string error;
  bool operator==(const Outcome&) const = default;
};

// Feeds `input` in pieces of the given sizes (cycled), checking the
// consumed-count contract on every call.
Outcome feed(std::string_view input, const std::vector<size_t>& pieces, const Limits& limits) {
  Parser parser(limits);
  Outcome out;
  size_t offset = 0;
  for (size_t k = 0; offset < input.size(); ++k) {
    std::string_view piece = input.substr(offset, pieces[k % pieces.size()]);
    offset += piece.size();
    for (;;) {
      ParseResult r = parser.parse(piece);
      FUZZ_CHECK(r.consumed <= piece.size());
      if (r.kind == Kind::kError) {
        FUZZ_CHECK(parser.failed() && !r.error.empty());
        FUZZ_CHECK(r.error.find_first_of("\r\n") == std::string::npos);
        FUZZ_CHECK(parser.parse(piece).consumed == 0);  // stays failed
        out.error = r.error;
        return out;
      }
      if (r.kind == Kind::kNeedMore) {
        FUZZ_CHECK(r.consumed == piece.size());
        FUZZ_CHECK(parser.pending_bytes() <= offset);
        break;
      }
      FUZZ_CHECK(r.consumed >= 1 && !r.args.empty());
      out.commands.push_back(std::move(r.args));
      piece.remove_prefix(r.consumed);
    }
  }
  return out;
}

void check_within_limits(const Outcome& o, const Limits& limits) {
  const uint64_t arg_max = std::max<uint64_t>(limits.bulk_bytes_max, limits.inline_bytes_max);
  const uint64_t cmd_max = std::max<uint64_t>(limits.command_bytes_max, limits.inline_bytes_max);
  for (const auto& args : o.commands) {
    uint64_t total = 0;
    for (const std::string& a : args) {
      FUZZ_CHECK(a.size() <= arg_max);
      total += a.size();
    }
    FUZZ_CHECK(total <= cmd_max);
  }
}

Outcome parse_all_ways(std::string_view input, const Limits& limits, Prng& prng) {
  const Outcome whole = feed(input, {input.size() + 1}, limits);
  FUZZ_CHECK(feed(input, {1}, limits) == whole);
  std::vector<size_t> pieces;
  for (int i = 0; i < 8; ++i) pieces.push_back(prng.uniform(1, 1 + input.size() / 2));
  FUZZ_CHECK(feed(input, pieces, limits) == whole);
  check_within_limits(whole, limits);
  return whole;
}

void check_round_trip(const std::vector<std::string>& args) {
  std::string wire;
  chorus::net::resp::append_command(&wire, args);
  Parser parser;
  ParseResult r = parser.parse(wire);
  FUZZ_CHECK(r.kind == Kind::kCommand);
  FUZZ_CHECK(r.consumed == wire.size());
  FUZZ_CHECK(r.args == args);
  for (const std::string& a : args) {
    std::string line;
    chorus::net::resp::append_error(&line, a);
    FUZZ_CHECK(line.find_first_of("\r\n") == line.size() - 2);
  }
}

uint64_t fnv1a(std::string_view s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  Prng prng(fnv1a(input));

  const Outcome outcome = parse_all_ways(input, Limits{}, prng);
  for (const auto& args : outcome.commands) check_round_trip(args);

  Limits tiny;
  tiny.args_max = prng.uniform(1, 8);
  tiny.bulk_bytes_max = prng.uniform(0, 64);
  tiny.command_bytes_max = prng.uniform(0, 128);
  tiny.inline_bytes_max = prng.uniform(0, 64);
  parse_all_ways(input, tiny, prng);
  return 0;
}
