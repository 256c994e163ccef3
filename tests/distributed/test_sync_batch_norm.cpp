// Tests of bnorm::distributed, run by CTest under mpiexec on 1, 2 and 3 processes (main in
// mpi_test_main.cpp). Every test case is collective: each process runs it, and the checks
// hold on every process.
//
// The central one: P processes, each with its share of a global batch of 64 and synchronized
// BatchNorms, take the same 10 SGD-momentum steps as one process with the whole batch. Each
// process also runs that single-process reference itself (without MPI), so the comparison
// needs no communication beyond what is under test.

#include <doctest/doctest.h>

#include <bnorm/bnorm.hpp>
#include <bnorm/distributed.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <span>
#include <vector>

using namespace bnorm;
namespace dist = bnorm::distributed;

namespace {

constexpr Index input_features = 12;
constexpr Index hidden = 16;
constexpr Index classes = 5;
constexpr Index global_batch = 64;
constexpr int steps = 10;

// Several BatchNorms with different options, one inside a nested Sequential.
template <class T>
Sequential<T> make_network(std::uint64_t seed) {
  manual_seed(seed);
  Sequential<T> nested{Dense<T>(hidden, hidden, Bias::none),
                       BatchNorm<T>(hidden, {.running_average = RunningAverage::cumulative}),
                       Tanh<T>()};
  Sequential<T> net;
  net.add(Dense<T>(input_features, hidden, Bias::none))
      .add(BatchNorm<T>(hidden))
      .add(ReLU<T>())
      .add(std::move(nested))
      .add(Dense<T>(hidden, hidden, Bias::none))
      .add(BatchNorm<T>(hidden, {.momentum = T(0.3), .renormalize = true, .rmax = T(1.5),
                                 .dmax = T(0.5)}))
      .add(ReLU<T>())
      .add(Dense<T>(hidden, classes));
  return net;
}

// Global batch `step`: the same on every process. Offset and scaled, so normalizing matters.
template <class T>
Dataset<T> global_batch_for(int step) {
  Generator generator(1000 + static_cast<std::uint64_t>(step));
  Dataset<T> batch{Matrix<T>(input_features, global_batch), Labels(global_batch)};
  for (Index j = 0; j < global_batch; ++j) {
    for (Index i = 0; i < input_features; ++i)
      batch.inputs(i, j) = static_cast<T>(3.0 + 0.5 * static_cast<double>(i) +
                                          2.0 * generator.normal());
    batch.labels(j) = static_cast<int>(generator.below(classes));
  }
  return batch;
}

// Process `rank`'s columns of a batch of `total` examples split as evenly as possible.
struct Share {
  Index first;
  Index count;
};
Share share_of(int rank, int processes, Index total) {
  const Index first = total * rank / processes;
  return {first, total * (rank + 1) / processes - first};
}

// Everything a network holds that must agree: parameters, then running statistics.
template <class T>
std::vector<std::vector<double>> state_of(Sequential<T>& net) {
  std::vector<std::vector<double>> tensors;
  for (auto& parameter : net.parameters())
    tensors.emplace_back(parameter.value().data(), parameter.value().data() + parameter.size());
  dist::for_each_batch_norm(net, [&](BatchNorm<T>& norm) {
    tensors.emplace_back(norm.running_mean().data(),
                         norm.running_mean().data() + norm.running_mean().size());
    tensors.emplace_back(norm.running_var().data(),
                         norm.running_var().data() + norm.running_var().size());
    tensors.push_back({static_cast<double>(norm.num_batches_tracked())});
  });
  return tensors;
}

// max over tensors of max|a - b| / max|b|: relative to each tensor's scale, so entries near
// zero do not inflate it.
double max_relative_difference(const std::vector<std::vector<double>>& a,
                               const std::vector<std::vector<double>>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0.0;
  for (std::size_t t = 0; t < a.size(); ++t) {
    REQUIRE(a[t].size() == b[t].size());
    double difference = 0.0, scale = 0.0;
    for (std::size_t i = 0; i < a[t].size(); ++i) {
      difference = std::max(difference, std::abs(a[t][i] - b[t][i]));
      scale = std::max(scale, std::abs(b[t][i]));
    }
    worst = std::max(worst, scale > 0.0 ? difference / scale : difference);
  }
  return worst;
}

// True on every process when every process holds exactly, bit for bit, process 0's values.
bool identical_on_every_process(const std::vector<std::vector<double>>& tensors,
                                const dist::Communicator& world) {
  std::vector<double> mine;
  for (const auto& tensor : tensors) mine.insert(mine.end(), tensor.begin(), tensor.end());
  std::vector<double> root = mine;
  world.broadcast(std::span<double>(root), 0);
  int differing = root == mine ? 0 : 1;
  world.all_reduce_sum(std::span<int>(&differing, 1));
  return differing == 0;
}

struct Trajectory {
  std::vector<double> losses;
  std::vector<std::vector<double>> state;
};

template <class T>
SGD<T> make_optimizer(Sequential<T>& net) {
  return SGD<T>(net.parameters(), {.lr = T(0.1), .momentum = T(0.9)});
}

// One process, the whole global batch, no MPI.
template <class T>
Trajectory train_single_process(Sequential<T> net) {
  SoftmaxCrossEntropy<T> loss;
  SGD<T> optimizer = make_optimizer(net);
  Trajectory result;
  for (int step = 0; step < steps; ++step) {
    const Dataset<T> batch = global_batch_for<T>(step);
    result.losses.push_back(
        static_cast<double>(loss.forward(net.forward(batch.inputs, Mode::train), batch.labels)));
    net.backward(loss.backward());
    optimizer.step();
  }
  result.state = state_of(net);
  return result;
}

// Every process trains on its share; the loss is the global mean over all 64 examples.
template <class T>
Trajectory train_data_parallel(Sequential<T> net, const dist::Communicator& world) {
  dist::synchronize_batch_norm(net, world);
  dist::broadcast_parameters(net, world);
  dist::GradientAllReduce<T> gradients(net.parameters(), world);
  SoftmaxCrossEntropy<T> loss;
  SGD<T> optimizer = make_optimizer(net);
  const Share share = share_of(world.rank(), world.size(), global_batch);
  // Unequal shares: weigh this process's loss gradient by n_k * P / N (gradient_all_reduce.hpp).
  const T weight = static_cast<T>(share.count * world.size()) / static_cast<T>(global_batch);
  Matrix<T> weighted_gradient;
  Trajectory result;
  for (int step = 0; step < steps; ++step) {
    const Dataset<T> batch = global_batch_for<T>(step);
    const T local_loss = loss.forward(
        net.forward(batch.inputs.middleCols(share.first, share.count), Mode::train),
        batch.labels.segment(share.first, share.count));
    double loss_sum = static_cast<double>(local_loss) * static_cast<double>(share.count);
    world.all_reduce_sum(std::span<double>(&loss_sum, 1));
    result.losses.push_back(loss_sum / static_cast<double>(global_batch));
    if (weight == T(1)) {
      net.backward(loss.backward());
    } else {
      weighted_gradient = loss.backward() * weight;
      net.backward(weighted_gradient);
    }
    gradients.average();
    optimizer.step();
  }
  result.state = state_of(net);
  return result;
}

double max_relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(a[i] - b[i]) / std::abs(b[i]));
  return worst;
}

