// Parameter groups: parameters that share option overrides, as the dicts of PyTorch's
// optimizer param_groups.
//
//   auto groups = bnorm::split_weight_decay(net.parameters());    // {decay, no decay}
//   bnorm::SGD<float> sgd(groups, {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4});
//
// A group's unset overrides take the optimizer's options, as PyTorch fills a group's missing
// keys from the optimizer's defaults. Schedulers scale every group from its own initial lr.
#pragma once

#include "../core/parameter.hpp"

#include <optional>
#include <utility>
#include <vector>

namespace bnorm {

template <class T>
struct ParameterGroup {
  std::vector<Parameter<T>> parameters;
  std::optional<double> lr = std::nullopt;
  std::optional<double> weight_decay = std::nullopt;
};

// The usual recipe: weight decay on the weight matrices, none on the vectors (biases and
// BatchNorm's gamma and beta), PyTorch's `p.ndim <= 1` test. bnorm stores vectors as n x 1
// matrices, so a Dense layer with a single input, whose weight is out x 1, counts as a vector
// here: use the predicate overload to decide otherwise. Group 0 decays, group 1 does not.
template <class T, class Decays>
std::vector<ParameterGroup<T>> split_weight_decay(std::vector<Parameter<T>> parameters,
                                                  Decays&& decays) {
  std::vector<ParameterGroup<T>> groups(2);
  groups[1].weight_decay = 0.0;
  for (auto& parameter : parameters) {
    const bool decay = decays(static_cast<const Parameter<T>&>(parameter));
    groups[decay ? 0 : 1].parameters.push_back(std::move(parameter));
  }
  return groups;
}

template <class T>
std::vector<ParameterGroup<T>> split_weight_decay(std::vector<Parameter<T>> parameters) {
  return split_weight_decay(std::move(parameters),
                            [](const Parameter<T>& parameter) { return parameter.cols() > 1; });
}

}  // namespace bnorm
