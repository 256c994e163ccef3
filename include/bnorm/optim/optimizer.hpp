// The optimizer contract, written once, and the state every optimizer shares.
//
//   Optimizer(std::vector<Parameter<T>> parameters, Options options = {});
//     Takes the views returned by net.parameters(); makes every state slot (momentum
//     buffers, moment estimates) here, so step() allocates nothing.
//   Optimizer(std::vector<ParameterGroup<T>> groups, Options options = {});
//     The same, with parameter groups (optim/parameter_group.hpp): each group's overrides
//     (lr, weight_decay) replace the options' values for its parameters. A parameter may
//     appear in one group only.
//   void step();
//     Applies one update from the gradients now held by the parameters, with PyTorch's
//     exact update rule for the same options. Gradients are left as they are.
//   Options& options();
//     The hyperparameters of group 0 (all parameters without groups), writable between steps.
//   double lr() const;  void set_lr(double);
//     Group 0's learning rate, PyTorch's param_groups[0]["lr"].
//   std::size_t group_count() const;  Options& group_options(std::size_t group);
//     Every group's hyperparameters, as PyTorch's param_groups (what schedulers write).
//
// The update rules are PyTorch 1.13's (torch/optim/*.py, single-tensor path).
// Hyperparameters are doubles, as PyTorch's Python floats: scalar coefficients such as
// 1 - beta are formed in double and rounded once to the parameter type, as PyTorch does,
// and `{.lr = 0.05}` compiles for float networks too.
#pragma once

#include "../core/error.hpp"
#include "../core/parameter.hpp"
#include "../core/types.hpp"
#include "parameter_group.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <string_view>
#include <utility>
#include <vector>

namespace bnorm::detail {

template <class T>
class OptimizerBase {
 public:
  const std::vector<Parameter<T>>& parameters() const { return parameters_; }
  // Steps taken so far (Adam's t).
  long long step_count() const { return step_count_; }
  std::size_t group_count() const { return group_ends_.size(); }

 protected:
  OptimizerBase(std::vector<Parameter<T>> parameters, std::string_view owner)
      : parameters_(std::move(parameters)), group_ends_{parameters_.size()} {
    require(!parameters_.empty(), owner, ": the parameter list is empty");
  }
  // Parameters of group g are parameters_[group_begin(g), group_ends_[g]).
  OptimizerBase(std::vector<ParameterGroup<T>>& groups, std::string_view owner) {
    require(!groups.empty(), owner, ": the list of parameter groups is empty");
    for (auto& group : groups) {
      for (auto& parameter : group.parameters) {
        for (const auto& seen : parameters_)
          require(seen.value().data() != parameter.value().data(), owner, ": parameter '",
                  parameter.name(), "' appears in more than one parameter group");
        parameters_.push_back(std::move(parameter));
      }
      group_ends_.push_back(parameters_.size());
    }
    require(!parameters_.empty(), owner, ": the parameter groups hold no parameter");
  }
  std::size_t group_begin(std::size_t group) const {
    return group == 0 ? 0 : group_ends_[group - 1];
  }

  // One zero-filled matrix per parameter, of its shape: a state slot.
  std::vector<Matrix<T>> make_slots() const {
    std::vector<Matrix<T>> slots;
    slots.reserve(parameters_.size());
    for (const auto& parameter : parameters_)
      slots.push_back(Matrix<T>::Zero(parameter.rows(), parameter.cols()));
    return slots;
  }

  // Calls update(value, grad, slot_index, first, count) for consecutive chunks of the
  // elements of each parameter of group `group`, as 1-D arrays. An update made of several
  // statements then streams the parameter through memory once: each chunk stays in L1
  // between its statements.
  template <class Update>
  void for_each_chunk(std::size_t group, Update&& update) {
    constexpr Index chunk = 2048;
    using Array = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
    for (std::size_t i = group_begin(group); i < group_ends_[group]; ++i) {
      auto& parameter = parameters_[i];
      if (!parameter.trainable()) continue;  // frozen: no update, as PyTorch's requires_grad
      for (Index first = 0; first < parameter.size(); first += chunk) {
        const Index count = std::min(chunk, parameter.size() - first);
        Array value(parameter.value().data() + first, count);
        Array grad(parameter.grad().data() + first, count);
        update(value, grad, i, first, count);
      }
    }
  }

