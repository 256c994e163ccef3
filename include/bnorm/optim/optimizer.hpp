// The optimizer contract, written once, and the state every optimizer shares.
//
//   Optimizer(std::vector<Parameter<T>> parameters, Options options = {});
//     Takes the views returned by net.parameters(); makes every state slot (momentum
//     buffers, moment estimates) here, so step() allocates nothing.
//   void step();
//     Applies one update from the gradients now held by the parameters, with PyTorch's
//     exact update rule for the same options. Gradients are left as they are.
//   Options& options();
//     The hyperparameters, writable between steps (learning-rate schedules).
//
// The update rules are PyTorch 1.13's (torch/optim/*.py, single-tensor path).
// Hyperparameters are doubles, as PyTorch's Python floats: scalar coefficients such as
// 1 - beta are formed in double and rounded once to the parameter type, as PyTorch does,
// and `{.lr = 0.05}` compiles for float networks too.
#pragma once

#include "../core/error.hpp"
#include "../core/parameter.hpp"
#include "../core/types.hpp"

#include <algorithm>
#include <cmath>
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

 protected:
  OptimizerBase(std::vector<Parameter<T>> parameters, std::string_view owner)
      : parameters_(std::move(parameters)) {
    require(!parameters_.empty(), owner, ": the parameter list is empty");
  }

  // One zero-filled matrix per parameter, of its shape: a state slot.
  std::vector<Matrix<T>> make_slots() const {
    std::vector<Matrix<T>> slots;
    slots.reserve(parameters_.size());
    for (const auto& parameter : parameters_)
      slots.push_back(Matrix<T>::Zero(parameter.rows(), parameter.cols()));
    return slots;
  }

  // Calls update(value, grad, slot_index, first, count) for consecutive chunks of each
  // parameter's elements, as 1-D arrays. An update made of several statements then streams
  // the parameter through memory once: each chunk stays in L1 between its statements.
  template <class Update>
  void for_each_chunk(Update&& update) {
    require_live_parameters();
    constexpr Index chunk = 2048;
    using Array = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
    for (std::size_t i = 0; i < parameters_.size(); ++i) {
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
  long long step_count_ = 0;
};

}  // namespace bnorm::detail
