// The one exception type bnorm throws, and the helpers that build its messages.
#pragma once

#include "types.hpp"

#include <cassert>
#include <cstdlib>
#include <typeinfo>
#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#endif
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

// Internal invariants (never user errors). Define BNORM_ASSERT before including bnorm to
// route them elsewhere; user errors always throw bnorm::Error, whatever NDEBUG says.
#ifndef BNORM_ASSERT
#define BNORM_ASSERT(condition) assert(condition)
#endif

namespace bnorm {

// Every error bnorm reports: bad shapes, bad options, bad data, misuse of the API.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw Error(message.str());
}

template <class... Parts>
void require(bool condition, const Parts&... parts) {
  if (!condition) fail(parts...);
}

// A readable type name for messages ("bnorm::Dense<float>").
template <class Type>
std::string type_name() {
#if __has_include(<cxxabi.h>)
  int status = 0;
  char* readable = abi::__cxa_demangle(typeid(Type).name(), nullptr, nullptr, &status);
  if (status == 0 && readable) {
    std::string text(readable);
    std::free(readable);
    return text;
  }
#endif
  return typeid(Type).name();
}

// "784 x 64"; a negative extent means "any" and prints as "batch".
inline std::string shape_string(Index rows, Index cols) {
  std::ostringstream text;
  text << rows << " x ";
  if (cols < 0) text << "batch"; else text << cols;
  return text.str();
}

// The name used in a message: a string as is, or the name() of a layer. Only evaluated on
// failure, so checks on hot paths never build a string.
template <class Owner>
std::string owner_name(const Owner& owner) {
  if constexpr (std::is_convertible_v<const Owner&, std::string_view>)
    return std::string(std::string_view(owner));
  else
    return owner.name();
}

// Checks a features x batch input: expected_rows < 0 accepts any row count and
// expected_cols < 0 any non-empty batch.
template <class Owner>
void check_shape(const Owner& owner, std::string_view what, Index expected_rows,
                 Index expected_cols, Index rows, Index cols) {
  const bool rows_ok = expected_rows < 0 || rows == expected_rows;
  const bool cols_ok = expected_cols < 0 ? cols > 0 : cols == expected_cols;
  if (rows_ok && cols_ok) [[likely]] return;
  if (cols == 0 && expected_cols < 0 && rows_ok)
    fail(owner_name(owner), ": ", what, " is an empty batch (", shape_string(rows, cols),
         "); a batch needs at least one example (one column)");
  fail(owner_name(owner), ": ", what, " has shape ", shape_string(rows, cols), " but ",
       shape_string(expected_rows < 0 ? rows : expected_rows, expected_cols),
       " (features x batch) was expected");
}

inline void check_positive_size(std::string_view layer, std::string_view what, Index value) {
  require(value > 0, layer, ": ", what, " must be positive, got ", value);
}

template <class T>
void check_finite_option(std::string_view owner, std::string_view what, T value) {
  require(std::isfinite(static_cast<double>(value)), owner, ": ", what,
          " must be a finite number, got ", value);
}

}  // namespace detail
}  // namespace bnorm
