// resp::Parser: a pure, incremental parser for RESP2 client requests (the bytes
// a Redis client sends to a server). No I/O, threads, sockets or clocks: the
// connection handler reads bytes, hands them to parse(), and acts on what
// comes back.
//
// Grammar (one request; a connection's stream is a sequence of requests, so
// pipelined requests are simply consecutive):
//
//   request   = multibulk | inline
//   multibulk = "*" count CRLF *( "$" length CRLF <length bytes> CRLF )
//               ; exactly `count` bulk strings follow. count <= 0 is an empty
//               ; request: consumed and skipped, as Redis does.
//   count, length = integer with Redis's string2ll rules: optional "-",
//               no "+", no leading zeros, no spaces ("0" is fine, "-0" and
//               "01" are not), fits in int64. See parse_integer().
//   inline    = *( any byte except LF ) LF
//               ; any request whose first byte is not "*". One trailing CR
//               ; is dropped, then the line is split into arguments with
//               ; Redis's sdssplitargs() rules:
//               ;  - arguments are separated by whitespace (space, \t, \r, \n,
//               ;    \v, \f); a line with no arguments is skipped;
//               ;  - "double quotes" take the escapes \n \r \t \b \a \xHH and
//               ;    \<any> = <any>; 'single quotes' take only \' ;
//               ;  - a closing quote must be followed by whitespace or the end
//               ;    of the line, and an unclosed quote is an error;
//               ;  - a quote may start in the middle of a bare word (a"b c"
//               ;    is the one argument `ab c`);
//               ;  - a NUL byte ends the line's text (Redis parses the line
//               ;    as a C string); bytes after it are ignored.
//
// Limits (Limits below), all checked on the declared numbers BEFORE anything
// is allocated for them. Nothing is sized by a declared number alone either:
// the memory held is proportional to the bytes actually received (each
// argument costs its bytes plus one std::string), plus at most
// kReserveBytesMax for the argument in progress and kReserveArgsMax argument
// slots. So "*1048576" or "$536870912" with nothing behind it costs ~64 KiB.
//
//   limit              default   exceeded →
//   args_max           1048576   "Protocol error: invalid multibulk length"
//   bulk_bytes_max     512 MiB   "Protocol error: invalid bulk length"
//                                (Redis's proto-max-bulk-len)
//   command_bytes_max  1 GiB     "Protocol error: too big multibulk request"
//                                (sum of one request's argument lengths;
//                                Redis's client-query-buffer-limit)
//   inline_bytes_max   64 KiB    "Protocol error: too big inline request"
//                                (bytes before the LF, CR included)
//
// Every error, with the condition that produces it (the text is Redis's where
// Redis has one for the same condition):
//
//   "Protocol error: invalid multibulk length"  bad count or count > args_max
//   "Protocol error: too big mbulk count string" count line > 32 bytes
//   "Protocol error: expected '$', got 'x'"     a bulk string does not start
//       with '$' (a byte that is not printable ASCII is written as \xHH)
//   "Protocol error: invalid bulk length"       bad length, < 0, or over
//                                               bulk_bytes_max
//   "Protocol error: too big bulk count string" length line > 32 bytes
//   "Protocol error: too big multibulk request" over command_bytes_max
//   "Protocol error: expected CRLF after bulk data"  the two bytes after a
//       bulk string's data are not CR LF (Redis skips them unchecked; a
//       client whose lengths are wrong would otherwise have the rest of its
//       data run as commands)
//   "Protocol error: too big inline request"    inline line > inline_bytes_max
//   "Protocol error: unbalanced quotes in request"  inline quoting error
//
// Also stricter than Redis, and for the same reason: a count or length line
// must end in CR LF (Redis looks for the CR and skips the next byte unread).
// Errors are reported as soon as the offending byte arrives; Redis sometimes
// waits for the end of the line first. Neither changes how a valid stream
// parses.
//
// Error contract: after an error the stream can no longer be parsed (where the
// next request starts is unknown). The parser stays failed: every later
// parse() returns the same error and consumes nothing. The caller replies
// "-ERR " + error (append_error(out, "ERR " + result.error)), flushes, and
// closes the connection. Requests returned before the error are valid and
// are served in order first.
//
// Split independence: the sequence of commands and errors depends only on the
// concatenated bytes, never on how they were split across parse() calls (a
// request ends at its last LF, so no lookahead is needed). The tests and the
// fuzzer check this byte by byte.
//
// Cost: every byte is looked at a constant number of times, so a request fed
// in any number of pieces costs O(its bytes); partial lines and partial bulk
// strings are kept inside the parser, never re-scanned.
//
// Thread-safety: none. One parser per connection, used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::net::resp {

// Upper bounds on what one request may declare (see the table above). The
// server sets them from its config and may lower them before authentication
// (Redis allows 10 arguments of 16 KiB to an unauthenticated client).
struct Limits {
  uint64_t args_max = 1024 * 1024;
  uint64_t bulk_bytes_max = 512ull << 20;
  uint64_t command_bytes_max = 1ull << 30;
  size_t inline_bytes_max = 64 * 1024;
};

