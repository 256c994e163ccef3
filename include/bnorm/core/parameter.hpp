// A view of one learnable parameter and its gradient, as the optimizers see it.
#pragma once

#include "types.hpp"

#include <Eigen/Core>
#include <string>
#include <utility>

namespace bnorm {

// Views, not owners: `value()` and `grad()` write straight into the layer's storage.
// Vectors (biases, gamma, beta) appear as n x 1 matrices. A view stays valid while its
// layer lives at the same address and its parameters keep their shape; layers never
// resize their parameters, so only moving the owning network invalidates it (the
// Sequential keeps layers on the heap, so moving a Sequential does not).
template <class T>
class Parameter {
 public:
  using Map = Eigen::Map<Matrix<T>>;

  Parameter(std::string name, T* value, T* grad, Index rows, Index cols)
      : name_(std::move(name)), value_(value, rows, cols), grad_(grad, rows, cols) {}

  template <class Value, class Grad>
  Parameter(std::string name, Eigen::PlainObjectBase<Value>& value,
            Eigen::PlainObjectBase<Grad>& grad)
      : Parameter(std::move(name), value.data(), grad.data(), value.rows(), value.cols()) {}

  Map& value() { return value_; }
  const Map& value() const { return value_; }
  Map& grad() { return grad_; }
  const Map& grad() const { return grad_; }

  Index rows() const { return value_.rows(); }
  Index cols() const { return value_.cols(); }
  Index size() const { return value_.size(); }

  // PyTorch's state_dict key: "weight" or "bias" for a layer, "3.weight" inside a Sequential.
  const std::string& name() const { return name_; }
  void prefix_name(const std::string& prefix) { name_ = prefix + "." + name_; }

 private:
  std::string name_;
  Map value_;
  Map grad_;
};

}  // namespace bnorm
