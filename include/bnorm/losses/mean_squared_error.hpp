// Mean squared error, as PyTorch's nn.MSELoss (mean over every element, not per example).
// Implements the loss contract of losses/loss.hpp with a target matrix.
#pragma once

#include "../core/error.hpp"
#include "../core/kernels.hpp"
#include "../core/types.hpp"

#include <string>

namespace bnorm {

template <class T>
class MeanSquaredError {
 public:
  std::string name() const { return "MeanSquaredError"; }

  // loss = sum((prediction - target)^2) / (features * batch); gradient 2 (p - t) / count,
  // both in one pass (the dispatched kernel of core/kernels.hpp).
  T forward(const Eigen::Ref<const Matrix<T>>& prediction,
            const Eigen::Ref<const Matrix<T>>& target) {
    detail::check_shape(*this, "prediction", -1, -1, prediction.rows(), prediction.cols());
    detail::check_shape(*this, "target", prediction.rows(), prediction.cols(), target.rows(),
                        target.cols());
    gradient_.resize(prediction.rows(), prediction.cols());
    const T inv_count = T(1) / static_cast<T>(prediction.size());
    return detail::kernels::squared_error(prediction.data(), prediction.outerStride(),
                                          target.data(), target.outerStride(), prediction.rows(),
                                          prediction.cols(), T(2) * inv_count, gradient_.data()) *
           inv_count;
  }

  const Matrix<T>& backward() const {
    if (gradient_.size() == 0) detail::fail(name(), ": backward needs a preceding forward");
    return gradient_;
  }

 private:
  Matrix<T> gradient_;
};

}  // namespace bnorm
