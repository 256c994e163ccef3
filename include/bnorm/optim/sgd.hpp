// Stochastic gradient descent with optional momentum, weight decay and Nesterov momentum,
// as torch.optim.SGD. Implements the optimizer contract of optim/optimizer.hpp.
//
//   g = grad + weight_decay * p
//   buffer = g on the first step, else momentum * buffer + (1 - dampening) * g
//   g = nesterov ? g + momentum * buffer : buffer        (when momentum != 0)
//   p = p - lr * g
#pragma once

#include "optimizer.hpp"

namespace bnorm {

template <class T>
struct SGDOptions {
  T lr = T(0.01);
  T momentum = T(0);
  T weight_decay = T(0);
  bool nesterov = false;
  T dampening = T(0);
};

template <class T>
class SGD : public detail::OptimizerBase<T> {
 public:
  explicit SGD(std::vector<Parameter<T>> parameters, SGDOptions<T> options = {})
      : detail::OptimizerBase<T>(std::move(parameters), "SGD"), options_(options) {
    this->check_rate("SGD", "lr", options.lr);
    this->check_rate("SGD", "momentum", options.momentum);
    this->check_rate("SGD", "weight_decay", options.weight_decay);
    this->check_rate("SGD", "dampening", options.dampening);
    detail::require(!options.nesterov || (options.momentum > T(0) && options.dampening == T(0)),
                    "SGD: Nesterov momentum requires momentum > 0 and dampening 0");
    buffers_ = this->make_slots();
  }

  void step() {
    const SGDOptions<T> o = options_;
    for (std::size_t i = 0; i < this->parameters_.size(); ++i) {
      auto value = this->parameters_[i].value().array();
      const auto gradient = this->parameters_[i].grad().array() + o.weight_decay * value;
      if (o.momentum == T(0)) {
        value -= o.lr * gradient;
        continue;
      }
      auto buffer = buffers_[i].array();
      if (momentum_started_)
        buffer = o.momentum * buffer + (T(1) - o.dampening) * gradient;
      else
        buffer = gradient;  // PyTorch starts the buffer as a copy, undamped
      if (o.nesterov)
        value -= o.lr * (gradient + o.momentum * buffer);
      else
        value -= o.lr * buffer;
    }
    momentum_started_ = momentum_started_ || o.momentum != T(0);
    ++this->step_count_;
  }

  SGDOptions<T>& options() { return options_; }
  const SGDOptions<T>& options() const { return options_; }

 private:
  SGDOptions<T> options_;
  std::vector<Matrix<T>> buffers_;
  bool momentum_started_ = false;
};

}  // namespace bnorm
