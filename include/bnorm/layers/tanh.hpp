// Tanh: y = tanh(x). Implements the layer contract of core/layer.hpp.
#pragma once

#include "elementwise.hpp"

namespace bnorm {

template <class T>
class Tanh : public detail::Elementwise<Tanh<T>, T> {
 public:
  static constexpr bool keeps_input = false;
  std::string name() const { return "Tanh"; }

  void apply(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, Mode) const {
    y.array() = x.array().tanh();
  }
  // dy/dx = 1 - y^2.
  void apply_backward(const Eigen::Ref<const Matrix<T>>& dy, Matrix<T>& dx) {
    dx.array() = dy.array() * (T(1) - this->output().array().square());
  }
};

}  // namespace bnorm
