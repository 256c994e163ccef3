// Shared machinery of the element-wise layers (activations, Dropout): buffers, shape checks,
// the train-before-backward rule and the training settings of core/layer.hpp. Each layer
// supplies only its math:
//
//   void apply(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, Mode mode) [const];
//   void apply_backward(const Eigen::Ref<const Matrix<T>>& dy, Matrix<T>& dx);  // may read output()
//
// and sets `keeps_input` when its derivative needs x rather than y. apply may be called with
// y and x in the same storage (element-wise maps allow it). A const apply gives the layer
// the const infer of core/layer.hpp, through the same kernel as its eval forward.
//
// The layers' math runs on the dispatched kernels of core/kernels.hpp, which take contiguous
// arrays; for_each_contiguous_run hands them the one argument that may be strided.
#pragma once

#include "../core/error.hpp"
#include "../core/inference_scratch.hpp"
#include "../core/types.hpp"

#include <string>

namespace bnorm::detail {

// Calls run(data, offset, count) over `strided` (an input that may be a block of a larger
// matrix) in contiguous runs: once for the whole matrix when its columns are adjacent, else
// once per column. `offset` is where the run starts in a contiguous matrix of the same shape
// (the layer's own buffers), so a kernel reads `data` and writes buffer.data() + offset.
template <class T, class Run>
void for_each_contiguous_run(const Eigen::Ref<const Matrix<T>>& strided, Run&& run) {
  if (strided.outerStride() == strided.rows()) {
    run(strided.data(), Index(0), strided.size());
    return;
  }
  for (Index j = 0; j < strided.cols(); ++j)
    run(strided.data() + j * strided.outerStride(), j * strided.rows(), strided.rows());
}

template <class Derived, class T>
class Elementwise {
 public:
  const Matrix<T>& forward(const Eigen::Ref<const Matrix<T>>& x, Mode mode) {
    check_shape(derived(), "input", -1, -1, x.rows(), x.cols());
    const bool save = mode == Mode::train || keep_for_backward_;
    // An eval forward that saves nothing writes to a buffer of its own: ReLU, Sigmoid and
    // Tanh differentiate through y, which a validation batch between a training forward and
    // its backward must not overwrite.
    Matrix<T>& y = save ? output_ : eval_output_;
    if (Derived::keeps_input && save) input_ = x;  // before y is written: x may be y itself
    y.resize(x.rows(), x.cols());
    derived().apply(x, y, mode);
    if (save) {
      saved_mode_ = mode;
      has_saved_forward_ = true;
    }
    return y;
  }

  // A template, so that the constraint is checked where infer is called, with Derived
  // complete: clang 14 checks a non-template member's constraint on the incomplete Derived,
  // finds no apply, and so gives no layer an infer.
  template <class D = Derived>
  void infer(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, InferenceScratch<T>&) const
    requires requires(const D& layer) { layer.apply(x, y, Mode::eval); }
  {
    check_shape(derived(), "input", -1, -1, x.rows(), x.cols());
    y.resize(x.rows(), x.cols());
    derived().apply(x, y, Mode::eval);
  }

  const Matrix<T>& backward(const Eigen::Ref<const Matrix<T>>& dy) {
    if (!has_saved_forward_)
      fail(derived().name(), ": backward needs a preceding forward in Mode::train (or in "
                             "Mode::eval with set_keep_for_backward(true))");
    check_shape(derived(), "output gradient", output_.rows(), output_.cols(), dy.rows(),
                dy.cols());
    input_grad_.resize(dy.rows(), dy.cols());
    derived().apply_backward(dy, input_grad_);
    return input_grad_;
  }

  // The training settings of core/layer.hpp (no parameters, so nothing to accumulate).
  void set_accumulate_gradients(bool) {}
  void set_keep_for_backward(bool keep) { keep_for_backward_ = keep; }
  bool keeps_for_backward() const { return keep_for_backward_; }
  void zero_grad() {}

 protected:
  // What the forward that backward differentiates saw and produced, and its mode.
  const Matrix<T>& output() const { return output_; }
  const Matrix<T>& input() const { return input_; }
  Mode saved_mode() const { return saved_mode_; }

 private:
  Derived& derived() { return static_cast<Derived&>(*this); }
  const Derived& derived() const { return static_cast<const Derived&>(*this); }

  Matrix<T> input_, output_, eval_output_, input_grad_;
  Mode saved_mode_ = Mode::train;
  bool has_saved_forward_ = false, keep_for_backward_ = false;
};

}  // namespace bnorm::detail
