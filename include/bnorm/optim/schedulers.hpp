// The learning-rate schedulers of torch.optim.lr_scheduler (PyTorch 1.13), each
// implementing the scheduler contract of optim/scheduler.hpp:
//
//   bnorm::SGD<float> sgd(net.parameters(), {.lr = 0.1, .momentum = 0.9});
//   bnorm::StepLR schedule(sgd, {.step_size = 30, .gamma = 0.1});
//   for (int epoch = 0; epoch < 100; ++epoch) {
//     train_one_epoch(net, sgd);
//     schedule.step();
//   }
//
// The formulas below are PyTorch's step() forms, with lr the group's current learning rate,
// base_lr its learning rate when the scheduler was made and e = last_epoch() after the step.
// Options without a PyTorch default (StepLR's step_size, ExponentialLR's gamma,
// CosineAnnealingLR's t_max, OneCycleLR's max_lr) must be set: the constructor throws
// bnorm::Error otherwise.
#pragma once

#include "scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string_view>
#include <vector>

namespace bnorm {

// lr * gamma whenever e is a positive multiple of step_size.
struct StepLROptions {
  long long step_size = 0;
  double gamma = 0.1;
};

class StepLR : public detail::LRSchedulerBase {
 public:
  template <class Optimizer>
  StepLR(Optimizer& optimizer, StepLROptions options)
      : LRSchedulerBase(optimizer), options_(options) {
    check_positive("StepLR", "step_size", options.step_size);
    check_finite("StepLR", "gamma", options.gamma);
    step();
  }

  void step() {
    const bool decays = last_epoch_ + 1 != 0 && (last_epoch_ + 1) % options_.step_size == 0;
    advance([&](std::size_t, double lr) { return decays ? lr * options_.gamma : lr; });
  }

  const StepLROptions& options() const { return options_; }

  // Checkpoints (io/checkpoint.hpp): the options must match, the progress is restored.
  static constexpr std::string_view checkpoint_kind = "StepLR";
  template <class Visitor>
  void visit_checkpoint(Visitor& visit) {
    visit.constant("step_size", options_.step_size);
    visit.constant("gamma", options_.gamma);
    visit_progress(visit);
  }

 private:
  StepLROptions options_;
};

// lr * gamma^k when e appears k times among the milestones (PyTorch counts repeats).
struct MultiStepLROptions {
  std::vector<long long> milestones;
  double gamma = 0.1;
};

class MultiStepLR : public detail::LRSchedulerBase {
 public:
  template <class Optimizer>
  MultiStepLR(Optimizer& optimizer, MultiStepLROptions options)
      : LRSchedulerBase(optimizer), options_(std::move(options)) {
    check_finite("MultiStepLR", "gamma", options_.gamma);
    step();
  }

  void step() {
    const auto hits =
        std::count(options_.milestones.begin(), options_.milestones.end(), last_epoch_ + 1);
    advance([&](std::size_t, double lr) {
      return hits == 0 ? lr : lr * std::pow(options_.gamma, static_cast<double>(hits));
    });
  }

  const MultiStepLROptions& options() const { return options_; }

  // Checkpoints (io/checkpoint.hpp): the options must match, the progress is restored.
  static constexpr std::string_view checkpoint_kind = "MultiStepLR";
  template <class Visitor>
  void visit_checkpoint(Visitor& visit) {
    visit.count("the number of milestones", options_.milestones.size());
    for (const long long milestone : options_.milestones) visit.constant("a milestone", milestone);
    visit.constant("gamma", options_.gamma);
    visit_progress(visit);
  }

 private:
  MultiStepLROptions options_;
};

// lr * gamma on every step but the constructor's.
struct ExponentialLROptions {
  double gamma = std::numeric_limits<double>::quiet_NaN();  // required
};

class ExponentialLR : public detail::LRSchedulerBase {
 public:
  template <class Optimizer>
  ExponentialLR(Optimizer& optimizer, ExponentialLROptions options)
      : LRSchedulerBase(optimizer), options_(options) {
    check_finite("ExponentialLR", "gamma (required, no default)", options.gamma);
    step();
  }

