// Turning assertion failures into reported violations inside the simulator.
#pragma once

#include <stdexcept>
#include <string>

namespace chorus::sim {

struct AssertionFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Installs an assertion handler that throws AssertionFailure. Call once,
// before starting threads (the simulator CLI and the simulator tests do).
void throw_on_assertion_failure();

}  // namespace chorus::sim
