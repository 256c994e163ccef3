// Accuracy of a trained classifier on a data set.
//
//   eval_accuracy: BatchNorm with its running statistics (Mode::eval), the usual test
//     accuracy, computed in large chunks.
//   batch_statistics_accuracy: BatchNorm normalizing each test batch with the batch's own
//     statistics (Mode::train), on a copy of the network, so the running statistics of `net`
//     stay as they are. Separates a lag of the running averages from a badly trained network.
//
// A column whose logits are not all finite counts as wrong, as in the reference scripts.
#pragma once

#include <bnorm/bnorm.hpp>

#include <algorithm>

namespace examples {

namespace detail {

template <class T>
bnorm::Index count_finite_correct(const bnorm::Matrix<T>& logits,
                                  const Eigen::Ref<const bnorm::Labels>& labels) {
  if (logits.allFinite()) return bnorm::count_correct(logits, labels);
  bnorm::Index correct = 0;
  for (bnorm::Index j = 0; j < logits.cols(); ++j)
    if (logits.col(j).allFinite())
      correct += bnorm::count_correct(logits.col(j), labels.segment(j, 1));
  return correct;
}

}  // namespace detail

// `after_chunk(first, count)` runs after each chunk's forward, while the layers' outputs
// (net.layer_output(i)) hold that chunk's activations: a probe of hidden units.
template <class T, class AfterChunk>
double eval_accuracy(bnorm::Sequential<T>& net, const bnorm::Dataset<T>& data,
                     bnorm::Index chunk, AfterChunk after_chunk) {
  bnorm::Index correct = 0;
  for (bnorm::Index first = 0; first < data.size(); first += chunk) {
    const bnorm::Index count = std::min(chunk, data.size() - first);
    const auto& logits = net.forward(data.inputs.middleCols(first, count), bnorm::Mode::eval);
    correct += detail::count_finite_correct(logits, data.labels.segment(first, count));
    after_chunk(first, count);
  }
  return static_cast<double>(correct) / static_cast<double>(data.size());
}

template <class T>
double eval_accuracy(bnorm::Sequential<T>& net, const bnorm::Dataset<T>& data,
                     bnorm::Index chunk = 2000) {
  return eval_accuracy(net, data, chunk, [](bnorm::Index, bnorm::Index) {});
}

// Consecutive batches of `batch` examples (a last batch of one joins the one before it: a
// single example has no batch statistics). For networks without Dropout, which would drop
// units in Mode::train.
template <class T>
double batch_statistics_accuracy(const bnorm::Sequential<T>& net, const bnorm::Dataset<T>& data,
                                 bnorm::Index batch) {
  bnorm::Sequential<T> copy = net;
  bnorm::Index correct = 0, first = 0;
  while (first < data.size()) {
    bnorm::Index count = std::min(batch, data.size() - first);
    if (data.size() - first - count == 1) ++count;
    const auto& logits = copy.forward(data.inputs.middleCols(first, count), bnorm::Mode::train);
    correct += detail::count_finite_correct(logits, data.labels.segment(first, count));
    first += count;
  }
  return static_cast<double>(correct) / static_cast<double>(data.size());
}

}  // namespace examples
