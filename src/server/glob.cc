#include "server/glob.h"

#include <utility>

namespace chorus::server {
namespace {

// A cursor over the pattern that, like Redis's NUL-terminated sds strings,
// reads '\0' at and beyond its end: Redis's matcher peeks at pattern[1] and at
// pattern[0] when patternLen is 0, and this reproduces those reads without
// ever leaving the buffer.
struct Pattern {
  const char* p;
  long len;  // may not go below 0; p may step back by one, as in Redis

  unsigned char at(long i) const { return i < len ? static_cast<unsigned char>(p[i]) : 0; }
  void advance(long n) {
    p += n;
    len -= n;
  }
};

unsigned char fold(unsigned char c, bool nocase) {
  return nocase && c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c - 'A' + 'a') : c;
}

// A bracket class; pat.at(0) == '['. Returns whether byte c is in the class and
// leaves pat on its closing ']' (or on the last byte of an unterminated
// class), so the caller's one-byte advance steps past it, as in Redis.
bool match_class(Pattern& pat, unsigned char c, bool nocase) {
  pat.advance(1);
  const bool negate = pat.at(0) == '^';
  if (negate) pat.advance(1);
  bool match = false;
  while (true) {
    if (pat.at(0) == '\\' && pat.len >= 2) {
      pat.advance(1);
      if (pat.at(0) == c) match = true;
    } else if (pat.len > 0 && pat.at(0) == ']') {
      break;
    } else if (pat.len <= 0) {
      pat.advance(-1);  // Redis: "pattern--; patternLen++;" for an unterminated class
      break;
    } else if (pat.len >= 3 && pat.at(1) == '-') {
      // Redis orders the bounds before folding them: nocase "[Z-a]" is empty.
      unsigned char lo = pat.at(0);
      unsigned char hi = pat.at(2);
      if (lo > hi) std::swap(lo, hi);
      lo = fold(lo, nocase);
      hi = fold(hi, nocase);
      const unsigned char x = fold(c, nocase);
      pat.advance(2);
      if (x >= lo && x <= hi) match = true;
    } else if (fold(pat.at(0), nocase) == fold(c, nocase)) {
      match = true;
    }
    pat.advance(1);
  }
  return negate ? !match : match;
}

bool match_impl(Pattern pat, std::string_view str, bool nocase, bool* skip_longer, int nesting);

// The '*' case: the rest of the pattern must match some suffix of `str`.
bool match_star(Pattern pat, std::string_view str, bool nocase, bool* skip_longer, int nesting) {
  while (pat.len >= 2 && pat.at(1) == '*') pat.advance(1);
  if (pat.len == 1) return true;
  Pattern rest = pat;
  rest.advance(1);
  while (!str.empty()) {
    if (match_impl(rest, str, nocase, skip_longer, nesting + 1)) return true;
    if (*skip_longer) return false;
    str.remove_prefix(1);
  }
  // The rest matched at no position: a longer match for an earlier '*' would
  // only start the rest later still, so every caller may stop (Redis util.c).
  *skip_longer = true;
  return false;
}

bool match_impl(Pattern pat, std::string_view str, bool nocase, bool* skip_longer, int nesting) {
  if (nesting > kGlobNestingMax) return false;
  while (pat.len > 0 && !str.empty()) {
    const unsigned char s0 = static_cast<unsigned char>(str[0]);
    switch (pat.at(0)) {
      case '*':
        return match_star(pat, str, nocase, skip_longer, nesting);
      case '?':
        break;
      case '[':
        if (!match_class(pat, s0, nocase)) return false;
        break;
      case '\\':
        if (pat.len >= 2) pat.advance(1);
        [[fallthrough]];
      default:
        if (fold(pat.at(0), nocase) != fold(s0, nocase)) return false;
        break;
    }
    str.remove_prefix(1);
    pat.advance(1);
    if (str.empty()) {
      while (pat.len > 0 && pat.at(0) == '*') pat.advance(1);
      break;
    }
  }
  return pat.len == 0 && str.empty();
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view str, bool nocase) {
  bool skip_longer = false;
  return match_impl(Pattern{pattern.data(), static_cast<long>(pattern.size())}, str, nocase,
                    &skip_longer, 0);
}

}  // namespace chorus::server
