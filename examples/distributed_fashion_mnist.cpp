// Trains the flagship network of fashion_mnist.cpp data-parallel over MPI: every global
// mini-batch is split across the processes, whose synchronized BatchNorms normalize with the
// statistics of the whole global batch and whose gradients are averaged before each step.
//
//   mpirun -np 2 --allow-run-as-root --oversubscribe build/examples/distributed_fashion_mnist
//
//   784 -> [Dense 256 without bias -> BatchNorm -> ReLU] x 3 -> Dense 10
//   softmax cross-entropy, SGD with momentum 0.9, global batch 64, lr 0.05
//
// Every process shuffles with the same seed, so all see the same global batches in the
// same order as the single-process example with that seed, and takes its share of each.
// Trained this way, the network is the single-process one up to rounding: with --double the
// final accuracy matches to all printed digits, in float it may differ slightly.
//
// Process 0 prints; the last line is `test_accuracy=0.xxxx`, for scripts.

#include "common/float_network.hpp"  // bnorm.hpp, with the float types compiled once

#include <bnorm/distributed.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <span>
#include <string>

namespace {

namespace dist = bnorm::distributed;
using bnorm::Index;

struct Options {
  int epochs = 10;
  Index batch_size = 64;  // global: summed over the processes
  double learning_rate = 0.05;
  std::uint64_t seed = 0;
  std::string data_directory = bnorm::fashion_mnist_default_directory.string();
  Index train_examples = 0;  // 0: all
  bool use_double = false;
};

constexpr Index image_pixels = 28 * 28;
constexpr Index hidden_units = 256;
constexpr Index hidden_blocks = 3;
constexpr Index classes = 10;

template <class T>
bnorm::Sequential<T> build_network() {
  bnorm::Sequential<T> net;
  Index inputs = image_pixels;
  for (Index block = 0; block < hidden_blocks; ++block) {
    net.add(bnorm::Dense<T>(inputs, hidden_units, bnorm::Bias::none))
        .add(bnorm::BatchNorm<T>(hidden_units))
        .add(bnorm::ReLU<T>());
    inputs = hidden_units;
  }
  net.add(bnorm::Dense<T>(inputs, classes));
  return net;
}

// Process `rank`'s examples of a batch of `total`: consecutive, as even as possible.
struct Share {
  Index first;
  Index count;
};
Share share_of(const dist::Communicator& world, Index total) {
  const Index first = total * world.rank() / world.size();
  return {first, total * (world.rank() + 1) / world.size() - first};
}

// Each process measures its share of the test set in eval mode; the counts are summed.
template <class T>
double test_accuracy(bnorm::Sequential<T>& net, const bnorm::Dataset<T>& test,
                     const dist::Communicator& world) {
  constexpr Index chunk = 1000;
  const Share share = share_of(world, test.size());
  long long correct = 0;
  for (Index start = share.first; start < share.first + share.count; start += chunk) {
    const Index count = std::min(chunk, share.first + share.count - start);
    const auto& logits = net.forward(test.inputs.middleCols(start, count), bnorm::Mode::eval);
    correct += bnorm::count_correct(logits, test.labels.segment(start, count));
  }
  world.all_reduce_sum(std::span<long long>(&correct, 1));
  return static_cast<double>(correct) / static_cast<double>(test.size());
}

template <class T>
int train(const Options& options, const dist::Communicator& world) {
  const bool root = world.rank() == 0;
  auto data = bnorm::load_fashion_mnist<T>(options.data_directory);
  if (options.train_examples > 0 && options.train_examples < data.train.size()) {
    data.train.inputs.conservativeResize(Eigen::NoChange, options.train_examples);
    data.train.labels.conservativeResize(options.train_examples);
  }
  // BatchNorm normalizes each process's examples itself before merging, so it needs two of
  // them on every process, not just two in the global batch.
  const Index minimum_batch = 2 * world.size();
  if (options.batch_size < minimum_batch)
    bnorm::detail::fail("--batch ", options.batch_size, " is too small for ", world.size(),
                        " processes: each needs at least 2 examples of every batch, so use at "
                        "least ",
                        minimum_batch);

  bnorm::manual_seed(options.seed);
  bnorm::Sequential<T> net = build_network<T>();
  net.set_input_gradient(false);  // nothing uses the gradient with respect to the images
  dist::synchronize_batch_norm(net, world);
  dist::broadcast_parameters(net, world);  // already equal (same seed); made certain
  dist::GradientAllReduce<T> gradients(net.parameters(), world);
  bnorm::SoftmaxCrossEntropy<T> loss;
  bnorm::SGD<T> optimizer(net.parameters(),
                          {.lr = static_cast<T>(options.learning_rate), .momentum = T(0.9)});

  // A last batch too small to give every process two examples is skipped.
  const Index remainder = data.train.size() % options.batch_size;
  const bool skip_last = remainder != 0 && remainder < minimum_batch;
  bnorm::MiniBatches<T> batches(data.train, options.batch_size, options.seed,
                                skip_last ? bnorm::LastBatch::drop : bnorm::LastBatch::keep);

  if (root) {
    std::printf("Fashion-MNIST: %lld training and %lld test images from %s\n",
                static_cast<long long>(data.train.size()),
                static_cast<long long>(data.test.size()), options.data_directory.c_str());
    std::printf("network: %s (%s)\n", net.name().c_str(), options.use_double ? "double" : "float");
    std::printf("%d process%s, global batch %lld (%lld per process), epochs %d, lr %g, SGD "
                "momentum 0.9, seed %llu%s\n",
                world.size(), world.size() == 1 ? "" : "es",
                static_cast<long long>(options.batch_size),
                static_cast<long long>(options.batch_size / world.size()), options.epochs,
                options.learning_rate, static_cast<unsigned long long>(options.seed),
                skip_last ? " (last, partial batch skipped: too small to split)" : "");
    std::fflush(stdout);
  }

  bnorm::Matrix<T> weighted_gradient;
  double accuracy = 0.0;
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    // Loss summed over this process's examples, and their count: summed over processes
    // after the epoch, so that every example weighs the same.
    double loss_and_examples[2] = {0.0, 0.0};
    batches.start_epoch();
    while (batches.next()) {
      const Index global_count = batches.labels().size();
      const Share share = share_of(world, global_count);
      const auto& logits = net.forward(
          batches.inputs().middleCols(share.first, share.count), bnorm::Mode::train);
      const T local_loss = loss.forward(logits, batches.labels().segment(share.first, share.count));
      loss_and_examples[0] += static_cast<double>(local_loss) * static_cast<double>(share.count);
      loss_and_examples[1] += static_cast<double>(share.count);
      // An uneven split (the last batch) weighs each process's gradient by its share, so that
      // the average over processes is the gradient of the global batch's mean loss.
      const Index weighted_count = share.count * world.size();
      if (weighted_count == global_count) {
        net.backward(loss.backward());
      } else {
        weighted_gradient = loss.backward() * (static_cast<T>(weighted_count) /
                                               static_cast<T>(global_count));
        net.backward(weighted_gradient);
      }
      gradients.average();
      optimizer.step();
    }
    const std::chrono::duration<double> seconds = std::chrono::steady_clock::now() - start;
    world.all_reduce_sum(std::span<double>(loss_and_examples));
    accuracy = test_accuracy(net, data.test, world);
    if (root) {
      std::printf("epoch %2d  train_loss %.4f  test_accuracy %.4f  train_seconds %.2f\n", epoch,
                  loss_and_examples[0] / loss_and_examples[1], accuracy, seconds.count());
      std::fflush(stdout);
    }
  }
  if (root) std::printf("test_accuracy=%.4f\n", accuracy);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  dist::Environment mpi(argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);

