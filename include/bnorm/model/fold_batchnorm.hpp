// Folding BatchNorm into the adjacent Dense layers, for inference.
//
// In eval mode a BatchNorm is the affine map y = s * x + t per feature, with
// s = gamma / sqrt(running_var + eps) and t = beta - s * running_mean, so it can be merged
// into a neighbouring Dense layer at no cost in accuracy:
//   Dense then BatchNorm:  s * (W x + b) + t  =  (diag(s) W) x + (s * b + t)
//   BatchNorm then Dense:  W (s * x + t) + b  =  (W diag(s)) x + (W t + b)
// The second form, a BatchNorm feeding a Dense directly, is one that other libraries do
// not fold. The merged weights are computed in extended precision and rounded once.
#pragma once

#include "../core/error.hpp"
#include "../core/layer_ref.hpp"
#include "../core/types.hpp"
#include "../layers/batch_norm.hpp"
#include "../layers/batch_norm_kernels.hpp"
#include "../layers/dense.hpp"
#include "../layers/dropout.hpp"
#include "../layers/identity.hpp"
#include "sequential.hpp"

#include <type_traits>
#include <vector>

namespace bnorm {

namespace detail {

template <class T>
using FoldScalar = std::conditional_t<std::is_same_v<T, float>, double, long double>;

// Eval-mode BatchNorm as y = scale * x + shift, in extended precision.
template <class T>
struct AffineMap {
  Eigen::Matrix<FoldScalar<T>, Eigen::Dynamic, 1> scale, shift;
};

template <class T>
AffineMap<T> eval_affine_map(const BatchNorm<T>& norm) {
  using E = FoldScalar<T>;
  AffineMap<T> map;
  map.scale.resize(norm.features());
  map.shift.resize(norm.features());
  detail::eval_affine_map(norm.gamma().template cast<E>(), norm.beta().template cast<E>(),
                          norm.running_mean().template cast<E>(),
                          norm.running_var().template cast<E>(), E(norm.options().eps), map.scale,
                          map.shift);
  return map;
}

// Appends the layers of `net` to `flat`, with nested Sequentials opened up and the layers
// that are the identity in eval mode (Dropout, Identity) left out.
template <class T>
void flatten_for_inference(const Sequential<T>& net, Sequential<T>& flat) {
  const std::vector<ConstChild<T>> children = net.children();
  for (std::size_t i = 0; i < children.size(); ++i) {
    const ConstLayerRef<T>& layer = children[i].layer;
    if (auto* inner = layer.template as<Sequential<T>>())
      flatten_for_inference(*inner, flat);
    else if (!layer.template as<Dropout<T>>() && !layer.template as<Identity<T>>())
      flat.add_copy(net, i);
  }
}

// A Dense layer with a bias, to be overwritten: drawn from its own generator so that
// folding leaves bnorm::default_generator() untouched.
template <class T>
Dense<T> dense_with_bias(Index in, Index out) {
  Generator unused(0);
  return Dense<T>(in, out, Bias::learned, Init::pytorch_default(), unused);
}

template <class T>
BatchNorm<T>* foldable(const std::vector<Child<T>>& layers, std::size_t i) {
  if (i >= layers.size()) return nullptr;
  auto* norm = layers[i].layer.template as<BatchNorm<T>>();
  return norm && norm->tracking() ? norm : nullptr;  // without running statistics eval uses the batch
}
template <class T>
Dense<T>* dense_at(const std::vector<Child<T>>& layers, std::size_t i) {
  return i < layers.size() ? layers[i].layer.template as<Dense<T>>() : nullptr;
}

}  // namespace detail

// Returns an inference network equal to `net` in eval mode, in which every BatchNorm that
// directly follows a Dense layer, or else directly precedes one, is folded into it; nested
// Sequentials are flattened and Dropout and Identity layers (the identity in eval mode) are
// dropped. Throws bnorm::Error if a BatchNorm and its Dense neighbour disagree in size.
// BatchNorms with no Dense neighbour, or without running statistics, are kept as they are.
// Layers are found through the walker (core/layer_ref.hpp), so a subclass of Dense or
// BatchNorm is folded as the layer it derives from. A layer of your own is copied whole, as
// it is: its dataflow is its own, so the BatchNorms inside it are not folded (it must be
// copyable).
template <class T>
Sequential<T> fold_batchnorm(const Sequential<T>& net) {
  using E = detail::FoldScalar<T>;
  Sequential<T> flat;
  detail::flatten_for_inference(net, flat);
  Sequential<T> folded;
  const std::vector<Child<T>> layers = flat.children();
  for (std::size_t i = 0; i < flat.size(); ++i) {
    Dense<T>* dense = detail::dense_at(layers, i);
    const bool norm_after = dense && detail::foldable(layers, i + 1);
    const bool norm_before = !norm_after && detail::foldable(layers, i) && detail::dense_at(layers, i + 1);
    if (norm_after) {  // Dense then BatchNorm: scale the rows of W, map the bias
      const auto& norm = *detail::foldable(layers, i + 1);
      detail::require(norm.features() == dense->out_features(), "fold_batchnorm: ",
                      norm.name(), " (layer ", i + 1, ") does not fit the ", dense->out_features(),
                      " outputs of ", dense->name(), " (layer ", i, ")");
      const auto map = detail::eval_affine_map(norm);
      Dense<T> merged = detail::dense_with_bias<T>(dense->in_features(), dense->out_features());
      const auto bias = dense->has_bias() ? dense->bias().template cast<E>().eval()
                                          : decltype(map.shift)::Zero(map.shift.size()).eval();
      merged.weight() = (map.scale.asDiagonal() * dense->weight().template cast<E>()).template cast<T>();
      merged.bias() = (map.scale.array() * bias.array() + map.shift.array()).matrix().template cast<T>();
      folded.add(std::move(merged));
      ++i;
    } else if (norm_before) {  // BatchNorm then Dense: scale the columns of W, map the bias
      const auto& norm = *detail::foldable(layers, i);
      Dense<T>& next = *detail::dense_at(layers, i + 1);
      detail::require(norm.features() == next.in_features(), "fold_batchnorm: ", norm.name(),
                      " (layer ", i, ") does not fit the ", next.in_features(), " inputs of ",
                      next.name(), " (layer ", i + 1, ")");
      const auto map = detail::eval_affine_map(norm);
      Dense<T> merged = detail::dense_with_bias<T>(next.in_features(), next.out_features());
      const auto weight = next.weight().template cast<E>().eval();
      const auto bias = next.has_bias() ? next.bias().template cast<E>().eval()
                                        : decltype(map.shift)::Zero(next.out_features()).eval();
      merged.weight() = (weight * map.scale.asDiagonal()).template cast<T>();
      merged.bias() = (weight * map.shift + bias).template cast<T>();
      folded.add(std::move(merged));
      ++i;
    } else {
      folded.add_copy(flat, i);
    }
  }
  return folded;
}

}  // namespace bnorm
