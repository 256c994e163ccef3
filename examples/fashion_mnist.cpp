// Trains a batch-normalized multilayer perceptron on Fashion-MNIST and reports the test
// accuracy after every epoch.
//
//   784 -> [Dense 256 without bias -> BatchNorm -> ReLU] x 3 -> Dense 10
//   softmax cross-entropy, SGD with momentum 0.9, shuffled mini-batches
//
// --schedule onecycle|cosine sets the learning rate per batch (OneCycleLR up to --lr and
// down, or cosine annealing from --lr to 0); --weight-decay applies to the weight matrices
// only (no decay on BatchNorm's gamma and beta and on biases). --checkpoint FILE writes
// the whole run (network, optimizer, schedule, batch order) after every epoch, atomically;
// --resume FILE continues such a run where it stopped, bit-identically.
//
// With --no-batchnorm the hidden blocks are Dense 256 with bias -> ReLU, for comparison.
// The data are Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist), or
// any folder with the four IDX files (--data DIR), gzip-compressed or not.
//
// The last line of output is `test_accuracy=0.xxxx`, for scripts. On a terminal, a progress
// bar (loss, examples per second, time left) runs on stderr during each epoch.

#include "common/progress.hpp"

#include "common/float_network.hpp"  // bnorm.hpp, with the float types compiled once

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

