// Stochastic gradient descent with optional momentum, weight decay and Nesterov momentum,
// as torch.optim.SGD. Implements the optimizer contract of optim/optimizer.hpp.
//
//   g = grad + weight_decay * p
//   buffer = g on the first step, else momentum * buffer + (1 - dampening) * g
//   g = nesterov ? g + momentum * buffer : buffer        (when momentum != 0)
//   p = p - lr * g
#pragma once

#include "../core/kernels.hpp"
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

// The options as a checkpoint (io/checkpoint.hpp) stores them.
template <class Visitor, class T>
void visit_options(Visitor& visit, SGDOptions<T>& options) {
  // lr and momentum only finite: schedulers set them (OneCycleLR cycles the momentum).
  visit.finite_number("lr", options.lr);
  visit.finite_number("momentum", options.momentum);
  visit.rate("weight_decay", options.weight_decay);
  visit.flag("nesterov", options.nesterov);
  visit.rate("dampening", options.dampening);
}

template <class T>
class SGD : public detail::GroupedOptimizer<T, SGDOptions<T>> {
  using Base = detail::GroupedOptimizer<T, SGDOptions<T>>;

 public:
  explicit SGD(std::vector<Parameter<T>> parameters, SGDOptions<T> options = {})
      : Base(std::move(parameters), options, "SGD") {
    set_up();
  }
  // A braced list, `{}` included, means parameters, not groups.
  SGD(std::initializer_list<Parameter<T>> parameters, SGDOptions<T> options = {})
      : SGD(std::vector<Parameter<T>>(parameters), options) {}
  explicit SGD(std::vector<ParameterGroup<T>> groups, SGDOptions<T> options = {})
      : Base(std::move(groups), options, "SGD") {
    set_up();
  }

  void step() {
    this->require_live_parameters();
    for (std::size_t group = 0; group < this->group_count(); ++group) step_group(group);
    ++this->step_count_;
  }

  // Checkpoints (io/checkpoint.hpp).
  static constexpr std::string_view checkpoint_kind = sizeof(T) == 4 ? "SGD<float>" : "SGD<double>";
  template <class Visitor>
  void visit_checkpoint(Visitor& visit) {
    this->visit_groups(visit);
    this->visit_slots(visit, "the momentum buffers", buffers_);
    for (auto& started : momentum_started_) visit.flag("a momentum-started flag", started);
  }

 private:
  void set_up() {
    for (const auto& o : this->group_options_) {
      this->check_rate("SGD", "lr", o.lr);
      this->check_rate("SGD", "momentum", o.momentum);
      this->check_rate("SGD", "weight_decay", o.weight_decay);
      this->check_rate("SGD", "dampening", o.dampening);
      detail::require(!o.nesterov || (o.momentum > 0.0 && o.dampening == 0.0),
                      "SGD: Nesterov momentum requires momentum > 0 and dampening 0");
    }
    buffers_ = this->make_slots();
    momentum_started_.assign(this->group_count(), 0);
  }

  void step_group(std::size_t group) {
    const SGDOptions<T> o = this->group_options_[group];
    const detail::kernels::SGDCoefficients<T> coefficients{
        .lr = static_cast<T>(o.lr),
        .weight_decay = static_cast<T>(o.weight_decay),
        .momentum = static_cast<T>(o.momentum),
        .undamped = static_cast<T>(1.0 - o.dampening),
        .started = momentum_started_[group] != 0,
        .nesterov = o.nesterov};
    // The dispatched kernels of core/kernels.hpp, one pass over each chunk.
    this->for_each_chunk(group,
                         [&](auto& value, auto& grad, std::size_t i, Index first, Index count) {
                           if (o.momentum != 0.0) {
                             auto buffer = this->chunk_of(buffers_[i], first, count);
                             detail::kernels::sgd_momentum(value.data(), grad.data(),
                                                           buffer.data(), count, coefficients);
                           } else {
                             detail::kernels::sgd(value.data(), grad.data(), count, coefficients);
                           }
                         });
    if (o.momentum != 0.0) momentum_started_[group] = 1;
  }

  std::vector<Matrix<T>> buffers_;
  // Per group, as PyTorch creates each momentum buffer on the first step with momentum.
  std::vector<char> momentum_started_;
};

}  // namespace bnorm
