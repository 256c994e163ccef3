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

#include "optimizer.hpp"

namespace bnorm {

template <class T>
struct RMSpropOptions {
  T lr = T(1e-2);
  T alpha = T(0.99);
  T eps = T(1e-8);
  T weight_decay = T(0);
  T momentum = T(0);
  bool centered = false;
};

template <class T>
class RMSprop : public detail::OptimizerBase<T> {
 public:
  explicit RMSprop(std::vector<Parameter<T>> parameters, RMSpropOptions<T> options = {})
      : detail::OptimizerBase<T>(std::move(parameters), "RMSprop"), options_(options) {
    this->check_rate("RMSprop", "lr", options.lr);
    this->check_fraction("RMSprop", "alpha", options.alpha);
    this->check_rate("RMSprop", "eps", options.eps);
    this->check_rate("RMSprop", "weight_decay", options.weight_decay);
    this->check_rate("RMSprop", "momentum", options.momentum);
    square_averages_ = this->make_slots();
    gradient_averages_ = this->make_slots();
    buffers_ = this->make_slots();
  }

  void step() {
    const RMSpropOptions<T> o = options_;
    for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
      auto value = this->parameters_[i].value().array();
      const auto gradient = this->parameters_[i].grad().array() + o.weight_decay * value;
      auto square_average = square_averages_[i].array();
      square_average = o.alpha * square_average + (T(1) - o.alpha) * gradient.square();
      auto gradient_average = gradient_averages_[i].array();
      if (o.centered) gradient_average = o.alpha * gradient_average + (T(1) - o.alpha) * gradient;
      auto buffer = buffers_[i].array();
      auto update = [&](const auto& denominator) {
        if (o.momentum > T(0)) {
          buffer = o.momentum * buffer + gradient / denominator;
          value -= o.lr * buffer;
        } else {
          value -= o.lr * gradient / denominator;
        }
      };
      if (o.centered)
        update((square_average - gradient_average.square()).sqrt() + o.eps);
      else
        update(square_average.sqrt() + o.eps);
    }
    ++this->step_count_;
  }

  RMSpropOptions<T>& options() { return options_; }
  const RMSpropOptions<T>& options() const { return options_; }

 private:
  RMSpropOptions<T> options_;
  std::vector<Matrix<T>> square_averages_, gradient_averages_, buffers_;
};

}  // namespace bnorm