  void step() {
    const bool first = last_epoch_ + 1 == 0;
    advance([&](std::size_t, double lr) { return first ? lr : lr * options_.gamma; });
  }

  const ExponentialLROptions& options() const { return options_; }

  // Checkpoints (io/checkpoint.hpp): the options must match, the progress is restored.
  static constexpr std::string_view checkpoint_kind = "ExponentialLR";
  template <class Visitor>
  void visit_checkpoint(Visitor& visit) {
    visit.constant("gamma", options_.gamma);
    visit_progress(visit);
  }

 private:
  ExponentialLROptions options_;
};

// Closed form eta_min + (base_lr - eta_min) * (1 + cos(pi e / t_max)) / 2, stepped as
//   lr' = eta_min + (lr - eta_min) * (1 + cos(pi e / t_max)) / (1 + cos(pi (e - 1) / t_max)),
// except where the denominator vanishes (e - 1 - t_max a multiple of 2 t_max), where
//   lr' = lr + (base_lr - eta_min) * (1 - cos(pi / t_max)) / 2.
// Past t_max the rate climbs back (PyTorch's SGDR-like continuation).
struct CosineAnnealingLROptions {
  long long t_max = 0;  // required
  double eta_min = 0;
};

class CosineAnnealingLR : public detail::LRSchedulerBase {
 public:
  template <class Optimizer>
  CosineAnnealingLR(Optimizer& optimizer, CosineAnnealingLROptions options)
      : LRSchedulerBase(optimizer), options_(options) {
    check_positive("CosineAnnealingLR", "t_max (required, no default)", options.t_max);
    check_finite("CosineAnnealingLR", "eta_min", options.eta_min);
    step();
  }

  void step() {
    const long long e = last_epoch_ + 1;
    const double t_max = static_cast<double>(options_.t_max), eta_min = options_.eta_min;
    constexpr double pi = std::numbers::pi;
    advance([&](std::size_t group, double lr) {
      if (e == 0) return lr;
      if ((e - 1 - options_.t_max) % (2 * options_.t_max) == 0)
        return lr + (base_lrs_[group] - eta_min) * (1 - std::cos(pi / t_max)) / 2;
      return (1 + std::cos(pi * static_cast<double>(e) / t_max)) /
                 (1 + std::cos(pi * static_cast<double>(e - 1) / t_max)) * (lr - eta_min) +
             eta_min;
    });
  }

  const CosineAnnealingLROptions& options() const { return options_; }

  // Checkpoints (io/checkpoint.hpp): the options must match, the progress is restored.
  static constexpr std::string_view checkpoint_kind = "CosineAnnealingLR";
  template <class Visitor>
  void visit_checkpoint(Visitor& visit) {
    visit.constant("t_max", options_.t_max);
    visit.constant("eta_min", options_.eta_min);
    visit_progress(visit);
  }

 private:
  CosineAnnealingLROptions options_;
};

// Closed form base_lr * (start + (end - start) * min(e, total_iters) / total_iters), stepped as
//   lr' = lr * start at e = 0, lr past total_iters, else
//   lr' = lr * (1 + (end - start) / (total_iters * start + (e - 1) * (end - start))).
struct LinearLROptions {
  double start_factor = 1.0 / 3;
  double end_factor = 1.0;
  long long total_iters = 5;
};

class LinearLR : public detail::LRSchedulerBase {
 public:
  template <class Optimizer>
  LinearLR(Optimizer& optimizer, LinearLROptions options)
      : LRSchedulerBase(optimizer), options_(options) {
    // PyTorch accepts start_factor 0 and then divides by zero at e = 1.
    detail::require(options.start_factor > 0.0 && options.start_factor <= 1.0,
                    "LinearLR: start_factor must be in (0, 1], got ", options.start_factor);
    detail::require(options.end_factor >= 0.0 && options.end_factor <= 1.0,
                    "LinearLR: end_factor must be in [0, 1], got ", options.end_factor);
    check_positive("LinearLR", "total_iters", options.total_iters);
    step();
  }

