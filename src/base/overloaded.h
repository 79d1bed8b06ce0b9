// Overloaded{lambdas...}: one visitor for std::visit out of several lambdas
// (the usual C++17 idiom), so each engine dispatches its message variant
// without a copy of this helper per file.
#pragma once

namespace chorus {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

}  // namespace chorus
