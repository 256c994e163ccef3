// RMSprop (Hinton's lecture 6e), as torch.optim.RMSprop. Implements the optimizer contract of
// optim/optimizer.hpp.
//
//   g = grad + weight_decay * p
//   s = alpha * s + (1 - alpha) * g^2
//   centered: a = alpha * a + (1 - alpha) * g;  denominator = sqrt(s - a^2) + eps
//   otherwise denominator = sqrt(s) + eps
//   momentum > 0: buffer = momentum * buffer + g / denominator;  p = p - lr * buffer
//   otherwise p = p - lr * g / denominator
#pragma once

#include "../core/kernels.hpp"
#include "optimizer.hpp"

namespace bnorm {

template <class T>
struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0;
  double momentum = 0;
  bool centered = false;
};

// The options as a checkpoint (io/checkpoint.hpp) stores them.
template <class Visitor, class T>
void visit_options(Visitor& visit, RMSpropOptions<T>& options) {
  // lr and momentum only finite: schedulers set them (OneCycleLR cycles the momentum).
  visit.finite_number("lr", options.lr);
  visit.fraction("alpha", options.alpha);
  visit.rate("eps", options.eps);
  visit.rate("weight_decay", options.weight_decay);
  visit.finite_number("momentum", options.momentum);
  visit.flag("centered", options.centered);
}

template <class T>
class RMSprop : public detail::GroupedOptimizer<T, RMSpropOptions<T>> {
  using Base = detail::GroupedOptimizer<T, RMSpropOptions<T>>;

 public:
  explicit RMSprop(std::vector<Parameter<T>> parameters, RMSpropOptions<T> options = {})
      : Base(std::move(parameters), options, "RMSprop") {
    set_up();
  }
  // A braced list, `{}` included, means parameters, not groups.
  RMSprop(std::initializer_list<Parameter<T>> parameters, RMSpropOptions<T> options = {})
      : RMSprop(std::vector<Parameter<T>>(parameters), options) {}
  explicit RMSprop(std::vector<ParameterGroup<T>> groups, RMSpropOptions<T> options = {})
      : Base(std::move(groups), options, "RMSprop") {
    set_up();
  }

  void step() {
    this->require_live_parameters();
    for (std::size_t group = 0; group < this->group_count(); ++group) step_group(group);
    ++this->step_count_;
  }

  // Checkpoints (io/checkpoint.hpp).
  static constexpr std::string_view checkpoint_kind =
      sizeof(T) == 4 ? "RMSprop<float>" : "RMSprop<double>";
  template <class Visitor>
  void visit_checkpoint(Visitor& visit) {
    this->visit_groups(visit);
    this->visit_slots(visit, "the square averages", square_averages_);
    this->visit_slots(visit, "the gradient averages", gradient_averages_);
    this->visit_slots(visit, "the momentum buffers", buffers_);
  }

 private:
  void set_up() {
    for (const auto& o : this->group_options_) {
      this->check_rate("RMSprop", "lr", o.lr);
      this->check_fraction("RMSprop", "alpha", o.alpha);
      this->check_rate("RMSprop", "eps", o.eps);
      this->check_rate("RMSprop", "weight_decay", o.weight_decay);
      this->check_rate("RMSprop", "momentum", o.momentum);
    }
    square_averages_ = this->make_slots();
    gradient_averages_ = this->make_slots();
    buffers_ = this->make_slots();
  }

  void step_group(std::size_t group) {
    const RMSpropOptions<T> o = this->group_options_[group];
    const detail::kernels::RMSpropCoefficients<T> coefficients{
        .lr = static_cast<T>(o.lr),
        .alpha = static_cast<T>(o.alpha),
        .one_minus_alpha = static_cast<T>(1.0 - o.alpha),
        .eps = static_cast<T>(o.eps),
        .weight_decay = static_cast<T>(o.weight_decay),
        .momentum = static_cast<T>(o.momentum)};
    // The dispatched kernel of core/kernels.hpp, one pass over each chunk.
    this->for_each_chunk(
        group, [&](auto& value, auto& grad, std::size_t i, Index first, Index count) {
          T* gradient_average = o.centered ? gradient_averages_[i].data() + first : nullptr;
          T* buffer = o.momentum > 0.0 ? buffers_[i].data() + first : nullptr;
          detail::kernels::rmsprop(value.data(), grad.data(), square_averages_[i].data() + first,
                                   gradient_average, buffer, count, coefficients);
        });
  }

  std::vector<Matrix<T>> square_averages_, gradient_averages_, buffers_;
};

}  // namespace bnorm
