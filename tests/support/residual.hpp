// A layer type of a user's own, y = x + relu(bn(dense(x))): a composite that exposes its
// members as children() (core/layer_ref.hpp), for the tests of the open layer protocol.
#pragma once

#include <bnorm/bnorm.hpp>

#include <string>
#include <vector>

namespace bnorm_test {

using namespace bnorm;

template <class T>
class Residual {
 public:
  explicit Residual(Index features) : dense_(features, features, Bias::none), norm_(features) {}

  const Matrix<T>& forward(const Eigen::Ref<const Matrix<T>>& x, Mode mode) {
    const Matrix<T>& h = relu_.forward(norm_.forward(dense_.forward(x, mode), mode), mode);
    output_ = x + h;
    return output_;
  }
  const Matrix<T>& backward(const Eigen::Ref<const Matrix<T>>& dy) {
    const Matrix<T>& dx = dense_.backward(norm_.backward(relu_.backward(dy)));
    input_grad_ = dy + dx;
    return input_grad_;
  }
  std::vector<Child<T>> children() {
    return {{"dense", LayerRef<T>(dense_)}, {"norm", LayerRef<T>(norm_)}, {"relu", LayerRef<T>(relu_)}};
  }
  std::string name() const { return "Residual(" + std::to_string(features()) + ")"; }

  Index features() const { return dense_.in_features(); }
  Dense<T>& dense() { return dense_; }
  BatchNorm<T>& norm() { return norm_; }

 private:
  Dense<T> dense_;
  BatchNorm<T> norm_;
  ReLU<T> relu_;
  Matrix<T> output_, input_grad_;
};
static_assert(Layer<Residual<double>, double> && HasChildren<Residual<double>, double>);

}  // namespace bnorm_test
