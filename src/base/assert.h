// Always-on assertions for broken invariants.
//
// CHORUS_ASSERT stays enabled in release builds (TigerBeetle's rule): an
// invariant that does not hold means the process state can no longer be
// trusted, so the process stops with the failing expression and location
// instead of continuing and corrupting replicated data. Use it for bugs only;
// I/O errors and corrupt input travel as Status/Result (status.h), and
// protocol outcomes ("not leader") are plain reply values.
#pragma once

#include <cstdint>

namespace chorus {
// Called on a failed assertion before the process aborts. The simulator
// installs one that throws, so a broken invariant in one seed is reported as
// a violation with its seed instead of ending the whole sweep. Production code
// never installs one. Set it once, before any other thread starts.
using AssertionHandler = void (*)(const char* expr, const char* file, int line, const char* msg);
void set_assertion_handler(AssertionHandler h);
}  // namespace chorus

namespace chorus::detail {
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const char* msg);
}  // namespace chorus::detail

#define CHORUS_ASSERT(cond)                                         \
  do {                                                              \
    if (!(cond)) [[unlikely]]                                       \
      ::chorus::detail::assert_fail(#cond, __FILE__, __LINE__, ""); \
  } while (0)

#define CHORUS_ASSERT_MSG(cond, msg)                                 \
  do {                                                               \
    if (!(cond)) [[unlikely]]                                        \
      ::chorus::detail::assert_fail(#cond, __FILE__, __LINE__, msg); \
  } while (0)

#define CHORUS_UNREACHABLE() ::chorus::detail::assert_fail("unreachable", __FILE__, __LINE__, "")
