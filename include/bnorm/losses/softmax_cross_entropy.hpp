// Softmax followed by cross-entropy, as PyTorch's nn.CrossEntropyLoss (mean reduction).
// Implements the loss contract of losses/loss.hpp with Labels (one class per column).
#pragma once

#include "../core/error.hpp"
#include "../core/kernels.hpp"
#include "../core/types.hpp"
#include <string>

namespace bnorm {

template <class T>
class SoftmaxCrossEntropy {
 public:
  std::string name() const { return "SoftmaxCrossEntropy"; }

  // loss = mean over examples of logsumexp(z) - z[label]; the maximum is subtracted
  // before exponentiating, so large logits cannot overflow.
  T forward(const Eigen::Ref<const Matrix<T>>& logits,
            const Eigen::Ref<const Labels>& labels) {
    detail::check_shape(*this, "logits", -1, -1, logits.rows(), logits.cols());
    const Index classes = logits.rows(), batch = logits.cols();
    if (labels.size() != batch)
      detail::fail(name(), ": got ", labels.size(), " labels for a batch of ", batch,
                   " examples (logits ", detail::shape_string(classes, batch),
                   "); there must be one label per column");
    for (Index j = 0; j < batch; ++j)
      if (labels(j) < 0 || labels(j) >= classes)
        detail::fail(name(), ": label ", labels(j), " of example ", j,
                     " is out of range; classes are 0 to ", classes - 1);
    // The gradient (softmax - onehot) / batch is computed here, where softmax is at hand, by
    // the dispatched kernel of core/kernels.hpp.
    gradient_.resize(classes, batch);
    const T total = detail::kernels::softmax_cross_entropy(
        logits.data(), logits.outerStride(), classes, batch, labels.data(), gradient_.data());
    const T inv_batch = T(1) / static_cast<T>(batch);
    return total * inv_batch;
  }

  const Matrix<T>& backward() const {
    if (gradient_.size() == 0) detail::fail(name(), ": backward needs a preceding forward");
    return gradient_;
  }

 private:
  Matrix<T> gradient_;
};

}  // namespace bnorm
