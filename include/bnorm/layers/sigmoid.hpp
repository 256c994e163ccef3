// Sigmoid: y = 1 / (1 + exp(-x)). Implements the layer contract of core/layer.hpp.
#pragma once

#include "elementwise.hpp"

namespace bnorm {

template <class T>
class Sigmoid : public detail::Elementwise<Sigmoid<T>, T> {
 public:
  static constexpr bool keeps_input = false;
  std::string name() const { return "Sigmoid"; }

  // Eigen's logistic() saturates cleanly to 0 and 1: no overflow for large |x|.
  void apply(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, Mode) const {
    y.array() = x.array().logistic();
  }
  // dy/dx = y (1 - y).
  void apply_backward(const Eigen::Ref<const Matrix<T>>& dy, Matrix<T>& dx) {
    const auto y = this->output().array();
    dx.array() = dy.array() * y * (T(1) - y);
  }
};

}  // namespace bnorm