  void step() {
    const long long e = last_epoch_ + 1;
    const double start = options_.start_factor, end = options_.end_factor;
    advance([&](std::size_t, double lr) {
      if (e == 0) return lr * start;
      if (e > options_.total_iters) return lr;
      return lr * (1. + (end - start) / (static_cast<double>(options_.total_iters) * start +
                                         static_cast<double>(e - 1) * (end - start)));
    });
  }

  const LinearLROptions& options() const { return options_; }

  // Checkpoints (io/checkpoint.hpp): the options must match, the progress is restored.
  static constexpr std::string_view checkpoint_kind = "LinearLR";
  template <class Visitor>
  void visit_checkpoint(Visitor& visit) {
    visit.constant("start_factor", options_.start_factor);
    visit.constant("end_factor", options_.end_factor);
    visit.constant("total_iters", options_.total_iters);
    visit_progress(visit);
  }

 private:
  LinearLROptions options_;
};

enum class Anneal { cos, linear };

// One cycle (Smith & Topin 2018), stepped once per batch: total_steps, or epochs *
// steps_per_epoch when total_steps is 0, calls to step() after the constructor's at most.
// Two phases: max_lr / div_factor up to max_lr over pct_start of the steps, then down to
// max_lr / div_factor / final_div_factor (three_phase: up, back down to the initial rate
// over as many steps, then down to the minimum). The momentum (SGD's, RMSprop's) or beta1
// (Adam's, AdamW's) moves the opposite way between max_momentum and base_momentum. Every
// group follows the same sequence, as with PyTorch's single max_lr.
struct OneCycleLROptions {
  double max_lr = std::numeric_limits<double>::quiet_NaN();  // required
  long long total_steps = 0;
  long long epochs = 0;
  long long steps_per_epoch = 0;
  double pct_start = 0.3;
  Anneal anneal_strategy = Anneal::cos;
  bool cycle_momentum = true;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
  double div_factor = 25;
  double final_div_factor = 1e4;
  bool three_phase = false;
};

class OneCycleLR : public detail::LRSchedulerBase {
 public:
  template <class Optimizer>
  OneCycleLR(Optimizer& optimizer, OneCycleLROptions options)
      : LRSchedulerBase(optimizer), options_(options) {
    check_finite("OneCycleLR", "max_lr (required, no default)", options.max_lr);
    if (options.total_steps != 0) {
      check_positive("OneCycleLR", "total_steps", options.total_steps);
      total_steps_ = options.total_steps;
    } else {
      detail::require(options.epochs != 0 || options.steps_per_epoch != 0,
                      "OneCycleLR: set total_steps, or epochs and steps_per_epoch");
      check_positive("OneCycleLR", "epochs", options.epochs);
      check_positive("OneCycleLR", "steps_per_epoch", options.steps_per_epoch);
      total_steps_ = options.epochs * options.steps_per_epoch;
    }
    detail::require(options.pct_start >= 0.0 && options.pct_start <= 1.0,
                    "OneCycleLR: pct_start must be in [0, 1], got ", options.pct_start);
    detail::require(!options.cycle_momentum || optimizer_.has_momentum(),
                    "OneCycleLR: cycle_momentum needs an optimizer with momentum or beta1");
    const double total = static_cast<double>(total_steps_);
    if (options.three_phase)
      phases_ = {{options.pct_start * total - 1, Level::initial, Level::peak},
                 {2 * options.pct_start * total - 2, Level::peak, Level::initial},
                 {total - 1, Level::initial, Level::minimum}};
    else
      phases_ = {{options.pct_start * total - 1, Level::initial, Level::peak},
                 {total - 1, Level::peak, Level::minimum}};
    detail::require(options.div_factor > 0.0 && options.final_div_factor > 0.0,
                    "OneCycleLR: div_factor and final_div_factor must be positive, got ",
                    options.div_factor, " and ", options.final_div_factor);
    locate(0);  // throws before anything changes
    initial_lr_ = options.max_lr / options.div_factor;
    min_lr_ = initial_lr_ / options.final_div_factor;
    base_lrs_.assign(base_lrs_.size(), initial_lr_);
    if (options.cycle_momentum)
      for (std::size_t group = 0; group < optimizer_.group_count(); ++group)
        optimizer_.set_momentum(group, options.max_momentum);
    step();
  }

