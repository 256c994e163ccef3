// Dense (fully connected) layer: y = W x + b, or y = W x with Bias::none.
// Implements the layer contract of core/layer.hpp.
#pragma once

#include "../core/error.hpp"
#include "../core/gemm.hpp"
#include "../core/kernels.hpp"
#include "../core/generator.hpp"
#include "../core/inference_scratch.hpp"
#include "../core/onnx_node.hpp"
#include "../core/parameter.hpp"
#include "../core/types.hpp"
#include "init.hpp"

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace bnorm {

template <class T>
class Dense {
 public:
  // Its kind (core/layer_ref.hpp): tools find a subclass as a Dense.
  using layer_kind = Dense;
  // Initialized as PyTorch's nn.Linear, from bnorm::default_generator().
  Dense(Index in_features, Index out_features, Bias bias = Bias::learned)
      : Dense(in_features, out_features, bias, Init::pytorch_default(), default_generator()) {}

  Dense(Index in_features, Index out_features, Bias bias, Init init)
      : Dense(in_features, out_features, bias, init, default_generator()) {}

  Dense(Index in_features, Index out_features, Bias bias, Init init, Generator& generator) {
    detail::check_positive_size("Dense", "in_features", in_features);
    detail::check_positive_size("Dense", "out_features", out_features);
    const Index bias_size = bias == Bias::learned ? out_features : 0;
    weight_.resize(out_features, in_features);
    weight_grad_ = Matrix<T>::Zero(out_features, in_features);
    bias_.resize(bias_size);
    bias_grad_ = Vector<T>::Zero(bias_size);
    initialize(init, generator);
  }

  void initialize(Init init, Generator& generator) { init.apply(weight_, bias_, generator); }

  const Matrix<T>& forward(const Eigen::Ref<const Matrix<T>>& x, Mode mode) {
    detail::check_shape(*this, "input", in_features(), -1, x.rows(), x.cols());
    // d.forward(d.forward(x)) hands the product its own destination: compute into the spare
    // buffer then, and swap (pointers only), so the usual call costs neither a copy nor a pass.
    const bool aliased = overlaps(x, output_);
    Matrix<T>& y = aliased ? spare_output_ : output_;
    apply(x, y, forward_product_);
    if (mode == Mode::train || keep_for_backward_) {
      input_ = x;  // backward needs x; the caller's x may not live on
      has_saved_forward_ = true;
    }
    if (aliased) output_.swap(spare_output_);
    return output_;
  }

  // The const inference path of core/layer.hpp: the eval forward's kernel, on the
  // caller's Gemm and output.
  void infer(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y,
             InferenceScratch<T>& scratch) const {
    detail::check_shape(*this, "input", in_features(), -1, x.rows(), x.cols());
    apply(x, y, scratch.gemm());
  }

  // dW = dy x^T and db = sum of dy's columns (skipped for frozen parameters, added to the
  // gradients with accumulation on), dx = W^T dy.
  const Matrix<T>& backward(const Eigen::Ref<const Matrix<T>>& dy) {
    if (!has_saved_forward_)
      detail::fail(name(), ": backward needs a preceding forward in Mode::train (or in "
                           "Mode::eval with set_keep_for_backward(true))");
    detail::check_shape(*this, "output gradient", out_features(), input_.cols(), dy.rows(),
                        dy.cols());
    if (weight_trainable_)
      weight_product_.assign(weight_grad_, dy, input_.transpose(), accumulate_gradients_);
    if (has_bias() && bias_trainable_)  // summed column by column, in order
      detail::kernels::row_sums<T>(dy.data(), dy.outerStride(), dy.rows(), dy.cols(),
                                   bias_grad_.data(), accumulate_gradients_);
    if (!input_gradient_needed_) {
      input_grad_.resize(0, 0);
      return input_grad_;
    }
    const bool aliased = overlaps(dy, input_grad_);  // d.backward(d.backward(dy)), as forward
    Matrix<T>& dx = aliased ? spare_input_grad_ : input_grad_;
    dx.resize(in_features(), dy.cols());
    input_product_.assign(dx, weight_.transpose(), dy);
    if (aliased) input_grad_.swap(spare_input_grad_);
    return input_grad_;
  }

  std::vector<Parameter<T>> parameters() {
    std::vector<Parameter<T>> list;
    list.emplace_back("weight", weight_, weight_grad_, &weight_trainable_);
    if (has_bias()) list.emplace_back("bias", bias_, bias_grad_, &bias_trainable_);
    return list;
  }

  // ONNX (core/onnx_node.hpp): Gemm(transB = 1), weight [out, in] and bias [out] (none
  // without bias).
  std::vector<OnnxNode> onnx_nodes() const {
    const Matrix<T> row_major = weight_.transpose();  // [out, in] row-major: W^T column-major
    OnnxNode gemm{.op = "Gemm",
                  .inputs = {{".weight", {out_features(), in_features()},
                              {row_major.data(), row_major.data() + row_major.size()}}},
                  .attributes = {{"transB", OnnxAttribute::Type::integer, 1}},
                  .in_features = in_features(),
                  .out_features = out_features()};
    if (has_bias()) gemm.inputs.push_back({".bias", {out_features()}, {bias_.data(), bias_.data() + bias_.size()}});
    return {gemm};
  }

  void set_input_gradient(bool needed) { input_gradient_needed_ = needed; }

  // The training settings of core/layer.hpp.
  void set_accumulate_gradients(bool accumulate) { accumulate_gradients_ = accumulate; }
  bool accumulates_gradients() const { return accumulate_gradients_; }
  void set_keep_for_backward(bool keep) { keep_for_backward_ = keep; }
  bool keeps_for_backward() const { return keep_for_backward_; }
  void zero_grad() {
    weight_grad_.setZero();
    bias_grad_.setZero();
  }

  std::string name() const {
    std::ostringstream text;
    text << "Dense(" << in_features() << " -> " << out_features()
         << (has_bias() ? ")" : ", no bias)");
    return text.str();
  }

  Index in_features() const { return weight_.cols(); }
  Index out_features() const { return weight_.rows(); }
  bool has_bias() const { return bias_.size() > 0; }

  // out x in. Assign values freely; keep the shape (parameter views point into it).
  Matrix<T>& weight() { return weight_; }
  const Matrix<T>& weight() const { return weight_; }
  // out x 1, or empty with Bias::none.
  Vector<T>& bias() { return bias_; }
  const Vector<T>& bias() const { return bias_; }
  const Matrix<T>& weight_grad() const { return weight_grad_; }
  Matrix<T>& weight_grad() { return weight_grad_; }
  const Vector<T>& bias_grad() const { return bias_grad_; }
  Vector<T>& bias_grad() { return bias_grad_; }

 private:
  // Whether matrix a's storage overlaps buffer b's (compared as integers: pointers into
  // different arrays have no order).
  static bool overlaps(const Eigen::Ref<const Matrix<T>>& a, const Matrix<T>& b) {
    if (a.size() == 0 || b.size() == 0) return false;
    const auto a_first = reinterpret_cast<std::uintptr_t>(a.data());
    const auto a_end = reinterpret_cast<std::uintptr_t>(
        a.data() + a.outerStride() * (a.cols() - 1) + a.rows());
    const auto b_first = reinterpret_cast<std::uintptr_t>(b.data());
    const auto b_end = reinterpret_cast<std::uintptr_t>(b.data() + b.size());
    return a_first < b_end && b_first < a_end;
  }

  // y = W x + b; y must not alias x. One example (inference on a single input) is a
  // matrix-vector product, which Gemm leaves to Eigen (SSE2 in a default build): the
  // dispatched kernel of core/kernels.hpp instead, with the bias added on the way.
  void apply(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, detail::Gemm<T>& product) const {
    y.resize(out_features(), x.cols());
    if (x.cols() == 1) {
      detail::kernels::matrix_vector(weight_.data(), weight_.rows(), out_features(),
                                     in_features(), x.data(), has_bias() ? bias_.data() : nullptr,
                                     y.data());
      return;
    }
    product.assign(y, weight_, x);
    if (has_bias())  // the dispatched kernel of core/kernels.hpp, not Eigen's SSE2 loop
      detail::kernels::add_to_columns(y.data(), y.rows(), y.rows(), y.cols(), bias_.data());
  }

  Matrix<T> weight_, weight_grad_;
  Vector<T> bias_, bias_grad_;
  Matrix<T> input_, output_, input_grad_;
  Matrix<T> spare_output_, spare_input_grad_;  // used only when the argument aliases the result
  detail::Gemm<T> forward_product_, weight_product_, input_product_;  // workspaces
  bool has_saved_forward_ = false;  // by a training forward, or an eval one kept for backward
  bool input_gradient_needed_ = true, accumulate_gradients_ = false, keep_for_backward_ = false;
  bool weight_trainable_ = true, bias_trainable_ = true;
};

}  // namespace bnorm
