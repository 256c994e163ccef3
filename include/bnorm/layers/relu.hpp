// ReLU: y = max(x, 0). Implements the layer contract of core/layer.hpp.
#pragma once

#include "../core/kernels.hpp"
#include "../core/onnx_node.hpp"
#include "elementwise.hpp"

#include <vector>

namespace bnorm {

template <class T>
class ReLU : public detail::Elementwise<ReLU<T>, T> {
 public:
  // Its kind (core/layer_ref.hpp): tools find a subclass as a ReLU.
  using layer_kind = ReLU;
  static constexpr bool keeps_input = false;
  std::string name() const { return "ReLU"; }
  std::vector<OnnxNode> onnx_nodes() const { return {{.op = "Relu"}}; }  // core/onnx_node.hpp

  // NaN stays NaN, as in PyTorch. On the dispatched kernels of core/kernels.hpp.
  void apply(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, Mode) const {
    detail::for_each_contiguous_run<T>(x, [&](const T* in, Index at, Index n) {
      detail::kernels::relu(in, n, y.data() + at);
    });
  }
  // dy/dx = 1 where y > 0, else 0 (0 at x = 0, as PyTorch).
  void apply_backward(const Eigen::Ref<const Matrix<T>>& dy, Matrix<T>& dx) {
    const Matrix<T>& y = this->output();
    detail::for_each_contiguous_run<T>(dy, [&](const T* gradient, Index at, Index n) {
      detail::kernels::relu_backward(y.data() + at, gradient, n, dx.data() + at);
    });
  }
};

}  // namespace bnorm
