// ReLU: y = max(x, 0). Implements the layer contract of core/layer.hpp.
#pragma once

#include "../core/kernels.hpp"
#include "elementwise.hpp"

namespace bnorm {

template <class T>
class ReLU : public detail::Elementwise<ReLU<T>, T> {
 public:
  static constexpr bool keeps_input = false;
  std::string name() const { return "ReLU"; }

  // NaN stays NaN, as in PyTorch. On the dispatched kernels of core/kernels.hpp.
  void apply(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, Mode) const {
    if (x.outerStride() == x.rows()) {
      detail::kernels::relu(x.data(), x.size(), y.data());
      return;
    }
    for (Index j = 0; j < x.cols(); ++j)
      detail::kernels::relu(x.data() + j * x.outerStride(), x.rows(), y.data() + j * y.rows());
  }
  // dy/dx = 1 where y > 0, else 0 (0 at x = 0, as PyTorch).
  void apply_backward(const Eigen::Ref<const Matrix<T>>& dy, Matrix<T>& dx) {
    const Matrix<T>& y = this->output();
    if (dy.outerStride() == dy.rows()) {
      detail::kernels::relu_backward(y.data(), dy.data(), dy.size(), dx.data());
      return;
    }
    for (Index j = 0; j < dy.cols(); ++j)
      detail::kernels::relu_backward(y.data() + j * y.rows(), dy.data() + j * dy.outerStride(),
                                     dy.rows(), dx.data() + j * dx.rows());
  }
};

}  // namespace bnorm