// The most bytes reserved up front for one bulk string; a longer one grows as
// its bytes arrive (amortized doubling), so a declared length alone never
// costs more than this.
inline constexpr size_t kReserveBytesMax = 64 * 1024;
// The most argument slots reserved up front for one multibulk request.
inline constexpr size_t kReserveArgsMax = 1024;
// The longest count or length line (digits and CR, without the '*' or '$').
// Any valid int64 fits in 21 bytes.
inline constexpr size_t kNumberLineBytesMax = 32;

struct ParseResult {
  enum class Kind {
    kNeedMore,  // every byte was consumed; no request is complete yet
    kCommand,   // one request is complete: see args
    kError,     // the stream is malformed: see error; close the connection
  };
  Kind kind = Kind::kNeedMore;
  // Bytes of the input this call consumed. kNeedMore: all of them. kCommand:
  // up to and including the request's last byte; pass the rest to the next
  // call. kError: some prefix (of no use to the caller, who closes).
  // Invariant: consumed <= input.size().
  size_t consumed = 0;
  // kCommand: the arguments, args[0] is the command name. Never empty.
  std::vector<std::string> args;
  // kError: "Protocol error: ...", no CR or LF.
  std::string error;
};

class Parser {
 public:
  explicit Parser(Limits limits = {}) : limits_(limits) {}

  // Consumes bytes from the front of `input` until one request is complete
  // (kCommand), the input is used up (kNeedMore), or the stream is found to be
  // malformed (kError). Call it again with input.substr(consumed) to get the
  // next pipelined request; an empty input returns kNeedMore.
  ParseResult parse(std::string_view input);

  // New limits apply to every count or length read from now on, including
  // those of a request already in progress.
  void set_limits(const Limits& limits) { limits_ = limits; }
  const Limits& limits() const { return limits_; }

  bool failed() const { return state_ == State::kFailed; }
  // Bytes of the request in progress held by the parser (for memory metrics).
  size_t pending_bytes() const { return line_.size() + (command_bytes_ - bulk_remaining_); }

 private:
  enum class State {
    kRequestStart,  // before a request's first byte
    kInline,        // reading an inline line up to LF
    kCount,         // after '*': reading the count line
    kBulkStart,     // expecting the '$' of the next bulk string
    kBulkLength,    // after '$': reading the length line
    kBulkData,      // reading bulk_remaining_ more data bytes
    kBulkCr,        // expecting the CR after the data
    kBulkLf,        // expecting the LF after the data
    kFailed,        // an error was returned; see error_
  };
  // What one state step did.
  enum class Step { kContinue, kNeedMore, kCommand, kFailed };
  enum class Line { kComplete, kIncomplete, kTooLong };

  Step step(std::string_view input, size_t* pos);
  Step step_request_start(std::string_view input, size_t* pos);
  Step step_inline(std::string_view input, size_t* pos);
  Step step_count(std::string_view input, size_t* pos);
  Step step_bulk_start(std::string_view input, size_t* pos);
  Step step_bulk_length(std::string_view input, size_t* pos);
  Step step_bulk_data(std::string_view input, size_t* pos);
  Step step_bulk_crlf(std::string_view input, size_t* pos);

  // Reads up to and including the next LF. On kComplete, *line is the text
  // before the LF (in `input` or in line_), valid until line_ changes.
  // Keeps at most `max_bytes` bytes; more without an LF is kTooLong.
  Line take_line(std::string_view input, size_t* pos, size_t max_bytes, std::string_view* line);
  void clear_line();
  Step finish_bulk();
  Step fail(std::string message);

  Limits limits_;
  State state_ = State::kRequestStart;
  // The partial line (inline, count or length) read so far.
  // Invariant: line_.size() <= max(inline_bytes_max, kNumberLineBytesMax).
  std::string line_;
  // The arguments of the multibulk request in progress.
  // Invariant: args_.size() <= args_expected_.
  std::vector<std::string> args_;
  uint64_t args_expected_ = 0;
  // Data bytes still to read for args_.back(), in state kBulkData.
  // Invariant: bulk_remaining_ <= command_bytes_.
  uint64_t bulk_remaining_ = 0;
  // Sum of the declared bulk lengths of the request in progress.
  // Invariant: command_bytes_ <= limits_.command_bytes_max when it was added.
  uint64_t command_bytes_ = 0;
  std::string error_;
};

// Redis's string2ll(): the whole of `s` is a base-10 int64 with an optional
// '-', no '+', no leading zeros and no spaces. The server uses the same rules
// for integer arguments (INCRBY, EX...), so "value is not an integer" agrees
// with Redis. nullopt if `s` is not such a number.
std::optional<int64_t> parse_integer(std::string_view s);

}  // namespace chorus::net::resp
