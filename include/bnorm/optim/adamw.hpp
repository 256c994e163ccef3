// AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay, as torch.optim.AdamW.
// Implements the optimizer contract of optim/optimizer.hpp.
//
//   p = p * (1 - lr * weight_decay), then the Adam update of optim/adam.hpp without L2.
#pragma once

#include "adam.hpp"

namespace bnorm {

// Adam's fields in Adam's order, with PyTorch's AdamW default weight_decay of 0.01.
template <class T>
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
};

template <class Visitor, class T>
void visit_options(Visitor& visit, AdamWOptions<T>& options) {
  detail::visit_adam_options(visit, options);
}

template <class T>
class AdamW : public detail::AdamBase<T, AdamWOptions<T>> {
 public:
  explicit AdamW(std::vector<Parameter<T>> parameters, AdamWOptions<T> options = {})
      : detail::AdamBase<T, AdamWOptions<T>>(std::move(parameters), options, "AdamW") {}
  // A braced list, `{}` included, means parameters, not groups.
  AdamW(std::initializer_list<Parameter<T>> parameters, AdamWOptions<T> options = {})
      : AdamW(std::vector<Parameter<T>>(parameters), options) {}
  explicit AdamW(std::vector<ParameterGroup<T>> groups, AdamWOptions<T> options = {})
      : detail::AdamBase<T, AdamWOptions<T>>(std::move(groups), options, "AdamW") {}
  void step() { this->adam_step(true); }
  static constexpr std::string_view checkpoint_kind =
      sizeof(T) == 4 ? "AdamW<float>" : "AdamW<double>";
};

}  // namespace bnorm
