// Classification accuracy: the predicted class of an example is the row of its largest logit.
//
//   const auto& logits = net.forward(batch, bnorm::Mode::eval);   // classes x batch
//   correct += bnorm::count_correct(logits, labels);
#pragma once

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <Eigen/Core>

namespace bnorm {

// How many columns of `scores` (classes x batch) have their largest entry in the row of the
// label; ties go to the first row, as torch.argmax. Non-finite columns count as wrong.
template <class Derived>
Index count_correct(const Eigen::MatrixBase<Derived>& scores,
                    const Eigen::Ref<const Labels>& labels) {
  detail::require(labels.size() == scores.cols(), "count_correct: ", labels.size(), " labels for ",
                  detail::shape_string(scores.rows(), scores.cols()),
                  " scores (classes x batch); there must be one label per column");
  Index correct = 0;
  for (Index j = 0; j < scores.cols(); ++j) {
    // A column with a NaN or an infinity has no meaningful prediction: wrong, as in the
    // PyTorch reference experiments (maxCoeff would pick an arbitrary row).
    if (scores.rows() == 0 || !scores.col(j).allFinite()) continue;
    Index predicted = -1;
    scores.col(j).maxCoeff(&predicted);
    if (predicted == labels(j)) ++correct;
  }
  return correct;
}

// The fraction of columns classified correctly, in [0, 1]; 0 for an empty batch.
template <class Derived>
double accuracy(const Eigen::MatrixBase<Derived>& scores, const Eigen::Ref<const Labels>& labels) {
  const Index correct = count_correct(scores, labels);
  return scores.cols() == 0 ? 0.0
                            : static_cast<double>(correct) / static_cast<double>(scores.cols());
}

}  // namespace bnorm
