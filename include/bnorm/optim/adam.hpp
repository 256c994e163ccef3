// Adam (Kingma & Ba 2015) with L2 weight decay folded into the gradient, as torch.optim.Adam.
// Implements the optimizer contract of optim/optimizer.hpp.
//
//   g = grad + weight_decay * p;  t = t + 1
//   m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g^2
//   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// The bias corrections advance once per step, for every parameter alike.
#pragma once

#include "../core/kernels.hpp"
#include "optimizer.hpp"

#include <cmath>

namespace bnorm {

template <class T>
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool amsgrad = false;
};

namespace detail {

// The options of Adam and AdamW as a checkpoint (io/checkpoint.hpp) stores them.
template <class Visitor, class Options>
void visit_adam_options(Visitor& visit, Options& options) {
  // lr and beta1 only finite: schedulers set them (OneCycleLR cycles beta1).
  visit.finite_number("lr", options.lr);
  visit.finite_number("beta1", options.beta1);
  visit.fraction("beta2", options.beta2);
  visit.rate("eps", options.eps);
  visit.rate("weight_decay", options.weight_decay);
  visit.flag("amsgrad", options.amsgrad);
}

// Adam and AdamW differ only in where the weight decay enters (and its default).
template <class T, class Options>
class AdamBase : public GroupedOptimizer<T, Options> {
 public:
  // Checkpoints (io/checkpoint.hpp).
  template <class Visitor>
  void visit_checkpoint(Visitor& visit) {
    this->visit_groups(visit);
    this->visit_slots(visit, "the first moments", first_moments_);
    this->visit_slots(visit, "the second moments", second_moments_);
    this->visit_slots(visit, "the largest second moments (amsgrad)", max_second_moments_);
  }

 protected:
  // Parameters: a std::vector of Parameter<T> or of ParameterGroup<T>.
  template <class Parameters>
  AdamBase(Parameters parameters, const Options& options, std::string_view owner)
      : GroupedOptimizer<T, Options>(std::move(parameters), options, owner) {
    bool amsgrad = false;
    for (const auto& o : this->group_options_) {
      this->check_rate(owner, "lr", o.lr);
      this->check_fraction(owner, "beta1", o.beta1);
      this->check_fraction(owner, "beta2", o.beta2);
      this->check_rate(owner, "eps", o.eps);
      this->check_rate(owner, "weight_decay", o.weight_decay);
      amsgrad = amsgrad || o.amsgrad;
    }
    first_moments_ = this->make_slots();
    second_moments_ = this->make_slots();
    if (amsgrad) max_second_moments_ = this->make_slots();
  }

  void adam_step(bool decoupled_weight_decay) {
    this->require_live_parameters();
    const long long t = ++this->step_count_;
    for (std::size_t group = 0; group < this->group_count(); ++group)
      adam_step_group(group, t, decoupled_weight_decay);
  }

 private:
  void adam_step_group(std::size_t group, long long t, bool decoupled_weight_decay) {
    const Options o = this->group_options_[group];
    if (o.amsgrad && max_second_moments_.empty()) max_second_moments_ = this->make_slots();
    const double bias_correction1 = 1.0 - std::pow(o.beta1, static_cast<double>(t));
    const T bias_correction2_sqrt =
        static_cast<T>(std::sqrt(1.0 - std::pow(o.beta2, static_cast<double>(t))));
    const detail::kernels::AdamCoefficients<T> coefficients{
        .step_size = static_cast<T>(o.lr / bias_correction1),
        .bias_correction2_sqrt = bias_correction2_sqrt,
        .beta1 = static_cast<T>(o.beta1),
        .one_minus_beta1 = static_cast<T>(1.0 - o.beta1),
        .beta2 = static_cast<T>(o.beta2),
        .one_minus_beta2 = static_cast<T>(1.0 - o.beta2),
        .eps = static_cast<T>(o.eps),
        .l2 = decoupled_weight_decay ? T(0) : static_cast<T>(o.weight_decay),
        .decay = decoupled_weight_decay ? static_cast<T>(1.0 - o.lr * o.weight_decay) : T(1)};
    // The dispatched kernel of core/kernels.hpp, one pass over each chunk.
    this->for_each_chunk(
        group, [&](auto& value, auto& grad, std::size_t i, Index first, Index count) {
          T* max_second = o.amsgrad ? max_second_moments_[i].data() + first : nullptr;
          detail::kernels::adam(value.data(), grad.data(), first_moments_[i].data() + first,
                                second_moments_[i].data() + first, max_second, count,
                                coefficients);
        });
  }

  std::vector<Matrix<T>> first_moments_, second_moments_, max_second_moments_;
};

}  // namespace detail

template <class Visitor, class T>
void visit_options(Visitor& visit, AdamOptions<T>& options) {
  detail::visit_adam_options(visit, options);
}

template <class T>
class Adam : public detail::AdamBase<T, AdamOptions<T>> {
 public:
  explicit Adam(std::vector<Parameter<T>> parameters, AdamOptions<T> options = {})
      : detail::AdamBase<T, AdamOptions<T>>(std::move(parameters), options, "Adam") {}
  // A braced list, `{}` included, means parameters, not groups.
  Adam(std::initializer_list<Parameter<T>> parameters, AdamOptions<T> options = {})
      : Adam(std::vector<Parameter<T>>(parameters), options) {}
  explicit Adam(std::vector<ParameterGroup<T>> groups, AdamOptions<T> options = {})
      : detail::AdamBase<T, AdamOptions<T>>(std::move(groups), options, "Adam") {}
  void step() { this->adam_step(false); }
  static constexpr std::string_view checkpoint_kind =
      sizeof(T) == 4 ? "Adam<float>" : "Adam<double>";
};

}  // namespace bnorm