  Options options;
  CLI::App app{"Trains a batch-normalized MLP on Fashion-MNIST with bnorm, data-parallel over "
               "MPI (start it with mpirun)."};
  app.add_option("--epochs", options.epochs, "Passes over the training set")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--batch", options.batch_size,
                 "Examples per global mini-batch, split across the processes")
      ->check(CLI::Range(Index{1}, Index{1} << 30))
      ->capture_default_str();
  app.add_option("--lr", options.learning_rate, "SGD learning rate")->capture_default_str();
  app.add_option("--seed", options.seed, "Seed of the initialization and the shuffling")
      ->capture_default_str();
  app.add_option("--data", options.data_directory, "Folder of the four IDX files (.gz or not)")
      ->capture_default_str();
  app.add_option("--train-examples", options.train_examples,
                 "Train on the first N training images only (quick runs); 0: all")
      ->check(CLI::Range(Index{0}, Index{1} << 30))
      ->capture_default_str();
  app.add_flag("--double", options.use_double, "Train in double instead of float");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return rank == 0 ? app.exit(error) : (error.get_exit_code() == 0 ? 0 : 1);
  }

  try {
    const dist::Communicator world;
    return options.use_double ? train<double>(options, world) : train<float>(options, world);
  } catch (const std::exception& error) {  // bnorm::Error, or std::bad_alloc
    std::fprintf(stderr, "distributed_fashion_mnist (process %d): error: %s\n", rank,
                 error.what());
    // The other processes may be waiting for this one in a collective: end them all.
    MPI_Abort(MPI_COMM_WORLD, 1);
    return 1;
  }
}
