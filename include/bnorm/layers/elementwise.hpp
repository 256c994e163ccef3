// Shared machinery of the element-wise layers (activations, Dropout): buffers, shape checks
// and the train-before-backward rule. Each layer supplies only its math:
//
//   void apply(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, Mode mode);
//   void apply_backward(const Eigen::Ref<const Matrix<T>>& dy, Matrix<T>& dx);  // may read output()
//
// and sets `keeps_input` when its derivative needs x rather than y.
#pragma once

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <string>

namespace bnorm::detail {

template <class Derived, class T>
class Elementwise {
 public:
  const Matrix<T>& forward(const Eigen::Ref<const Matrix<T>>& x, Mode mode) {
    check_shape(derived(), "input", -1, -1, x.rows(), x.cols());
    output_.resize(x.rows(), x.cols());
    derived().apply(x, output_, mode);
    has_training_forward_ = mode == Mode::train;
    if (Derived::keeps_input && has_training_forward_) input_ = x;
    return output_;
  }

  const Matrix<T>& backward(const Eigen::Ref<const Matrix<T>>& dy) {
    if (!has_training_forward_)
      fail(derived().name(), ": backward needs a preceding forward in Mode::train");
    check_shape(derived(), "output gradient", output_.rows(), output_.cols(), dy.rows(),
                dy.cols());
    input_grad_.resize(dy.rows(), dy.cols());
    derived().apply_backward(dy, input_grad_);
    return input_grad_;
  }

 protected:
  const Matrix<T>& output() const { return output_; }
  const Matrix<T>& input() const { return input_; }

 private:
  Derived& derived() { return static_cast<Derived&>(*this); }

  Matrix<T> input_, output_, input_grad_;
  bool has_training_forward_ = false;
};

}  // namespace bnorm::detail