namespace {

struct Options {
  int epochs = 10;
  bnorm::Index batch_size = 64;
  double learning_rate = 0.05;
  std::uint64_t seed = 0;
  bool batch_norm = true;
  std::string schedule = "none";
  double weight_decay = 0.0;
  std::string checkpoint_file;
  std::string resume_file;
  std::string data_directory = bnorm::fashion_mnist_default_directory.string();
};

constexpr bnorm::Index image_pixels = 28 * 28;
constexpr bnorm::Index hidden_units = 256;
constexpr bnorm::Index hidden_blocks = 3;
constexpr bnorm::Index classes = 10;

bnorm::Sequential<float> build_network(bool batch_norm) {
  bnorm::Sequential<float> net;
  bnorm::Index inputs = image_pixels;
  for (bnorm::Index block = 0; block < hidden_blocks; ++block) {
    if (batch_norm) {
      // No bias before BatchNorm: subtracting the batch mean would cancel it.
      net.add(bnorm::Dense<float>(inputs, hidden_units, bnorm::Bias::none))
          .add(bnorm::BatchNorm<float>(hidden_units))
          .add(bnorm::ReLU<float>());
    } else {
      net.add(bnorm::Dense<float>(inputs, hidden_units)).add(bnorm::ReLU<float>());
    }
    inputs = hidden_units;
  }
  net.add(bnorm::Dense<float>(inputs, classes));
  return net;
}

// Accuracy in eval mode, 1000 examples at a time so that the activations stay small.
double test_accuracy(bnorm::Sequential<float>& net, const bnorm::Dataset<float>& test) {
  constexpr bnorm::Index chunk = 1000;
  bnorm::Index correct = 0;
  for (bnorm::Index start = 0; start < test.size(); start += chunk) {
    const bnorm::Index count = std::min(chunk, test.size() - start);
    const auto& logits = net.forward(test.inputs.middleCols(start, count), bnorm::Mode::eval);
    correct += bnorm::count_correct(logits, test.labels.segment(start, count));
  }
  return static_cast<double>(correct) / static_cast<double>(test.size());
}

// Without --schedule: a scheduler that never changes the learning rate. It joins
// checkpoints through the same customization point as bnorm's own schedulers.
struct ConstantLR {
  void step() {}
  static constexpr std::string_view checkpoint_kind = "ConstantLR";
  template <class Visitor>
  void visit_checkpoint(Visitor&) {}
};

template <class Schedule, class MakeSchedule>
int train(const Options& options, const bnorm::TrainTestSplit<float>& data,
          MakeSchedule&& make_schedule) {
  bnorm::manual_seed(options.seed);
  bnorm::Sequential<float> net = build_network(options.batch_norm);
  net.set_input_gradient(false);  // nothing uses the gradient with respect to the images
  bnorm::SoftmaxCrossEntropy<float> loss;
  bnorm::SGD<float> optimizer(bnorm::split_weight_decay(net.parameters()),
                              {.lr = options.learning_rate,
                               .momentum = 0.9,
                               .weight_decay = options.weight_decay});

  // BatchNorm cannot train on a last batch of a single example: skip that one.
  const bool lone_last_example = options.batch_norm && data.train.size() % options.batch_size == 1;
  bnorm::MiniBatches<float> batches(
      data.train, options.batch_size, options.seed,
      lone_last_example ? bnorm::LastBatch::drop : bnorm::LastBatch::keep);
  const long long total_steps =
      static_cast<long long>(options.epochs) * static_cast<long long>(batches.batches_per_epoch());
  Schedule schedule = make_schedule(optimizer, total_steps);

  std::printf("Fashion-MNIST: %lld training and %lld test images from %s\n",
              static_cast<long long>(data.train.size()), static_cast<long long>(data.test.size()),
              options.data_directory.c_str());
  std::printf("network: %s\n", net.name().c_str());
  std::printf("epochs %d, batch %lld, lr %g, SGD momentum 0.9, weight decay %g, schedule %s, "
              "seed %llu%s\n",
              options.epochs, static_cast<long long>(options.batch_size), options.learning_rate,
              options.weight_decay, options.schedule.c_str(),
              static_cast<unsigned long long>(options.seed),
              lone_last_example ? " (last batch of 1 example skipped: BatchNorm needs 2)" : "");
  if (!options.resume_file.empty()) {
    bnorm::load_checkpoint(options.resume_file, net, optimizer, schedule, batches);
    std::printf("resumed from %s after epoch %lld\n", options.resume_file.c_str(),
                batches.epoch());
  }

  double accuracy = 0.0;
  const int first_epoch = static_cast<int>(batches.epoch()) + 1;
  examples::Progress progress((options.epochs - first_epoch + 1) * batches.batches_per_epoch());
  for (int epoch = first_epoch; epoch <= options.epochs; ++epoch) {
    progress.start_unit("epoch " + std::to_string(epoch) + "/" + std::to_string(options.epochs),
                        batches.batches_per_epoch());
    const auto start = std::chrono::steady_clock::now();
    double loss_sum = 0.0;  // summed over examples, so a partial batch weighs what it holds
    bnorm::Index examples = 0;
    batches.start_epoch();
    while (batches.next()) {
      const auto& logits = net.forward(batches.inputs(), bnorm::Mode::train);
      const bnorm::Index count = batches.labels().size();
      const float batch_loss = loss.forward(logits, batches.labels());
      loss_sum += static_cast<double>(batch_loss) * static_cast<double>(count);
      examples += count;
      net.backward(loss.backward());
      optimizer.step();
      schedule.step();
      progress.step(batch_loss, count);
    }
    const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
    progress.finish_unit();
    if (!options.checkpoint_file.empty())
      bnorm::save_checkpoint(options.checkpoint_file, net, optimizer, schedule, batches);
    accuracy = test_accuracy(net, data.test);
    std::printf("epoch %2d  train_loss %.4f  test_accuracy %.4f  train_seconds %.2f\n", epoch,
                loss_sum / static_cast<double>(examples), accuracy, seconds.count());
    std::fflush(stdout);
  }
  if (first_epoch > options.epochs) accuracy = test_accuracy(net, data.test);
  std::printf("test_accuracy=%.4f\n", accuracy);
  return 0;
}

int train(const Options& options) {
  if (options.batch_norm && options.batch_size < 2) {
    std::fprintf(stderr,
                 "fashion_mnist: error: --batch must be at least 2 with batch normalization (a "
                 "batch of one has no variance); use --no-batchnorm for batches of one\n");
    return 1;
  }
  const auto data = bnorm::load_fashion_mnist<float>(options.data_directory);
  if (options.schedule == "onecycle")
    return train<bnorm::OneCycleLR>(options, data, [&](auto& optimizer, long long steps) {
      return bnorm::OneCycleLR(optimizer, {.max_lr = options.learning_rate, .total_steps = steps});
    });
  if (options.schedule == "cosine")
    return train<bnorm::CosineAnnealingLR>(options, data, [](auto& optimizer, long long steps) {
      return bnorm::CosineAnnealingLR(optimizer, {.t_max = steps});
    });
  return train<ConstantLR>(options, data, [](auto&, long long) { return ConstantLR{}; });
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"Trains a batch-normalized MLP on Fashion-MNIST with bnorm."};
  app.add_option("--epochs", options.epochs, "Passes over the training set")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--batch", options.batch_size, "Examples per mini-batch")
      ->check(CLI::Range(bnorm::Index{1}, bnorm::Index{1} << 30))
      ->capture_default_str();
  app.add_option("--lr", options.learning_rate,
                 "SGD learning rate (with --schedule onecycle: the peak)")
      ->capture_default_str();
  app.add_option("--schedule", options.schedule, "Learning-rate schedule, stepped every batch")
      ->check(CLI::IsMember({"none", "onecycle", "cosine"}))
      ->capture_default_str();
  app.add_option("--weight-decay", options.weight_decay,
                 "L2 weight decay on the weight matrices (not on gamma, beta, biases)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--checkpoint", options.checkpoint_file,
                 "Write the whole run to this file after every epoch (atomically)");
  app.add_option("--resume", options.resume_file,
                 "Continue the run saved in this checkpoint (same options)")
      ->check(CLI::ExistingFile);
  app.add_option("--seed", options.seed, "Seed of the initialization and the shuffling")
      ->capture_default_str();
  app.add_flag("!--no-batchnorm", options.batch_norm,
               "Hidden blocks Dense (with bias) -> ReLU, without BatchNorm");
  app.add_option("--data", options.data_directory, "Folder of the four IDX files (.gz or not)")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }

  try {
    return train(options);
  } catch (const std::exception& error) {  // bnorm::Error, or std::bad_alloc
    std::fprintf(stderr, "fashion_mnist: error: %s\n", error.what());
    return 1;
  }
}
