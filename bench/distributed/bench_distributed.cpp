// Time per training step of the flagship MLP, data-parallel over MPI, and the share of it
// spent inside MPI calls. Run it on 1 and 2 processes:
//
//   mpirun -np 1 --allow-run-as-root build/bench/distributed/bench_distributed
//   mpirun -np 2 --allow-run-as-root --oversubscribe build/bench/distributed/bench_distributed
//
//   784 -> [Dense 256 without bias -> BatchNorm -> ReLU] x 3 -> Dense 10, softmax
//   cross-entropy, SGD momentum 0.9; a global batch of 64 per step, split across processes.
//
// Communication is timed where it happens: the synchronized BatchNorms' merges (forward) and
// sums (backward), through a timing wrapper around their StatisticsSync, and the gradient
// average. That time includes waiting for the slowest process; --split-wait first waits at
// a barrier, timed apart, so the rest is the transfer alone. --local runs the plain
// single-process step (no MPI call at all), the baseline for one process.
//
// Synthetic data (random images and labels): the speed of a step does not depend on them.

// As in the examples: room on the stack for the blocking of the 784 x 256 products.
#ifndef EIGEN_STACK_ALLOCATION_LIMIT
#define EIGEN_STACK_ALLOCATION_LIMIT (1 << 20)
#endif

#include <bnorm/bnorm.hpp>
#include <bnorm/distributed.hpp>

