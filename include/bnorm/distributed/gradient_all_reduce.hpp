// Averages parameter gradients over the processes of a Communicator: the step that turns
// each process's backward into the gradient of the whole global batch.
//
//   GradientAllReduce<float> gradients(net.parameters(), world);   // once
//   ...
//   net.backward(loss.backward());
//   gradients.average();           // every gradient is now its mean over the processes
//   optimizer.step();              // the same step on every process
//
// GradientAllReduce copies every gradient into one preallocated buffer and makes a single
// MPI_Allreduce per step; all_reduce_gradients() instead makes one in-place MPI_Allreduce
// per parameter and needs no buffer. One call avoids a latency per parameter at the price of
// two copies. On a contended machine the number of rendezvous dominates and the one buffer
// was clearly faster (bench/RESULTS.md, "Data-parallel training (MPI)").
//
// Why this is exactly the gradient of the global batch. Process k of P holds n_k of the N
// examples of a global batch and computes its loss L_k as the mean over its own examples;
// the single-process loss is L = sum_k (n_k / N) L_k, which for equal shares is S / P with
// S = sum_k L_k. Backward runs from the loss down, and on each process the gradient it
// carries is dS/d(activation) for that process's examples:
//  - at the logits, since logit j enters only the loss of the process that holds example j;
//  - through a layer that treats each example alone (Dense, ReLU, ...), by the chain rule;
//  - through a BatchNorm, whose output for example j depends, through the batch mean and
//    variance, on every example of the global batch: its dx needs sum(dy) and
//    sum(dy * xhat) over all of them, which StatisticsSync::sum supplies.
// A parameter gradient computed on process k (Dense's dy x^T, BatchNorm's sum(dy * xhat))
// is then the part of dS/dparameter that comes from k's examples; summing the parts over
// processes gives dS/dparameter, and dividing by P gives dL/dparameter. So average() after a
// synchronized backward yields the gradient of the mean loss over the global batch, the one
// a single process computes from all N examples, and every process takes the same step.
// With unequal shares (a last, partial batch), first multiply each process's loss gradient
// by n_k * P / N: S becomes sum_k (n_k P / N) L_k = P L, and the average is dL/dparameter.
//
// MPI_Allreduce is meant to give every process the same sum (MPI "strongly recommends" it;
// Open MPI's algorithms either reduce each element once and distribute it, or reduce
// symmetrically, and IEEE addition is commutative). tests/distributed checks that the
// parameters of all processes stay identical bit for bit.
#pragma once

#include "../core/error.hpp"
#include "../core/parameter.hpp"
#include "../core/types.hpp"
#include "communicator.hpp"

#include <Eigen/Core>

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

namespace bnorm::distributed {

// One in-place MPI_Allreduce per parameter, then a division by the number of processes.
template <class T>
void all_reduce_gradients(std::vector<Parameter<T>>& parameters, const Communicator& communicator) {
  if (communicator.size() == 1) return;  // the mean over one process is its own gradient
  const T processes = static_cast<T>(communicator.size());
  for (auto& parameter : parameters) {
    communicator.all_reduce_sum(
        std::span<T>(parameter.grad().data(), static_cast<std::size_t>(parameter.size())));
    parameter.grad() /= processes;
  }
}

template <class T>
class GradientAllReduce {
 public:
  // The views come from net.parameters() and must stay valid (see core/parameter.hpp).
  GradientAllReduce(std::vector<Parameter<T>> parameters, Communicator communicator)
      : parameters_(std::move(parameters)), communicator_(std::move(communicator)) {
    bnorm::detail::require(!parameters_.empty(), "GradientAllReduce: the parameter list is empty");
    Index total = 0;
    for (const auto& parameter : parameters_) total += parameter.size();
    buffer_.resize(total);
  }

  // Replaces every gradient by its mean over the processes: one MPI_Allreduce, no allocation.
  void average() {
    if (communicator_.size() == 1) return;  // the mean over one process is its own gradient
    Index offset = 0;
    for (const auto& parameter : parameters_) {
      buffer_.segment(offset, parameter.size()) = parameter.grad().reshaped();
      offset += parameter.size();
    }
    communicator_.all_reduce_sum(
        std::span<T>(buffer_.data(), static_cast<std::size_t>(buffer_.size())));
    // Division, not multiplication by 1 / P, which would round twice.
    const T processes = static_cast<T>(communicator_.size());
    offset = 0;
    for (auto& parameter : parameters_) {
      parameter.grad().reshaped() = buffer_.segment(offset, parameter.size()) / processes;
      offset += parameter.size();
    }
  }

  const std::vector<Parameter<T>>& parameters() const { return parameters_; }
  const Communicator& communicator() const { return communicator_; }

 private:
  std::vector<Parameter<T>> parameters_;
  Communicator communicator_;
  Vector<T> buffer_;  // every gradient, one after another
};

}  // namespace bnorm::distributed
