// Sigmoid: y = 1 / (1 + exp(-x)). Implements the layer contract of core/layer.hpp.
#pragma once

#include "../core/kernels.hpp"
#include "elementwise.hpp"

namespace bnorm {

template <class T>
class Sigmoid : public detail::Elementwise<Sigmoid<T>, T> {
 public:
  static constexpr bool keeps_input = false;
  std::string name() const { return "Sigmoid"; }

  // On the dispatched kernels of core/kernels.hpp: exp(-|x|) by a polynomial within about
  // 2.5 ulp of std::exp's sigmoid, so both tails saturate cleanly to 0 and 1 without
  // overflow; NaN stays NaN.
  void apply(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, Mode) const {
    if (x.outerStride() == x.rows()) {
      detail::kernels::sigmoid(x.data(), x.size(), y.data());
      return;
    }
    for (Index j = 0; j < x.cols(); ++j)
      detail::kernels::sigmoid(x.data() + j * x.outerStride(), x.rows(), y.data() + j * y.rows());
  }
  // dy/dx = y (1 - y).
  void apply_backward(const Eigen::Ref<const Matrix<T>>& dy, Matrix<T>& dx) {
    const Matrix<T>& y = this->output();
    if (dy.outerStride() == dy.rows()) {
      detail::kernels::sigmoid_backward(y.data(), dy.data(), dy.size(), dx.data());
      return;
    }
    for (Index j = 0; j < dy.cols(); ++j)
      detail::kernels::sigmoid_backward(y.data() + j * y.rows(), dy.data() + j * dy.outerStride(),
                                        dy.rows(), dx.data() + j * dx.rows());
  }
};

}  // namespace bnorm