  void step() {
    const Position at = locate(last_epoch_ + 1);
    const double lr = anneal(rate(at.phase.start), rate(at.phase.end), at.pct);
    if (options_.cycle_momentum) {
      const double momentum =
          anneal(momentum_at(at.phase.start), momentum_at(at.phase.end), at.pct);
      for (std::size_t group = 0; group < optimizer_.group_count(); ++group)
        optimizer_.set_momentum(group, momentum);
    }
    advance([&](std::size_t, double) { return lr; });
  }

  const OneCycleLROptions& options() const { return options_; }

  // Checkpoints (io/checkpoint.hpp): the options must match, the progress is restored.
  static constexpr std::string_view checkpoint_kind = "OneCycleLR";
  template <class Visitor>
  void visit_checkpoint(Visitor& visit) {
    const OneCycleLROptions& o = options_;
    visit.constant("max_lr", o.max_lr);
    visit.constant("total_steps", total_steps_);
    visit.constant("pct_start", o.pct_start);
    visit.constant("anneal_strategy", static_cast<long long>(o.anneal_strategy));
    visit.constant("cycle_momentum", o.cycle_momentum);
    visit.constant("base_momentum", o.base_momentum);
    visit.constant("max_momentum", o.max_momentum);
    visit.constant("div_factor", o.div_factor);
    visit.constant("final_div_factor", o.final_div_factor);
    visit.constant("three_phase", o.three_phase);
    visit_progress(visit);
  }
  long long total_steps() const { return total_steps_; }

 private:
  enum class Level { initial, peak, minimum };
  struct Phase {
    double end_step;
    Level start, end;
  };

  struct Position {
    Phase phase;
    double pct;  // of the phase done
  };

  // The phase holding step_number, as PyTorch's get_lr finds it; throws, changing nothing,
  // past the last step or in an empty phase.
  Position locate(long long step_number) const {
    detail::require(step_number <= total_steps_, "OneCycleLR: tried to step ", step_number + 1,
                    " times, but total_steps is ", total_steps_);
    double start_step = 0;
    std::size_t phase = 0;
    for (; phase + 1 < phases_.size(); ++phase) {
      if (static_cast<double>(step_number) <= phases_[phase].end_step) break;
      start_step = phases_[phase].end_step;
    }
    const Phase& p = phases_[phase];
    detail::require(p.end_step != start_step, "OneCycleLR: phase ", phase + 1,
                    " is empty (pct_start ", options_.pct_start, " of ", total_steps_,
                    " steps), where PyTorch divides by zero");
    return {p, (static_cast<double>(step_number) - start_step) / (p.end_step - start_step)};
  }

  double rate(Level level) const {
    return level == Level::initial ? initial_lr_ : level == Level::peak ? options_.max_lr : min_lr_;
  }
  // The momentum is highest where the rate is lowest.
  double momentum_at(Level level) const {
    return level == Level::peak ? options_.base_momentum : options_.max_momentum;
  }
  double anneal(double start, double end, double pct) const {
    if (options_.anneal_strategy == Anneal::linear) return (end - start) * pct + start;
    const double cos_out = std::cos(std::numbers::pi * pct) + 1;
    return end + (start - end) / 2.0 * cos_out;
  }

