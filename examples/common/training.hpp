// Mini-batch training of a classifier: softmax cross-entropy, SGD, shuffled batches, and
// the reference scripts' divergence rule (a non-finite training loss stops the run).
//
//   examples::Training training(net, data.train, 64, data_seed, {.lr = 0.05f, .momentum = 0.9f});
//   progress.start_unit("epoch 1", training.steps_per_epoch());
//   if (!training.run_epoch(progress)) ...   // diverged at training.diverged_step()
//
// Batches come from bnorm::MiniBatches seeded with `data_seed`: a new order every epoch, the
// last partial batch kept (PyTorch's drop_last=False), except a last batch of a single
// example, which BatchNorm cannot normalize and is skipped. Every step, once sized,
// allocates nothing.
#pragma once

#include "progress.hpp"
#include "stopwatch.hpp"

#include <bnorm/bnorm.hpp>

#include <cmath>
#include <cstdint>

namespace examples {

// Keeps only the first `count` examples of `data` (0 or more than it holds: all of them), to
// train on a subset.
template <class T>
void keep_first_examples(bnorm::Dataset<T>& data, bnorm::Index count) {
  if (count <= 0 || count >= data.size()) return;
  data.inputs.conservativeResize(Eigen::NoChange, count);
  data.labels.conservativeResize(count);
}

template <class T>
class Training {
 public:
  // `net` and `train` must outlive the Training. The gradient with respect to the images is
  // never used, so the first layer skips it.
  Training(bnorm::Sequential<T>& net, const bnorm::Dataset<T>& train, bnorm::Index batch_size,
           std::uint64_t data_seed, bnorm::SGDOptions<T> sgd)
      : net_(&net),
        batches_(train, batch_size, data_seed,
                 train.size() % batch_size == 1 ? bnorm::LastBatch::drop : bnorm::LastBatch::keep),
        optimizer_(net.parameters(), sgd) {
    net.set_input_gradient(false);
  }

  // Runs `steps` steps, starting a new epoch whenever one ends. False if the run diverged.
  bool run_steps(long long steps, Progress& progress) {
    const Stopwatch stopwatch;
    for (long long i = 0; i < steps && !diverged(); ++i) {
      if (!in_epoch_ || !batches_.next()) {
        batches_.start_epoch();
        batches_.next();
      }
      in_epoch_ = true;
      step(progress);
    }
    add_time(stopwatch);
    return !diverged();
  }

  // Runs one whole epoch in a fresh order. False if the run diverged.
  bool run_epoch(Progress& progress) {
    const Stopwatch stopwatch;
    batches_.start_epoch();
    in_epoch_ = false;
    while (!diverged() && batches_.next()) step(progress);
    add_time(stopwatch);
    return !diverged();
  }

  long long steps() const { return steps_; }
  long long steps_per_epoch() const { return batches_.batches_per_epoch(); }
  bool diverged() const { return diverged_step_ > 0; }
  long long diverged_step() const { return diverged_step_; }  // 0: has not diverged
  // Time spent in training steps (batching, forward, loss, backward, update), not evaluating.
  double seconds() const { return seconds_; }
  double cpu_seconds() const { return cpu_seconds_; }
  bnorm::SGD<T>& optimizer() { return optimizer_; }

 private:
  void add_time(const Stopwatch& stopwatch) {
    seconds_ += stopwatch.wall_seconds();
    cpu_seconds_ += stopwatch.cpu_seconds();
  }

  void step(Progress& progress) {
    const auto& logits = net_->forward(batches_.inputs(), bnorm::Mode::train);
    const T loss = loss_.forward(logits, batches_.labels());
    ++steps_;
    if (!std::isfinite(loss)) {
      diverged_step_ = steps_;
      return;
    }
    net_->backward(loss_.backward());
    optimizer_.step();
    progress.step(static_cast<double>(loss), batches_.labels().size());
  }

  bnorm::Sequential<T>* net_;
  bnorm::MiniBatches<T> batches_;
  bnorm::SoftmaxCrossEntropy<T> loss_;
  bnorm::SGD<T> optimizer_;
  long long steps_ = 0, diverged_step_ = 0;
  double seconds_ = 0, cpu_seconds_ = 0;
  bool in_epoch_ = false;
};

}  // namespace examples
