// The loss contract, written once.
//
//   T forward(const Eigen::Ref<const Matrix<T>>& prediction, const Target& target);
//     prediction is features x batch (logits for classification). Returns the loss, the
//     mean over the batch as PyTorch's default reduction "mean". Throws bnorm::Error for
//     a target that does not fit the prediction (wrong length, class out of range).
//   const Matrix<T>& backward();
//     dLoss/dprediction for the last forward, shaped as the prediction; feed it to the
//     network's backward.
//
// Losses own their buffers and allocate nothing after the first call at a batch size.
#pragma once
