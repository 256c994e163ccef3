// A view of one piece of a layer's state that is not learned, as PyTorch's buffers:
// running statistics, counters, random streams. Saving, loading and checkpointing reach a
// layer's state through its parameters() and buffers() (core/layer.hpp), never through its
// concrete type.
#pragma once

#include "generator.hpp"
#include "types.hpp"

#include <Eigen/Core>
#include <string>
#include <utility>

namespace bnorm {

enum class BufferKind {
  values,     // scalars of the layer's type T (running_mean, running_var)
  counter,    // one signed 64-bit count (num_batches_tracked; PyTorch's int64 scalar)
  generator,  // a random stream (Dropout's masks); not part of PyTorch's state_dict
};

// Views, not owners, with the lifetime rules of Parameter (core/parameter.hpp). A values
// buffer keeps its shape: write through values(), never resize it.
template <class T>
class Buffer {
 public:
  using Map = Eigen::Map<Matrix<T>>;

  Buffer(std::string name, T* values, Index rows, Index cols)
      : name_(std::move(name)), kind_(BufferKind::values), values_(values, rows, cols) {}
  template <class Derived>
  Buffer(std::string name, Eigen::PlainObjectBase<Derived>& values)
      : Buffer(std::move(name), values.data(), values.rows(), values.cols()) {
    dimensions_ = Derived::ColsAtCompileTime == 1 ? 1 : 2;
  }
  Buffer(std::string name, long long& counter)
      : name_(std::move(name)), kind_(BufferKind::counter), values_(nullptr, 0, 0),
        counter_(&counter) {}
  Buffer(std::string name, Generator& generator)
      : name_(std::move(name)), kind_(BufferKind::generator), values_(nullptr, 0, 0),
        generator_(&generator) {}

  BufferKind kind() const { return kind_; }
  // PyTorch's state_dict holds values and counters, not random streams.
  bool in_state_dict() const { return kind_ != BufferKind::generator; }

  // Requires kind() == values. dimensions(): PyTorch's tensor rank, 1 for a layer's Vector
  // (running_mean), 2 for a Matrix.
  int dimensions() const { return dimensions_; }
  Map& values() { return values_; }
  const Map& values() const { return values_; }
  // Requires kind() == counter.
  long long& counter() { return *counter_; }
  long long counter() const { return *counter_; }
  // Requires kind() == generator.
  Generator& generator() { return *generator_; }
  const Generator& generator() const { return *generator_; }

  // PyTorch's state_dict key: "running_mean" for a layer, "1.running_mean" inside a Sequential.
  const std::string& name() const { return name_; }
  void prefix_name(const std::string& prefix) { name_ = prefix + "." + name_; }

 private:
  std::string name_;
  BufferKind kind_;
  Map values_;
  long long* counter_ = nullptr;
  Generator* generator_ = nullptr;
  int dimensions_ = 2;
};

}  // namespace bnorm