  // A step on views of a destroyed network would write freed memory (core/parameter.hpp).
  // Called first by every step(), so a step on a dead network changes nothing.
  void require_live_parameters() const {
    for (const auto& parameter : parameters_)
      if (parameter.expired())
        fail("optimizer step: parameter '", parameter.name(), "' belongs to a network that was ",
             "destroyed or assigned to (e.g. net = bnorm::load<T>(file)) after this optimizer ",
             "was built; build the optimizer again on net.parameters(), or use bnorm::load_into");
  }

  // Slot `slot` of parameter i, elements [first, first + count), as a 1-D array.
  static auto chunk_of(Matrix<T>& slot, Index first, Index count) {
    return Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(slot.data() + first, count);
  }

  static void check_rate(std::string_view owner, std::string_view what, double value) {
    require(std::isfinite(value) && value >= 0.0, owner, ": ", what,
            " must be finite and >= 0, got ", value);
  }
  static void check_fraction(std::string_view owner, std::string_view what, double value) {
    require(value >= 0.0 && value < 1.0, owner, ": ", what, " must be in [0, 1), got ", value);
  }

  std::vector<Parameter<T>> parameters_;
  std::vector<std::size_t> group_ends_;
  long long step_count_ = 0;
};

// The options of every group, and the accessors of the contract. Options must have the
// double fields lr and weight_decay.
template <class T, class Options>
class GroupedOptimizer : public OptimizerBase<T> {
 public:
  Options& options() { return group_options_[0]; }
  const Options& options() const { return group_options_[0]; }
  Options& group_options(std::size_t group) { return group_options_.at(group); }
  const Options& group_options(std::size_t group) const { return group_options_.at(group); }

  double lr() const { return group_options_[0].lr; }
  void set_lr(double lr) {
    this->check_rate(owner_, "lr", lr);
    group_options_[0].lr = lr;
  }

 protected:
  GroupedOptimizer(std::vector<Parameter<T>> parameters, const Options& options,
                   std::string_view owner)
      : OptimizerBase<T>(std::move(parameters), owner), group_options_{options}, owner_(owner) {}
  GroupedOptimizer(std::vector<ParameterGroup<T>> groups, const Options& options,
                   std::string_view owner)
      : OptimizerBase<T>(groups, owner), owner_(owner) {
    for (const auto& group : groups) {
      Options resolved = options;
      if (group.lr) resolved.lr = *group.lr;
      if (group.weight_decay) resolved.weight_decay = *group.weight_decay;
      group_options_.push_back(resolved);
    }
  }

  // What every optimizer's checkpoint holds (io/checkpoint.hpp) before its state slots: the
  // group structure (checked), the step count and every group's options (restored).
  template <class Visitor>
  void visit_groups(Visitor& visit) {
    visit.count("the number of parameter groups", this->group_count());
    for (std::size_t group = 0; group < this->group_count(); ++group)
      visit.count("the number of parameters in a group",
                  this->group_ends_[group] - this->group_begin(group));
    visit.counter("the step count", this->step_count_);
    for (auto& options : group_options_) visit_options(visit, options);
  }
  template <class Visitor>
  static void visit_slots(Visitor& visit, std::string_view what, std::vector<Matrix<T>>& slots) {
    visit.count(what, slots.size());
    for (auto& slot : slots) visit.matrix(what, slot);
  }

  std::vector<Options> group_options_;
  std::string_view owner_;
};

}  // namespace bnorm::detail
