// Tanh: y = tanh(x). Implements the layer contract of core/layer.hpp.
#pragma once

#include "../core/kernels.hpp"
#include "../core/onnx_node.hpp"
#include "elementwise.hpp"

#include <vector>

namespace bnorm {

template <class T>
class Tanh : public detail::Elementwise<Tanh<T>, T> {
 public:
  // Its kind (core/layer_ref.hpp): tools find a subclass as a Tanh.
  using layer_kind = Tanh;
  static constexpr bool keeps_input = false;
  std::string name() const { return "Tanh"; }
  std::vector<OnnxNode> onnx_nodes() const { return {{.op = "Tanh"}}; }  // core/onnx_node.hpp

  // On the dispatched kernels of core/kernels.hpp: within 2 ulp of the exact tanh in float
  // and double (tests/test_kernels.cpp measures it), +-1 without overflow for large |x|;
  // NaN stays NaN and -0 stays -0.
  void apply(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, Mode) const {
    detail::for_each_contiguous_run<T>(x, [&](const T* in, Index at, Index n) {
      detail::kernels::tanh(in, n, y.data() + at);
    });
  }
  // dy/dx = 1 - y^2.
  void apply_backward(const Eigen::Ref<const Matrix<T>>& dy, Matrix<T>& dx) {
    const Matrix<T>& y = this->output();
    detail::for_each_contiguous_run<T>(dy, [&](const T* gradient, Index at, Index n) {
      detail::kernels::tanh_backward(y.data() + at, gradient, n, dx.data() + at);
    });
  }
};

}  // namespace bnorm
