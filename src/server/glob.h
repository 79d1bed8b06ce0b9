// Redis glob matching: the semantics of Redis's stringmatchlen() (util.c),
// used by SCAN ... MATCH, KEYS and CONFIG GET. A pure function of its inputs.
//
// Pattern syntax, exactly as Redis reads it:
//   *        any run of bytes, including none
//   ?        exactly one byte
//   [abc]    one byte out of the set; [^abc] one byte not in it
//   [a-z]    a range (reversed bounds are swapped: [z-a] == [a-z])
//   \x       the byte x itself (also inside brackets: [\]])
// Redis's quirks are kept on purpose, so that a pattern selects the same keys
// here as on a Redis server: an unterminated class ("[abc") is a class running
// to the end of the pattern; a lone trailing backslash matches a backslash;
// "-" right before "]" is the end of a range ("[a-]" is the range ']'..'a');
// "*" does not match the empty string when it is the whole pattern (SCAN and
// KEYS special-case the pattern "*" before calling the matcher, as Redis does).
//
// Two deliberate differences, neither reachable by a sane pattern:
//   * bytes compare as unsigned char. Redis compares plain `char`, which is
//     signed on x86 and unsigned on ARM, so its ranges across 0x7f/0x80 differ
//     between platforms; unsigned is what a byte-ordered keyspace means.
//   * case folding (nocase) is ASCII only, never locale dependent.
//
// Cost: Redis's two guards against abusive patterns are kept. After the part
// of a pattern following a "*" failed at every position, earlier stars do not
// retry longer matches (Redis CVE-2022-36021 fix), so matching is polynomial;
// and recursion deeper than kGlobNestingMax stars gives "no match" instead of
// exhausting the stack.
#pragma once

#include <string_view>

namespace chorus::server {

inline constexpr int kGlobNestingMax = 1000;

// True iff `str` matches the Redis glob `pattern`. nocase: ASCII letters
// compare case-insensitively (CONFIG GET matches parameter names that way).
bool glob_match(std::string_view pattern, std::string_view str, bool nocase = false);

}  // namespace chorus::server
