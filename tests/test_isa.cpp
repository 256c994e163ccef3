// core/isa.hpp's table and dispatch: under each variant this machine runs (forced), every
// dispatched kernel, element-wise (core/kernels.hpp) and the GEMM's micro-kernel
// (core/gemm/), runs the best version at or below the forced row; a kernel that lacks a
// version for a row runs the one below, never silently the baseline. The names, the
// environment and the table's generated lists.
#include <bnorm/core/gemm.hpp>
#include <bnorm/core/isa.hpp>
#include <bnorm/core/kernels.hpp>

#include "support/isa_variants.hpp"

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>

using namespace bnorm;
using detail::Isa;
using bnorm_test::ForcedIsa;
using bnorm_test::supported_variants;
namespace kernels = bnorm::detail::kernels;
namespace variants = bnorm::detail::variants;

namespace {

// The best of `rows` at or below `active`: what dispatch must run for a kernel that has
// versions for those rows.
Isa best_at_or_below(Isa active, std::initializer_list<Isa> rows) {
  Isa best = Isa::baseline;
  for (Isa row : rows)
    if (int(row) <= int(active) && int(row) > int(best)) best = row;
  return best;
}

// A kernel with versions for the first and the last row only.
Isa first_and_last(variants::baseline::Variant) { return Isa::baseline; }
constexpr Isa last_row = detail::every_isa[std::size(detail::every_isa) - 1];
Isa first_and_last(detail::VariantTag<last_row>::type) { return last_row; }

// Every dispatched element-wise kernel, asked with its own argument types (the values do not
// matter), checked against `expected`.
template <class T>
void check_every_element_wise_kernel(Isa active, Isa expected) {
  const T* in = nullptr;
  T* out = nullptr;
  const Index n = 0;
  const T scalar = 0;
  const bool flag = false;
  const int* labels = nullptr;
#define CHECK_VARIANT(kernel, ...)                                                      \
  do {                                                                                  \
    CAPTURE(#kernel);                                                                   \
    CHECK(detail::variant_for(active, BNORM_VERSIONS(kernel), __VA_ARGS__) == expected); \
  } while (false)
  CHECK_VARIANT(shifted_sums, in, n, n, n, out, out);
  CHECK_VARIANT(normalize, in, n, n, n, in, in, in, in, out, n, out, n, flag);
  CHECK_VARIANT(affine, in, n, n, n, in, in, out, n, flag);
  CHECK_VARIANT(gradient_sums, in, n, in, n, n, n, out, out, in, out, n);
  CHECK_VARIANT(normalized_input_gradient, in, n, in, n, n, n, in, in, in, out, n, flag);
  CHECK_VARIANT(add_to_columns, out, n, n, n, in);
  CHECK_VARIANT(row_sums, in, n, n, n, out, flag);
  CHECK_VARIANT(matrix_vector, in, n, n, n, in, in, out);
  CHECK_VARIANT(relu, in, n, out);
  CHECK_VARIANT(relu_backward, in, in, n, out);
  CHECK_VARIANT(sigmoid, in, n, out);
  CHECK_VARIANT(sigmoid_backward, in, in, n, out);
  CHECK_VARIANT(tanh, in, n, out);
  CHECK_VARIANT(tanh_backward, in, in, n, out);
  CHECK_VARIANT(leaky_relu, in, n, scalar, out);
  CHECK_VARIANT(leaky_relu_backward, in, in, n, scalar, out);
  CHECK_VARIANT(multiply, in, in, n, out);
  CHECK_VARIANT(softmax_cross_entropy, in, n, n, n, labels, out);
  CHECK_VARIANT(squared_error, in, n, in, n, n, n, scalar, out);
  CHECK_VARIANT(sgd, out, in, n, kernels::SGDCoefficients<T>{});
  CHECK_VARIANT(sgd_momentum, out, in, out, n, kernels::SGDCoefficients<T>{});
  CHECK_VARIANT(adam, out, in, out, out, out, n, kernels::AdamCoefficients<T>{});
  CHECK_VARIANT(rmsprop, out, in, out, out, out, n, kernels::RMSpropCoefficients<T>{});
#undef CHECK_VARIANT
}

}  // namespace

TEST_CASE("Under each forced variant, every kernel runs its best version at or below it") {
  for (Isa isa : supported_variants()) {
    CAPTURE(detail::isa_name(isa));
    ForcedIsa forced(isa);
    const Isa active = detail::active_isa();
    CHECK(active == isa);
    // The element-wise kernels have versions for these rows (core/kernels.hpp), as has the
    // GEMM's micro-kernel (core/gemm/micro_kernel_*.hpp).
    const Isa element_wise = best_at_or_below(active, {Isa::baseline, Isa::avx2, Isa::avx512});
    check_every_element_wise_kernel<float>(active, element_wise);
    check_every_element_wise_kernel<double>(active, element_wise);
    const Isa gemm = best_at_or_below(active, {Isa::baseline, Isa::avx2, Isa::avx512});
    CHECK(detail::gemm::micro_kernel_variant<float>(active) == gemm);
    CHECK(detail::gemm::micro_kernel_variant<double>(active) == gemm);
    MESSAGE("forced ", detail::isa_name(isa), ": element-wise kernels run ",
            detail::isa_name(element_wise), ", the GEMM ", detail::isa_name(gemm));
  }
}

TEST_CASE("A kernel without a version for a row runs the best one below it") {
  for (Isa isa : detail::every_isa) {
    CAPTURE(detail::isa_name(isa));
    const Isa expected = isa == last_row ? last_row : Isa::baseline;
    CHECK(detail::variant_for(isa, BNORM_VERSIONS(first_and_last)) == expected);
    // run_variant runs the version variant_for names.
    CHECK(detail::run_variant(isa, BNORM_VERSIONS(first_and_last)) == expected);
  }
}

TEST_CASE("The table's lists: every row once, in order, with its name") {
  int row = 0;
  for (Isa isa : detail::every_isa) {
    CHECK(int(isa) == row++);
    if (detail::isa_supported(isa))
      CHECK(detail::isa_from_name(std::string(detail::isa_name(isa)).c_str()) == isa);
  }
  CHECK(detail::isa_names() == "baseline, avx2 or avx512");
  CHECK(detail::isa_supported(Isa::baseline));
  CHECK(detail::isa_supported(detail::best_isa()));
}