template <class T>
void check_equivalence(double tolerance) {
  const dist::Communicator world;
  const Sequential<T> initial = make_network<T>(42);
  const Trajectory reference = train_single_process(initial);
  const Trajectory parallel = train_data_parallel(initial, world);

  const double loss_error = max_relative_difference(parallel.losses, reference.losses);
  const double state_error = max_relative_difference(parallel.state, reference.state);
  if (world.rank() == 0)
    std::printf("[%s] %d process(es) x batch %lld vs 1 x %lld over %d steps: max relative "
                "difference of losses %.3g, of parameters and running statistics %.3g\n",
                sizeof(T) == 8 ? "double" : "float", world.size(),
                static_cast<long long>(global_batch / world.size()),
                static_cast<long long>(global_batch), steps, loss_error, state_error);
  CHECK(reference.losses.back() < reference.losses.front());  // it does learn
  CHECK(loss_error <= tolerance);
  CHECK(state_error <= tolerance);
  // The merge, the sums and the all-reduce keep every process's network identical.
  CHECK(identical_on_every_process(parallel.state, world));
  // On one process synchronization changes nothing at all.
  if (world.size() == 1) {
    CHECK(loss_error == 0.0);
    CHECK(state_error == 0.0);
  }
}

}  // namespace

TEST_CASE("P processes x batch 64/P train exactly as 1 process x batch 64 (double)") {
  check_equivalence<double>(1e-12);
}

