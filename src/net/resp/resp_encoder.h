// RESP2 reply encoding: functions that append one RESP value to an output
// buffer. Pure (no I/O); the connection handler writes the buffer.
//
//   simple string   "+" text CRLF          append_simple_string
//   error           "-" text CRLF          append_error
//   integer         ":" decimal CRLF       append_integer
//   bulk string     "$" length CRLF bytes CRLF   append_bulk_string
//   null bulk       "$-1" CRLF             append_null_bulk
//   array           "*" count CRLF, then count values   append_array_header
//   null array      "*-1" CRLF             append_null_array
//
// Simple strings and errors are one line by definition, so any CR or LF in
// their text is replaced by a space (Redis does the same for errors); bulk
// strings carry any bytes. An array is written as its header followed by
// `count` calls for its elements: the caller is responsible for the count.
//
// Thread-safety: the functions touch only `*out`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace chorus::net::resp {

// "+OK\r\n". CR and LF in `text` become spaces.
void append_simple_string(std::string* out, std::string_view text);

// "-ERR unknown command 'FOO'\r\n". `message` starts with the error code, as
// clients expect: "ERR ...", "WRONGTYPE ...", "TRYAGAIN ...". CR and LF in it
// become spaces. For a protocol error: append_error(out, "ERR " + error).
void append_error(std::string* out, std::string_view message);

// ":42\r\n"
void append_integer(std::string* out, int64_t value);

// "$3\r\nfoo\r\n"; `bytes` may hold any byte values.
void append_bulk_string(std::string* out, std::string_view bytes);

// "$-1\r\n": the RESP2 nil reply (GET of a missing key).
void append_null_bulk(std::string* out);

// "*2\r\n": the caller appends exactly `count` values after it.
void append_array_header(std::string* out, size_t count);

// "*-1\r\n": the RESP2 null array (EXEC of an aborted transaction).
void append_null_array(std::string* out);

// A client request as Redis clients send it: an array of bulk strings. What
// Parser accepts; used by tests, the fuzzer and request forwarding.
// Precondition: !args.empty() (the parser skips empty requests).
void append_command(std::string* out, std::span<const std::string> args);

}  // namespace chorus::net::resp