  OneCycleLROptions options_;
  long long total_steps_ = 0;
  std::vector<Phase> phases_;
  double initial_lr_ = 0, min_lr_ = 0;
};

enum class PlateauMode { min, max };
enum class ThresholdMode { rel, abs };

// Multiplies every group's rate by factor (not below min_lr, and only by more than eps) once
// the metric has not improved for more than patience steps, then waits cooldown steps.
// "Improved" is, for mode min: metric < best * (1 - threshold) (rel) or best - threshold
// (abs); for mode max: metric > best * (1 + threshold) or best + threshold.
struct ReduceLROnPlateauOptions {
  PlateauMode mode = PlateauMode::min;
  double factor = 0.1;
  long long patience = 10;
  double threshold = 1e-4;
  ThresholdMode threshold_mode = ThresholdMode::rel;
  long long cooldown = 0;
  double min_lr = 0;
  double eps = 1e-8;
};

class ReduceLROnPlateau : public detail::LRSchedulerBase {
 public:
  template <class Optimizer>
  ReduceLROnPlateau(Optimizer& optimizer, ReduceLROnPlateauOptions options = {})
      : LRSchedulerBase(optimizer), options_(options) {
    detail::require(options.factor < 1.0 && options.factor >= 0.0,
                    "ReduceLROnPlateau: factor must be in [0, 1), got ", options.factor);
    detail::require(options.patience >= 0 && options.cooldown >= 0,
                    "ReduceLROnPlateau: patience and cooldown must be >= 0, got ", options.patience,
                    " and ", options.cooldown);
    last_epoch_ = 0;
    best_ = worst();
  }

  void step(double metric) {
    ++last_epoch_;
    if (improves(metric)) {
      best_ = metric;
      bad_epochs_ = 0;
    } else {
      ++bad_epochs_;
    }
    if (cooldown_counter_ > 0) {
      --cooldown_counter_;
      bad_epochs_ = 0;  // bad epochs in cooldown do not count
    }
    if (bad_epochs_ > options_.patience) {
      for (std::size_t group = 0; group < optimizer_.group_count(); ++group) {
        const double old_lr = optimizer_.lr(group);
        const double new_lr = std::max(old_lr * options_.factor, options_.min_lr);
        if (old_lr - new_lr > options_.eps) optimizer_.set_lr(group, new_lr);
      }
      cooldown_counter_ = options_.cooldown;
      bad_epochs_ = 0;
    }
    for (std::size_t group = 0; group < optimizer_.group_count(); ++group)
      last_lrs_[group] = optimizer_.lr(group);
  }

  const ReduceLROnPlateauOptions& options() const { return options_; }

  // Checkpoints (io/checkpoint.hpp): the options must match, the progress is restored.
  static constexpr std::string_view checkpoint_kind = "ReduceLROnPlateau";
  template <class Visitor>
  void visit_checkpoint(Visitor& visit) {
    const ReduceLROnPlateauOptions& o = options_;
    visit.constant("mode", static_cast<long long>(o.mode));
    visit.constant("factor", o.factor);
    visit.constant("patience", o.patience);
    visit.constant("threshold", o.threshold);
    visit.constant("threshold_mode", static_cast<long long>(o.threshold_mode));
    visit.constant("cooldown", o.cooldown);
    visit.constant("min_lr", o.min_lr);
    visit.constant("eps", o.eps);
    visit_progress(visit);
    visit.number("best", best_);
    visit.counter("num_bad_epochs", bad_epochs_);
    visit.counter("cooldown_counter", cooldown_counter_);
  }
  double best() const { return best_; }
  long long bad_epochs() const { return bad_epochs_; }
  long long cooldown_counter() const { return cooldown_counter_; }

 private:
  double worst() const {
    const double infinity = std::numeric_limits<double>::infinity();
    return options_.mode == PlateauMode::min ? infinity : -infinity;
  }
  bool improves(double metric) const {
    const double t = options_.threshold;
    const bool relative = options_.threshold_mode == ThresholdMode::rel;
    if (options_.mode == PlateauMode::min)
      return relative ? metric < best_ * (1. - t) : metric < best_ - t;
    return relative ? metric > best_ * (t + 1.) : metric > best_ + t;
  }

  ReduceLROnPlateauOptions options_;
  double best_ = 0;
  long long bad_epochs_ = 0;
  long long cooldown_counter_ = 0;
};

}  // namespace bnorm
