// Shuffled mini-batches over a Dataset, as PyTorch's DataLoader(shuffle=True).
//
//   bnorm::MiniBatches<float> batches(data.train, 64, seed);
//   for (int epoch = 0; epoch < epochs; ++epoch) {
//     batches.start_epoch();                       // a new order every epoch
//     while (batches.next()) {
//       const auto& logits = net.forward(batches.inputs(), bnorm::Mode::train);
//       loss.forward(logits, batches.labels());
//       ...
//     }
//   }
//
// Every epoch visits every example exactly once, in an order drawn from a bnorm::Generator
// seeded with `seed`: the same seed gives the same orders on every platform. The last,
// partial batch is kept (LastBatch::keep, PyTorch's drop_last=False) or skipped
// (LastBatch::drop).
//
// Allocation: the batch is copied into buffers owned by the MiniBatches, one column copy per
// example. They are resized only when the batch size changes, i.e. for the last, partial
// batch and for the first full batch after it; every other batch allocates nothing.
#pragma once

#include "../core/error.hpp"
#include "../core/generator.hpp"
#include "../core/types.hpp"
#include "dataset.hpp"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string_view>
#include <vector>

namespace bnorm {

// What to do with the examples left over when the batch size does not divide the data set.
enum class LastBatch { keep, drop };

template <class T>
class MiniBatches {
 public:
  // `dataset` is read, never copied: it must outlive this object and keep its size.
  MiniBatches(const Dataset<T>& dataset, Index batch_size, std::uint64_t seed,
              LastBatch last_batch = LastBatch::keep)
      : dataset_(&dataset), batch_size_(batch_size), last_batch_(last_batch), generator_(seed) {
    dataset.check("MiniBatches");
    detail::require(batch_size > 0, "MiniBatches: batch size must be positive, got ", batch_size);
    detail::require(dataset.size() > 0, "MiniBatches: the dataset has no examples");
    detail::require(last_batch == LastBatch::keep || batch_size <= dataset.size(),
                    "MiniBatches: batch size ", batch_size, " exceeds the ", dataset.size(),
                    " examples and the last partial batch is dropped, so every epoch would be "
                    "empty");
    order_.resize(dataset.size());
  }
  // A temporary data set would be gone before the first batch.
  MiniBatches(const Dataset<T>&&, Index, std::uint64_t, LastBatch = LastBatch::keep) = delete;

  // Begins an epoch in a fresh random order; an epoch left unfinished is abandoned.
  void start_epoch() {
    // Each epoch starts from the identity, so its order depends only on the seed and the
    // number of epochs started before it.
    std::iota(order_.begin(), order_.end(), Index{0});
    generator_.shuffle(order_);
    position_ = 0;
    ++epoch_;
  }

  // Fills inputs() and labels() with the next batch; false when the epoch is over.
  bool next() {
    detail::require(epoch_ > 0, "MiniBatches: call start_epoch() before next()");
    const Index remaining = dataset_->size() - position_;
    if (remaining == 0 || (remaining < batch_size_ && last_batch_ == LastBatch::drop)) {
      position_ = dataset_->size();
      return false;
    }
    const Index count = std::min(batch_size_, remaining);
    inputs_.resize(dataset_->features(), count);
    labels_.resize(count);
    for (Index k = 0; k < count; ++k) {
      const Index example = order_[static_cast<std::size_t>(position_ + k)];
      inputs_.col(k) = dataset_->inputs.col(example);
      labels_(k) = dataset_->labels(example);
    }
    position_ += count;
    return true;
  }

  // The batch filled by the last successful next(): features x batch, one column per example.
  const Matrix<T>& inputs() const { return inputs_; }
  // The class of each column of inputs().
  const Labels& labels() const { return labels_; }

  Index batch_size() const { return batch_size_; }
  // Batches in one epoch, counting a kept partial batch.
  Index batches_per_epoch() const {
    const Index full = dataset_->size() / batch_size_;
    const bool partial = dataset_->size() % batch_size_ != 0 && last_batch_ == LastBatch::keep;
    return full + (partial ? 1 : 0);
  }
  // Epochs started so far.
  long long epoch() const { return epoch_; }
  // Examples of the current epoch handed out so far.
  Index position() const { return position_; }

  // Checkpoints (io/checkpoint.hpp): the data set's size, the batch size and the last-batch
  // rule must match; the epoch, the position in it, its order and the generator are
  // restored, so the next batches are those an uninterrupted run would have drawn. The
  // batch filled last is not saved: call next().
  static constexpr std::string_view checkpoint_kind =
      sizeof(T) == 4 ? "MiniBatches<float>" : "MiniBatches<double>";
  template <class Visitor>
  void visit_checkpoint(Visitor& visit) {
    const Index size = dataset_->size();
    visit.constant("the data set size", static_cast<long long>(size));
    visit.constant("the number of features", static_cast<long long>(dataset_->features()));
    visit.constant("the batch size", static_cast<long long>(batch_size_));
    visit.constant("the last-batch rule", static_cast<long long>(last_batch_));
    visit.generator("the generator", generator_);
    visit.counter("the epoch", epoch_);
    visit.index("the position", position_, size + 1);
    visit.permutation("the order", order_);
  }

 private:
  const Dataset<T>* dataset_;
  Index batch_size_;
  LastBatch last_batch_;
  Generator generator_;
  std::vector<Index> order_;
  Index position_ = 0;
  long long epoch_ = 0;
  Matrix<T> inputs_;
  Labels labels_;
};

}  // namespace bnorm