#include <CLI/CLI.hpp>

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace {

namespace dist = bnorm::distributed;
using bnorm::Index;

constexpr Index image_pixels = 784;
constexpr Index hidden_units = 256;
constexpr Index hidden_blocks = 3;
constexpr Index classes = 10;

struct Options {
  int steps = 300;
  int warmup_steps = 20;
  Index batch_size = 64;  // global
  std::string gradients = "one-buffer";
  bool local = false;
  bool split_wait = false;
  bool use_double = false;
};

// Seconds spent in each kind of MPI call.
struct CommunicationTime {
  double wait = 0;         // barriers of --split-wait: waiting for the slowest process
  double bn_forward = 0;   // BatchNorm moment merges
  double bn_backward = 0;  // BatchNorm backward sums
  double gradients = 0;    // gradient average
  double total() const { return wait + bn_forward + bn_backward + gradients; }
};

class Stopwatch {
 public:
  Stopwatch(double& into, double& wait, MPI_Comm comm, bool split_wait) : into_(into) {
    if (split_wait) {
      const double before = MPI_Wtime();
      MPI_Barrier(comm);
      wait += MPI_Wtime() - before;
    }
    start_ = MPI_Wtime();
  }
  ~Stopwatch() { into_ += MPI_Wtime() - start_; }

 private:
  double& into_;
  double start_;
};

// A StatisticsSync that times the one it wraps.
template <class T>
class TimedStatisticsSync final : public bnorm::StatisticsSync<T> {
 public:
  TimedStatisticsSync(const dist::Communicator& world, CommunicationTime& time, bool split_wait)
      : inner_(world), time_(time), comm_(world.handle()), split_wait_(split_wait) {}

  T merge_moments(T count, bnorm::Vector<T>& mean, bnorm::Vector<T>& m2) override {
    Stopwatch watch(time_.bn_forward, time_.wait, comm_, split_wait_);
    return inner_.merge_moments(count, mean, m2);
  }
  void sum(bnorm::Vector<T>& sum_dy, bnorm::Vector<T>& sum_dy_xhat) override {
    Stopwatch watch(time_.bn_backward, time_.wait, comm_, split_wait_);
    inner_.sum(sum_dy, sum_dy_xhat);
  }

 private:
  dist::MpiStatisticsSync<T> inner_;
  CommunicationTime& time_;
  MPI_Comm comm_;
  bool split_wait_;
};

template <class T>
bnorm::Sequential<T> build_network() {
  bnorm::manual_seed(0);
  bnorm::Sequential<T> net;
  Index inputs = image_pixels;
  for (Index block = 0; block < hidden_blocks; ++block) {
    net.add(bnorm::Dense<T>(inputs, hidden_units, bnorm::Bias::none))
        .add(bnorm::BatchNorm<T>(hidden_units))
        .add(bnorm::ReLU<T>());
    inputs = hidden_units;
  }
  net.add(bnorm::Dense<T>(inputs, classes));
  net.set_input_gradient(false);
  return net;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

template <class T>
void run(const Options& options, const dist::Communicator& world) {
  const bool distributed = !options.local;
  bnorm::detail::require(!options.local || world.size() == 1,
                         "--local runs one process alone; start it with mpirun -np 1");
  bnorm::detail::require(options.batch_size >= 2 * world.size(), "--batch ",
                         options.batch_size, " gives some process fewer than the 2 examples "
                         "BatchNorm needs");
  const Index first = options.batch_size * world.rank() / world.size();
  const Index count = options.batch_size * (world.rank() + 1) / world.size() - first;

  // Eight different global batches, cycled, so the caches see changing data.
  bnorm::Generator generator(1);
  constexpr int batch_count = 8;
  std::vector<bnorm::Matrix<T>> inputs;
  std::vector<bnorm::Labels> labels;
  for (int b = 0; b < batch_count; ++b) {
    bnorm::Matrix<T> x(image_pixels, options.batch_size);
    bnorm::Labels y(options.batch_size);
    for (Index j = 0; j < x.cols(); ++j) {
      for (Index i = 0; i < x.rows(); ++i) x(i, j) = static_cast<T>(generator.uniform());
      y(j) = static_cast<int>(generator.below(classes));
    }
    inputs.push_back(x.middleCols(first, count));
    labels.push_back(y.segment(first, count));
  }

  CommunicationTime time;
  bnorm::Sequential<T> net = build_network<T>();
  if (distributed) {
    const auto sync = std::make_shared<TimedStatisticsSync<T>>(world, time, options.split_wait);
    dist::for_each_batch_norm(net, [&](bnorm::BatchNorm<T>& norm) { norm.set_statistics_sync(sync); });
    dist::broadcast_parameters(net, world);
  }
  auto parameters = net.parameters();
  dist::GradientAllReduce<T> one_buffer(parameters, world);
  const bool per_parameter = options.gradients == "per-parameter";
  bnorm::SoftmaxCrossEntropy<T> loss;
  bnorm::SGD<T> optimizer(parameters, {.lr = T(0.01), .momentum = T(0.9)});

  std::vector<double> step_seconds;
  for (int step = 0; step < options.warmup_steps + options.steps; ++step) {
    if (step == options.warmup_steps) {
      time = CommunicationTime{};
      world.barrier();  // everyone starts the measured steps together
    }
    const double start = MPI_Wtime();
    const int b = step % batch_count;
    loss.forward(net.forward(inputs[b], bnorm::Mode::train), labels[b]);
    net.backward(loss.backward());
    if (distributed) {
      Stopwatch watch(time.gradients, time.wait, world.handle(), options.split_wait);
      if (per_parameter)
        dist::all_reduce_gradients(parameters, world);
      else
        one_buffer.average();
    }
    optimizer.step();
    if (step >= options.warmup_steps) step_seconds.push_back(MPI_Wtime() - start);
  }

  // Per process: mean step time and communication; then averaged over processes.
  double total = 0;
  for (double seconds : step_seconds) total += seconds;
  double sums[7] = {total,          time.total(),     time.wait, time.bn_forward,
                    time.bn_backward, time.gradients, median(step_seconds)};
  world.all_reduce_sum(std::span<double>(sums));
  const double per_step_ms = 1e3 / (options.steps * world.size());
  if (world.rank() == 0)
    std::printf("processes %d  %s  %s  batch %lld (%lld per process)  steps %d  "
                "step_ms mean %.3f median %.3f  mpi_ms %.3f (wait %.3f, bn_forward %.3f, "
                "bn_backward %.3f, gradients %.3f)  mpi_share %.1f%%\n",
                world.size(), options.use_double ? "double" : "float",
                options.local ? "local (no MPI calls)"
                              : (per_parameter ? "gradients per-parameter"
                                               : "gradients one-buffer"),
                static_cast<long long>(options.batch_size), static_cast<long long>(count),
                options.steps, sums[0] * per_step_ms, sums[6] * 1e3 / world.size(),
                sums[1] * per_step_ms, sums[2] * per_step_ms, sums[3] * per_step_ms,
                sums[4] * per_step_ms, sums[5] * per_step_ms, 100.0 * sums[1] / sums[0]);
}

}  // namespace

int main(int argc, char** argv) {
  dist::Environment mpi(argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  Options options;
  CLI::App app{"Time per data-parallel training step of bnorm's MLP, and its share in MPI."};
  app.add_option("--steps", options.steps, "Measured steps")->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--warmup", options.warmup_steps, "Unmeasured steps first")
      ->check(CLI::Range(0, 1000000))->capture_default_str();
  app.add_option("--batch", options.batch_size, "Global batch, split across processes")
      ->check(CLI::Range(Index{2}, Index{1} << 20))->capture_default_str();
  app.add_option("--gradients", options.gradients,
                 "one-buffer: one MPI_Allreduce per step; per-parameter: one per parameter")
      ->check(CLI::IsMember({"one-buffer", "per-parameter"}))->capture_default_str();
  app.add_flag("--local", options.local, "Plain single-process steps, no MPI calls (1 process)");
  app.add_flag("--split-wait", options.split_wait,
               "Wait at a barrier before each MPI call and report that wait apart");
  app.add_flag("--double", options.use_double, "double instead of float");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return rank == 0 ? app.exit(error) : (error.get_exit_code() == 0 ? 0 : 1);
  }
  try {
    const dist::Communicator world;
    if (options.use_double)
      run<double>(options, world);
    else
      run<float>(options, world);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bench_distributed (process %d): error: %s\n", rank, error.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  return 0;
}
