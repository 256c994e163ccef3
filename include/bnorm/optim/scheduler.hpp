// The learning-rate scheduler contract, written once, and the state every scheduler shares.
//
//   Scheduler(Optimizer& optimizer, Options options = {});
//     Any bnorm optimizer (SGD, Adam, AdamW, RMSprop), which must outlive the scheduler.
//     Constructing one sets every group's learning rate to the schedule's first value, as
//     PyTorch's constructor does (its initial step; ReduceLROnPlateau changes nothing).
//   void step();   (ReduceLROnPlateau: void step(double metric))
//     Called after optimizer.step(), once per epoch or per batch as the schedule is meant:
//     moves to the next value of the schedule and writes it into every group.
//   double last_lr() const;  const std::vector<double>& last_lrs() const;
//     The learning rate the last step (or the constructor) set: group 0's, every group's.
//
// The sequences are PyTorch 1.13's (torch/optim/lr_scheduler.py): step() uses the same
// recursive (chainable) formulas, so a learning rate changed by hand between steps, or
// by another scheduler, is carried on as PyTorch carries it. Every group is scaled from its
// own initial learning rate (PyTorch's base_lrs). Plain classes, not templates: the
// optimizer is reached through detail::ScheduledOptimizer, which erases its type.
//
// Differences from PyTorch: no `last_epoch` constructor argument and no step(epoch)
// (both deprecated there); the base learning rates are the groups' learning rates when the
// scheduler is constructed (PyTorch keeps the first scheduler's "initial_lr" in the group).
#pragma once

#include "../core/error.hpp"

#include <cmath>
#include <cstddef>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace bnorm::detail {

// A type-erased reference to a bnorm optimizer: its groups' learning rates, and the
// momentum OneCycleLR cycles (SGD's and RMSprop's momentum, Adam's and AdamW's beta1, as
// PyTorch cycles "momentum" or "betas"[0]).
class ScheduledOptimizer {
 public:
  template <class Optimizer>
  explicit ScheduledOptimizer(Optimizer& optimizer)
      : optimizer_(&optimizer), operations_(&operations_for<Optimizer>) {}

  std::size_t group_count() const { return operations_->group_count(optimizer_); }
  double lr(std::size_t group) const { return operations_->lr(optimizer_, group); }
  void set_lr(std::size_t group, double lr) { operations_->set_lr(optimizer_, group, lr); }

  bool has_momentum() const { return operations_->momentum != nullptr; }
  double momentum(std::size_t group) const { return operations_->momentum(optimizer_, group); }
  void set_momentum(std::size_t group, double momentum) {
    operations_->set_momentum(optimizer_, group, momentum);
  }

 private:
  struct Operations {
    std::size_t (*group_count)(const void*);
    double (*lr)(const void*, std::size_t);
    void (*set_lr)(void*, std::size_t, double);
    double (*momentum)(const void*, std::size_t);  // null without momentum
    void (*set_momentum)(void*, std::size_t, double);
  };

  template <class Options>
  static constexpr bool has_momentum_field = requires(Options& o) {
    o.beta1;
  }
  || requires(Options& o) { o.momentum; };

  // Adam's and AdamW's beta1, else SGD's and RMSprop's momentum.
  template <class Options>
  static auto* momentum_of(Options& options) {
    if constexpr (requires(Options & o) { o.beta1; })
      return &options.beta1;
    else
      return &options.momentum;
  }

  template <class Optimizer>
  static constexpr Operations make_operations() {
    Operations operations{
        [](const void* o) { return static_cast<const Optimizer*>(o)->group_count(); },
        [](const void* o, std::size_t group) {
          return static_cast<const Optimizer*>(o)->group_options(group).lr;
        },
        [](void* o, std::size_t group, double lr) {
          static_cast<Optimizer*>(o)->group_options(group).lr = lr;
        },
        nullptr, nullptr};
    using Options = std::remove_cvref_t<decltype(std::declval<Optimizer&>().group_options(0))>;
    if constexpr (has_momentum_field<Options>) {
      operations.momentum = [](const void* o, std::size_t group) {
        return *momentum_of(static_cast<const Optimizer*>(o)->group_options(group));
      };
      operations.set_momentum = [](void* o, std::size_t group, double momentum) {
        *momentum_of(static_cast<Optimizer*>(o)->group_options(group)) = momentum;
      };
    }
    return operations;
  }

  template <class Optimizer>
  static constexpr Operations operations_for = make_operations<Optimizer>();

  void* optimizer_;
  const Operations* operations_;
};

// What every scheduler holds: the optimizer, PyTorch's base_lrs, last_epoch and _last_lr.
class LRSchedulerBase {
 public:
  double last_lr() const { return last_lrs_[0]; }
  const std::vector<double>& last_lrs() const { return last_lrs_; }
  // Steps taken, the constructor's included (PyTorch's last_epoch).
  long long last_epoch() const { return last_epoch_; }

 protected:
  template <class Optimizer>
  explicit LRSchedulerBase(Optimizer& optimizer) : optimizer_(optimizer) {
    for (std::size_t group = 0; group < optimizer_.group_count(); ++group)
      base_lrs_.push_back(optimizer_.lr(group));
    last_lrs_ = base_lrs_;
  }

  // PyTorch's step(): last_epoch + 1, then every group's lr = next_lr(group, its lr).
  template <class NextLr>
  void advance(NextLr&& next_lr) {
    ++last_epoch_;
    for (std::size_t group = 0; group < optimizer_.group_count(); ++group) {
      optimizer_.set_lr(group, next_lr(group, optimizer_.lr(group)));
      last_lrs_[group] = optimizer_.lr(group);
    }
  }

  // The progress every scheduler's checkpoint holds (io/checkpoint.hpp).
  template <class Visitor>
  void visit_progress(Visitor& visit) {
    visit.count("the number of parameter groups", base_lrs_.size());
    for (auto& lr : base_lrs_) visit.finite_number("a base learning rate", lr);
    for (auto& lr : last_lrs_) visit.finite_number("a last learning rate", lr);
    visit.counter("last_epoch", last_epoch_);
  }

  static void check_finite(std::string_view owner, std::string_view what, double value) {
    require(std::isfinite(value), owner, ": ", what, " must be finite, got ", value);
  }
  static void check_positive(std::string_view owner, std::string_view what, long long value) {
    require(value > 0, owner, ": ", what, " must be positive, got ", value);
  }

  ScheduledOptimizer optimizer_;
  std::vector<double> base_lrs_;
  std::vector<double> last_lrs_;
  long long last_epoch_ = -1;
};

}  // namespace bnorm::detail
