// Sigmoid: y = 1 / (1 + exp(-x)). Implements the layer contract of core/layer.hpp.
#pragma once

#include "../core/kernels.hpp"
#include "../core/onnx_node.hpp"
#include "elementwise.hpp"

#include <vector>

namespace bnorm {

template <class T>
class Sigmoid : public detail::Elementwise<Sigmoid<T>, T> {
 public:
  // Its kind (core/layer_ref.hpp): tools find a subclass as a Sigmoid.
  using layer_kind = Sigmoid;
  static constexpr bool keeps_input = false;
  std::string name() const { return "Sigmoid"; }
  std::vector<OnnxNode> onnx_nodes() const { return {{.op = "Sigmoid"}}; }  // core/onnx_node.hpp

  // On the dispatched kernels of core/kernels.hpp: exp(-|x|) by a polynomial within about
  // 2.5 ulp of std::exp's sigmoid, so both tails saturate cleanly to 0 and 1 without
  // overflow; NaN stays NaN.
  void apply(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, Mode) const {
    detail::for_each_contiguous_run<T>(x, [&](const T* in, Index at, Index n) {
      detail::kernels::sigmoid(in, n, y.data() + at);
    });
  }
  // dy/dx = y (1 - y).
  void apply_backward(const Eigen::Ref<const Matrix<T>>& dy, Matrix<T>& dx) {
    const Matrix<T>& y = this->output();
    detail::for_each_contiguous_run<T>(dy, [&](const T* gradient, Index at, Index n) {
      detail::kernels::sigmoid_backward(y.data() + at, gradient, n, dx.data() + at);
    });
  }
};

}  // namespace bnorm
