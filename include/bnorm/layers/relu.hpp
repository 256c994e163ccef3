// ReLU: y = max(x, 0). Implements the layer contract of core/layer.hpp.
#pragma once

#include "elementwise.hpp"

namespace bnorm {

template <class T>
class ReLU : public detail::Elementwise<ReLU<T>, T> {
 public:
  static constexpr bool keeps_input = false;
  std::string name() const { return "ReLU"; }

  void apply(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, Mode) const {
    y.array() = x.array().max(T(0));
  }
  // dy/dx = 1 where y > 0, else 0 (0 at x = 0, as PyTorch).
  void apply_backward(const Eigen::Ref<const Matrix<T>>& dy, Matrix<T>& dx) {
    dx.array() = (this->output().array() > T(0)).select(dy.array(), T(0));
  }
};

}  // namespace bnorm
