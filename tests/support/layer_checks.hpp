// Checks of the layer contract (core/layer.hpp) that every layer must pass.
#pragma once

#include <bnorm/core/layer.hpp>
#include <bnorm/core/types.hpp>

#include <doctest/doctest.h>

#include <vector>

namespace bnorm_test {

template <class L>
std::vector<Matrix<double>> parameter_gradients(L& layer) {
  std::vector<Matrix<double>> list;
  if constexpr (bnorm::HasParameters<L, double>)
    for (auto& parameter : layer.parameters()) list.emplace_back(parameter.grad());
  return list;
}

template <class L>
std::vector<Matrix<double>> buffer_values(L& layer) {
  std::vector<Matrix<double>> list;
  if constexpr (bnorm::HasBuffers<L, double>)
    for (auto& buffer : layer.buffers())
      if (buffer.kind() == bnorm::BufferKind::values) list.emplace_back(buffer.values());
  return list;
}

// An eval forward (a validation batch of another size) between a training forward and its
// backward changes neither the backward's results nor the state, bit for bit.
template <class L>
void check_eval_between_forward_and_backward(const L& layer, const Matrix<double>& x,
                                             const Matrix<double>& validation,
                                             const Matrix<double>& dy) {
  L plain = layer, interrupted = layer;
  plain.forward(x, bnorm::Mode::train);
  const Matrix<double> expected = plain.backward(dy);
  interrupted.forward(x, bnorm::Mode::train);
  interrupted.forward(validation, bnorm::Mode::eval);
  const Matrix<double> actual = interrupted.backward(dy);
  CHECK(actual == expected);
  CHECK(parameter_gradients(interrupted) == parameter_gradients(plain));
  CHECK(buffer_values(interrupted) == buffer_values(plain));
}

// With accumulation on, backward over four micro-batches sums their four gradients.
template <class L>
void check_gradient_accumulation(const L& layer, const std::vector<Matrix<double>>& xs,
                                 const std::vector<Matrix<double>>& dys, double tolerance) {
  L separate = layer, accumulating = layer;
  accumulating.set_accumulate_gradients(true);
  accumulating.zero_grad();
  std::vector<Matrix<double>> sum;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    separate.forward(xs[i], bnorm::Mode::train);
    separate.backward(dys[i]);
    accumulating.forward(xs[i], bnorm::Mode::train);
    accumulating.backward(dys[i]);
    auto grads = parameter_gradients(separate);
    if (sum.empty()) sum = grads;
    else
      for (std::size_t p = 0; p < sum.size(); ++p) sum[p] += grads[p];
  }
  const auto accumulated = parameter_gradients(accumulating);
  REQUIRE(accumulated.size() == sum.size());
  REQUIRE_FALSE(sum.empty());
  for (std::size_t p = 0; p < sum.size(); ++p) {
    CHECK(!sum[p].isZero());
    CHECK((accumulated[p] - sum[p]).cwiseAbs().maxCoeff() <=
          tolerance * (1.0 + sum[p].cwiseAbs().maxCoeff()));
  }
  accumulating.zero_grad();
  for (const auto& grad : parameter_gradients(accumulating)) CHECK(grad.isZero());
}

}  // namespace bnorm_test
