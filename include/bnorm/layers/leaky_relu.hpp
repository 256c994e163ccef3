// LeakyReLU: y = x for x > 0, slope * x otherwise. Implements the layer contract of
// core/layer.hpp.
#pragma once

#include "../core/kernels.hpp"
#include "../core/onnx_node.hpp"
#include "elementwise.hpp"

#include <sstream>
#include <vector>

namespace bnorm {

template <class T>
class LeakyReLU : public detail::Elementwise<LeakyReLU<T>, T> {
 public:
  // Its kind (core/layer_ref.hpp): tools find a subclass as a LeakyReLU.
  using layer_kind = LeakyReLU;
  // The derivative tests x > 0; a negative slope flips the sign of y, so keep x.
  static constexpr bool keeps_input = true;

  explicit LeakyReLU(T slope = T(0.01)) : slope_(slope) {
    detail::check_finite_option("LeakyReLU", "slope", slope);
  }

  std::string name() const {
    std::ostringstream text;
    text << "LeakyReLU(" << slope_ << ")";
    return text.str();
  }
  T slope() const { return slope_; }
  // ONNX (core/onnx_node.hpp): LeakyRelu with alpha = slope.
  std::vector<OnnxNode> onnx_nodes() const {
    return {{.op = "LeakyRelu", .attributes = {{"alpha", OnnxAttribute::Type::real, double(slope_)}}}};
  }

  // On the dispatched kernels of core/kernels.hpp.
  void apply(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, Mode) const {
    detail::for_each_contiguous_run<T>(x, [&](const T* in, Index at, Index n) {
      detail::kernels::leaky_relu(in, n, slope_, y.data() + at);
    });
  }
  void apply_backward(const Eigen::Ref<const Matrix<T>>& dy, Matrix<T>& dx) {
    const Matrix<T>& x = this->input();
    detail::for_each_contiguous_run<T>(dy, [&](const T* gradient, Index at, Index n) {
      detail::kernels::leaky_relu_backward(x.data() + at, gradient, n, slope_, dx.data() + at);
    });
  }

 private:
  T slope_;
};

}  // namespace bnorm