TEST_CASE("P processes x batch 64/P train as 1 process x batch 64 (float, to rounding)") {
  check_equivalence<float>(1e-4);
}

TEST_CASE("Merging moments is stable for a mean of 1e3 and a spread of 1e-2") {
  const dist::Communicator world;
  constexpr Index features = 4;
  // Unequal counts and slightly different means per process: the merge's terms all matter.
  std::vector<Index> counts;
  for (int k = 0; k < world.size(); ++k) counts.push_back(50 + 37 * k);
  Index total = 0, first = 0;
  for (int k = 0; k < world.size(); ++k) {
    if (k < world.rank()) first += counts[static_cast<std::size_t>(k)];
    total += counts[static_cast<std::size_t>(k)];
  }
  Generator generator(7);
  Matrix<double> all(features, total);
  Index column = 0;
  for (int k = 0; k < world.size(); ++k)
    for (Index j = 0; j < counts[static_cast<std::size_t>(k)]; ++j, ++column)
      for (Index i = 0; i < features; ++i)
        all(i, column) = 1e3 + 0.1 * static_cast<double>(i) + 5e-3 * k + 1e-2 * generator.normal();
  const auto mine = all.middleCols(first, counts[static_cast<std::size_t>(world.rank())]);

  // The exact answer, in long double over all the data.
  std::vector<long double> reference_mean(features), reference_var(features);
  for (Index i = 0; i < features; ++i) {
    long double sum = 0;
    for (Index j = 0; j < total; ++j) sum += all(i, j);
    reference_mean[i] = sum / total;
    long double squares = 0;
    for (Index j = 0; j < total; ++j) squares += (all(i, j) - reference_mean[i]) * (all(i, j) - reference_mean[i]);
    reference_var[i] = squares / total;
  }

  // Directly: this process's exact moments rounded to double, merged by the sync.
  Vector<double> mean(features), m2(features);
  for (Index i = 0; i < features; ++i) {
    long double sum = 0, squares = 0;
    for (Index j = 0; j < mine.cols(); ++j) sum += mine(i, j);
    const long double local_mean = sum / mine.cols();
    for (Index j = 0; j < mine.cols(); ++j)
      squares += (mine(i, j) - local_mean) * (mine(i, j) - local_mean);
    mean(i) = static_cast<double>(local_mean);
    m2(i) = static_cast<double>(squares);
  }
  dist::MpiStatisticsSync<double> sync(world);
  const double merged_count = sync.merge_moments(static_cast<double>(mine.cols()), mean, m2);
  CHECK(merged_count == static_cast<double>(total));

  // Through the layer: with momentum 1 the running statistics are the batch's.
  BatchNorm<double> norm(features, {.momentum = 1.0});
  Sequential<double> net{std::move(norm)};
  dist::synchronize_batch_norm(net, world);
  net.forward(mine, Mode::train);
  const auto& layer = net.layer<BatchNorm<double>>(0);

  double mean_error = 0, var_error = 0, layer_mean_error = 0, layer_var_error = 0,
         naive_var_error = 0;
  for (Index i = 0; i < features; ++i) {
    const long double exact_mean = reference_mean[i], exact_var = reference_var[i];
    auto relative = [](long double value, long double exact) {
      return static_cast<double>(std::abs((value - exact) / exact));
    };
    mean_error = std::max(mean_error, relative(mean(i), exact_mean));
    var_error = std::max(var_error, relative(m2(i) / total, exact_var));
    layer_mean_error = std::max(layer_mean_error, relative(layer.running_mean()(i), exact_mean));
    layer_var_error = std::max(
        layer_var_error, relative(layer.running_var()(i) * (total - 1) / total, exact_var));
    // What E[x^2] - E[x]^2 in double would give, for contrast.
    const double naive = all.row(i).array().square().mean() - std::pow(all.row(i).mean(), 2);
    naive_var_error = std::max(naive_var_error, relative(naive, exact_var));
  }
  if (world.rank() == 0)
    std::printf("[merge] %d process(es), mean 1e3, std 1e-2: relative error of the mean %.3g, "
                "of the variance %.3g (through BatchNorm: %.3g, %.3g; E[x^2] - E[x]^2 would "
                "give %.3g)\n",
                world.size(), mean_error, var_error, layer_mean_error, layer_var_error,
                naive_var_error);
  CHECK(mean_error < 1e-15);
  CHECK(var_error < 1e-9);
  CHECK(layer_mean_error < 1e-15);
  CHECK(layer_var_error < 1e-9);
  CHECK(naive_var_error > 1e-8);  // the test data do defeat the textbook formula
}

