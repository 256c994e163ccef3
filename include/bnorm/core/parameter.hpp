// A view of one learnable parameter and its gradient, as the optimizers see it.
#pragma once

#include "error.hpp"
#include "types.hpp"

#include <Eigen/Core>
#include <memory>
#include <string>
#include <utility>

namespace bnorm {

// Views, not owners: `value()` and `grad()` write straight into the layer's storage.
// Vectors (biases, gamma, beta) appear as n x 1 matrices. A view stays valid while its
// layer lives at the same address and its storage is not replaced; layers never resize
// their parameters, so only destroying the layer or assigning to it invalidates it (the
// Sequential keeps layers on the heap, so moving a Sequential does not). A view from a
// Sequential knows whether its layer still lives and still holds the storage the view
// points to: an optimizer step on views of a network that was destroyed or assigned to, or
// of a layer inside it that was assigned to (`net.layer<Dense<float>>(0) = ...`), throws
// bnorm::Error instead of writing freed memory. Views of a lone layer are the caller's to
// keep valid: such a layer has no owner that outlives it to ask, and a lifetime token in
// every layer would be one more thing the layer contract asks of user types.
template <class T>
class Parameter {
 public:
  using Map = Eigen::Map<Matrix<T>>;

  // `trainable` points to the layer's own flag (nullptr: always trainable, not freezable).
  Parameter(std::string name, T* value, T* grad, Index rows, Index cols,
            bool* trainable = nullptr)
      : name_(std::move(name)), value_(value, rows, cols), grad_(grad, rows, cols),
        trainable_(trainable) {}

  template <class Value, class Grad>
  Parameter(std::string name, Eigen::PlainObjectBase<Value>& value,
            Eigen::PlainObjectBase<Grad>& grad, bool* trainable = nullptr)
      : Parameter(std::move(name), value.data(), grad.data(), value.rows(), value.cols(),
                  trainable) {
    dimensions_ = Value::ColsAtCompileTime == 1 ? 1 : 2;
    storage_ = &value;
    storage_data_ = [](const void* storage) -> const T* {
      return static_cast<const Value*>(storage)->data();
    };
  }

  Map& value() { return value_; }
  const Map& value() const { return value_; }
  Map& grad() { return grad_; }
  const Map& grad() const { return grad_; }

  Index rows() const { return value_.rows(); }
  Index cols() const { return value_.cols(); }
  Index size() const { return value_.size(); }
  // PyTorch's tensor rank: 1 for a layer's Vector (a bias, gamma), 2 for a Matrix (a weight,
  // even one with a single column).
  int dimensions() const { return dimensions_; }

  // PyTorch's state_dict key: "weight" or "bias" for a layer, "3.weight" inside a Sequential.
  const std::string& name() const { return name_; }
  void prefix_name(const std::string& prefix) { name_ = prefix + "." + name_; }

  // Freezing (PyTorch's requires_grad): the flag lives in the layer, so every view of the
  // parameter sees it. A frozen parameter is skipped by the optimizers, and its layer does
  // not compute its gradient (grad() keeps what it held). Built-in layers are freezable; a
  // view made without a flag is always trainable and set_trainable(false) throws.
  bool trainable() const { return trainable_ == nullptr || *trainable_; }
  void set_trainable(bool trainable) {
    if (trainable_) *trainable_ = trainable;
    else if (!trainable) detail::fail("Parameter ", name_, ": its layer does not support freezing");
  }

  // Liveness: `owner` expires when the layer goes away. The first owner set is kept (the
  // innermost Sequential's). A view without an owner (of a lone layer) is never expired. A
  // view made from the layer's matrix also expires when that matrix no longer holds the
  // view's data (the layer was assigned to: Eigen's move takes the other's buffer).
  void set_owner(const std::shared_ptr<const void>& owner) {
    if (!owned_) owner_ = owner, owned_ = true;
  }
  bool expired() const {
    if (!owned_) return false;
    if (owner_.expired()) return true;  // storage_ is gone with the layer: not read
    return storage_ != nullptr && storage_data_(storage_) != value_.data();
  }

 private:
  std::string name_;
  Map value_;
  Map grad_;
  bool* trainable_;
  int dimensions_ = 2;
  std::weak_ptr<const void> owner_;
  bool owned_ = false;
  const void* storage_ = nullptr;  // the layer's matrix, when the view was made from one
  const T* (*storage_data_)(const void*) = nullptr;
};

}  // namespace bnorm
