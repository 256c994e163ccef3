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
  double lr = 0.01;
  double momentum = 0;
  double weight_decay = 0;
  bool nesterov = false;
  double dampening = 0;
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
    detail::require(!options.nesterov || (options.momentum > 0.0 && options.dampening == 0.0),
                    "SGD: Nesterov momentum requires momentum > 0 and dampening 0");
    buffers_ = this->make_slots();
  }

  void step() {
    const SGDOptions<T> o = options_;
    const T lr = static_cast<T>(o.lr), momentum = static_cast<T>(o.momentum);
    const T weight_decay = static_cast<T>(o.weight_decay);
    const T undamped = static_cast<T>(1.0 - o.dampening);
    const bool started = momentum_started_;
    this->for_each_chunk([&](auto& value, auto& grad, std::size_t i, Index first, Index count) {
      auto update = [&](const auto& gradient) {
        if (o.momentum == 0.0) {
          value -= lr * gradient;
          return;
        }
        auto buffer = this->chunk_of(buffers_[i], first, count);
        if (started)
          buffer = momentum * buffer + undamped * gradient;
        else
          buffer = gradient;  // PyTorch starts the buffer as a copy, undamped
        if (o.nesterov)
          value -= lr * (gradient + momentum * buffer);
        else
          value -= lr * buffer;
      };
      if (o.weight_decay == 0.0)
        update(grad);
      else
        update(grad + weight_decay * value);
    });
    momentum_started_ = momentum_started_ || o.momentum != 0.0;
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
