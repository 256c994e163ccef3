// Identity: y = x. A placeholder where an activation is optional. Implements the layer
// contract of core/layer.hpp.
#pragma once

#include "../core/onnx_node.hpp"
#include "elementwise.hpp"

#include <vector>

namespace bnorm {

template <class T>
class Identity : public detail::Elementwise<Identity<T>, T> {
 public:
  // Its kind (core/layer_ref.hpp): tools find a subclass as an Identity.
  using layer_kind = Identity;
  static constexpr bool keeps_input = false;
  std::string name() const { return "Identity"; }
  std::vector<OnnxNode> onnx_nodes() const { return {{.op = "Identity"}}; }  // core/onnx_node.hpp

  void apply(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, Mode) const { y = x; }
  void apply_backward(const Eigen::Ref<const Matrix<T>>& dy, Matrix<T>& dx) { dx = dy; }
};

}  // namespace bnorm