// Each process builds and trains its own network, so all differ before a broadcast.
Sequential<double> network_of_process(int rank) {
  Sequential<double> net = make_network<double>(100 + static_cast<std::uint64_t>(rank));
  const Dataset<double> batch = global_batch_for<double>(rank);
  net.forward(batch.inputs, Mode::train);
  dist::for_each_batch_norm(net, [&](BatchNorm<double>& norm) {
    norm.set_num_batches_tracked(7 + rank);
  });
  return net;
}

TEST_CASE("broadcast_parameters gives every process process 0's network") {
  const dist::Communicator world;
  Sequential<double> net = network_of_process(world.rank());
  Sequential<double> root_net = network_of_process(0);  // built here, without MPI
  const auto expected = state_of(root_net);
  if (world.rank() != 0) CHECK(max_relative_difference(state_of(net), expected) > 0.0);
  dist::broadcast_parameters(net, world);
  CHECK(state_of(net) == expected);  // bit for bit
}

TEST_CASE("broadcast_parameters refuses a bad root or differing architectures everywhere") {
  const dist::Communicator world;
  Sequential<double> net{Dense<double>(3, world.rank() == 1 ? 4 : 5)};
  CHECK_THROWS_AS(dist::broadcast_parameters(net, world, world.size()), Error);
  if (world.size() > 1) CHECK_THROWS_AS(dist::broadcast_parameters(net, world), Error);
}

TEST_CASE_TEMPLATE("Gradient averaging: one buffer and per parameter agree", T, float, double) {
  const dist::Communicator world;
  Sequential<T> net{Dense<T>(3, 4), BatchNorm<T>(4), Dense<T>(4, 2, Bias::none)};
  auto fill = [&](int rank) {
    T value = T(1);
    for (auto& parameter : net.parameters())
      for (Index i = 0; i < parameter.size(); ++i) parameter.grad().data()[i] = (value += T(1)) * T(rank + 1);
  };
  // Mean over ranks of (rank + 1) * v is (P + 1) / 2 * v, exact in binary for these values.
  const T factor = static_cast<T>(world.size() + 1) / T(2);
  auto check_average = [&] {
    T value = T(1);
    for (auto& parameter : net.parameters())
      for (Index i = 0; i < parameter.size(); ++i)
        CHECK(parameter.grad().data()[i] == doctest::Approx((value += T(1)) * factor));
  };
  fill(world.rank());
  dist::GradientAllReduce<T> one_buffer(net.parameters(), world);
  one_buffer.average();
  check_average();
  fill(world.rank());
  auto parameters = net.parameters();
  dist::all_reduce_gradients(parameters, world);
  check_average();
}

TEST_CASE("synchronize_batch_norm reaches nested BatchNorms and refuses ghost batches") {
  const dist::Communicator world;
  Sequential<float> net = make_network<float>(1);
  CHECK(dist::synchronize_batch_norm(net, world) == 3);
  CHECK(net.layer<BatchNorm<float>>(1).statistics_sync() != nullptr);
  CHECK(net.layer<Sequential<float>>(3).layer<BatchNorm<float>>(1).statistics_sync() ==
        net.layer<BatchNorm<float>>(1).statistics_sync());
  CHECK(dist::desynchronize_batch_norm(net) == 3);
  CHECK(net.layer<BatchNorm<float>>(5).statistics_sync() == nullptr);

  Sequential<float> ghost{BatchNorm<float>(4), BatchNorm<float>(4, {.virtual_batch_size = 8})};
  CHECK_THROWS_AS(dist::synchronize_batch_norm(ghost, world), Error);
  CHECK(ghost.layer<BatchNorm<float>>(0).statistics_sync() == nullptr);  // nothing changed
}
