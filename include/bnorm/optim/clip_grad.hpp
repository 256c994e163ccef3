// Gradient clipping, as torch.nn.utils.clip_grad_norm_ and clip_grad_value_ (PyTorch 1.13).
//
//   net.backward(loss.backward());
//   const double norm = bnorm::clip_grad_norm(net.parameters(), 1.0);
//   optimizer.step();
//
// clip_grad_norm: the total norm is the norm_type-norm of the per-parameter norms, i.e. of
// every gradient element together (the largest |element| for norm_type infinity). Every
// gradient is then multiplied by min(1, max_norm / (total_norm + 1e-6)), and the total norm
// before clipping is returned. A non-finite norm turns the gradients non-finite, as with
// PyTorch's default error_if_nonfinite=False: check the returned norm to skip such a step.
// The norms are accumulated in double for float networks too (PyTorch uses the tensor type).
//
// clip_grad_value: every gradient element clamped to [-clip_value, clip_value].
//
// Frozen parameters (Parameter::trainable() false) are left out of both, as PyTorch leaves
// out parameters without a gradient.
//
// Both take net.parameters() directly (views: clipping through a temporary vector of views
// clips the network's gradients) and allocate nothing themselves; net.parameters() builds a
// new vector, so a training loop that must not allocate keeps one.
#pragma once

#include "../core/error.hpp"
#include "../core/parameter.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace bnorm {

template <class T>
double clip_grad_norm(std::vector<Parameter<T>>& parameters, double max_norm,
                      double norm_type = 2.0) {
  detail::require(norm_type > 0.0 && !std::isnan(norm_type),
                  "clip_grad_norm: norm_type must be positive or infinity, got ", norm_type);
  detail::require(!std::isnan(max_norm), "clip_grad_norm: max_norm is NaN");
  if (parameters.empty()) return 0.0;
  const bool infinite = std::isinf(norm_type);
  // The largest |g|, or the sum of |g|^p over all elements: the p-norm of the parameters'
  // p-norms is the p-norm of all their elements.
  double total = 0.0;
  for (const auto& parameter : parameters) {
    if (!parameter.trainable()) continue;
    const auto grad = parameter.grad().array().template cast<double>();
    if (infinite)
      total = std::max(total, grad.abs().maxCoeff());
    else if (norm_type == 2.0)
      total += grad.square().sum();
    else
      total += grad.abs().pow(norm_type).sum();
  }
  const double total_norm = infinite ? total : std::pow(total, 1.0 / norm_type);
  const double coefficient = std::min(max_norm / (total_norm + 1e-6), 1.0);
  for (auto& parameter : parameters)
    if (parameter.trainable()) parameter.grad() *= static_cast<T>(coefficient);
  return total_norm;
}

template <class T>
double clip_grad_norm(std::vector<Parameter<T>>&& parameters, double max_norm,
                      double norm_type = 2.0) {
  return clip_grad_norm(parameters, max_norm, norm_type);
}

template <class T>
void clip_grad_value(std::vector<Parameter<T>>& parameters, double clip_value) {
  detail::require(clip_value >= 0.0 && !std::isnan(clip_value),
                  "clip_grad_value: clip_value must be >= 0, got ", clip_value);
  const T bound = static_cast<T>(clip_value);
  for (auto& parameter : parameters)
    if (parameter.trainable())
      parameter.grad() = parameter.grad().array().max(-bound).min(bound).matrix();
}

template <class T>
void clip_grad_value(std::vector<Parameter<T>>&& parameters, double clip_value) {
  clip_grad_value(parameters, clip_value);
}

}  // namespace bnorm
