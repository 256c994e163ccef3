// Dense (fully connected) layer: y = W x + b, or y = W x with Bias::none.
// Implements the layer contract of core/layer.hpp.
#pragma once

#include "../core/error.hpp"
#include "../core/gemm.hpp"
#include "../core/generator.hpp"
#include "../core/parameter.hpp"
#include "../core/types.hpp"
#include "init.hpp"

#include <sstream>
#include <string>
#include <vector>

namespace bnorm {

template <class T>
class Dense {
 public:
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
    output_.resize(out_features(), x.cols());
    forward_product_.assign(output_, weight_, x);
    if (has_bias()) output_.colwise() += bias_;
    has_training_forward_ = mode == Mode::train;
    if (has_training_forward_) input_ = x;  // backward needs x; the caller's x may not live on
    return output_;
  }

  const Matrix<T>& backward(const Eigen::Ref<const Matrix<T>>& dy) {
    if (!has_training_forward_) detail::fail(name(), ": backward needs a preceding forward in Mode::train");
    detail::check_shape(*this, "output gradient", out_features(), input_.cols(), dy.rows(),
                        dy.cols());
    weight_product_.assign(weight_grad_, dy, input_.transpose());
    if (has_bias()) bias_grad_.noalias() = dy.rowwise().sum();
    if (input_gradient_needed_) {
      input_grad_.resize(in_features(), dy.cols());
      input_product_.assign(input_grad_, weight_.transpose(), dy);
    } else {
      input_grad_.resize(0, 0);
    }
    return input_grad_;
  }

  std::vector<Parameter<T>> parameters() {
    std::vector<Parameter<T>> list;
    list.emplace_back("weight", weight_, weight_grad_);
    if (has_bias()) list.emplace_back("bias", bias_, bias_grad_);
    return list;
  }

  void set_input_gradient(bool needed) { input_gradient_needed_ = needed; }

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
  Matrix<T> weight_, weight_grad_;
  Vector<T> bias_, bias_grad_;
  Matrix<T> input_, output_, input_grad_;
  detail::Gemm<T> forward_product_, weight_product_, input_product_;  // workspaces
  bool has_training_forward_ = false;
  bool input_gradient_needed_ = true;
};

}  // namespace bnorm
