// LeakyReLU: y = x for x > 0, slope * x otherwise. Implements the layer contract of
// core/layer.hpp.
#pragma once

#include "elementwise.hpp"

#include <sstream>

namespace bnorm {

template <class T>
class LeakyReLU : public detail::Elementwise<LeakyReLU<T>, T> {
 public:
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

  void apply(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, Mode) const {
    y.array() = (x.array() > T(0)).select(x.array(), slope_ * x.array());
  }
  void apply_backward(const Eigen::Ref<const Matrix<T>>& dy, Matrix<T>& dx) {
    dx.array() = (this->input().array() > T(0)).select(dy.array(), slope_ * dy.array());
  }

 private:
  T slope_;
};

}  // namespace bnorm
