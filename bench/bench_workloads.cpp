// The six workloads of the performance issue in bnorm, and the machine's limits measured in
// the same run (memory bandwidth, Eigen's sgemm rate), so that bench/report.py can give each
// workload's ratio to its best peer and to what the machine can do.
//
//   bnorm/bn_small, bnorm/bn_large   BatchNorm train forward+backward (bytes/s)
//   bnorm/bn_eval                    BatchNorm eval forward (bytes/s)
//   bnorm/mlp64, bnorm/mlp256        one MLP training step (GEMM FLOP/s)
//   bnorm/infer1                     the MLP in eval mode, one example (GEMM FLOP/s)
//   limits/...                       memory bandwidth (DRAM and cache), float32 FMA peak,
//                                    Eigen's sgemm rate
//
// Shapes and counted work: workloads.hpp. Run it through bench/run.sh.
#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include "bnorm_benchmarks.hpp"

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace {

using namespace bnorm_bench;

#if !defined(BNORM_BENCH_THREADED)  // the machine's limits are measured on one thread only
// Memory: 256 MiB is far beyond any cache, so those are DRAM rates; the small sizes stay in
// cache as the working sets of bn_small (5 MiB) and infer1 (the MLP's 1.3 MB of weights) do.
constexpr Index dram_floats = Index{64} << 20;
constexpr Index cached_floats = Index{512} << 10;  // 2 MiB
constexpr Index mlp_weight_floats =
    mlp_inputs * mlp_hidden + (mlp_blocks - 1) * mlp_hidden * mlp_hidden + mlp_hidden * mlp_classes;

// Bytes counted as the workloads count them: a read and a write of each float.
void copy_bandwidth(benchmark::State& state, Index floats) {
  const Eigen::VectorXf source = Eigen::VectorXf::Random(floats);
  Eigen::VectorXf target = Eigen::VectorXf::Zero(floats);
  for (auto _ : state) {
    target = source;
    benchmark::DoNotOptimize(target.data());
    benchmark::ClobberMemory();
  }
  set_bytes_processed(state, 2.0 * sizeof(float) * static_cast<double>(floats));
}

#if defined(__AVX__)
// A copy whose stores bypass the cache: no read of the target's lines before writing them
// (write-allocate), so up to a third less traffic than `copy` for output that is not read
// back soon. The ceiling for a BatchNorm that streams its output this way.
void streaming_copy_bandwidth(benchmark::State& state, Index floats) {
  const Eigen::VectorXf source = Eigen::VectorXf::Random(floats);
  Eigen::VectorXf target = Eigen::VectorXf::Zero(floats);  // 32-byte aligned under AVX
  for (auto _ : state) {
    for (Index i = 0; i + 8 <= floats; i += 8)
      _mm256_stream_ps(target.data() + i, _mm256_loadu_ps(source.data() + i));
    _mm_sfence();
    benchmark::DoNotOptimize(target.data());
    benchmark::ClobberMemory();
  }
  set_bytes_processed(state, 2.0 * sizeof(float) * static_cast<double>(floats));
}
#endif

void read_bandwidth(benchmark::State& state, Index floats) {
  const Eigen::VectorXf source = Eigen::VectorXf::Random(floats);
  for (auto _ : state) benchmark::DoNotOptimize(source.sum());
  set_bytes_processed(state, 1.0 * sizeof(float) * static_cast<double>(floats));
}

// Z (m x n) = W (m x k) * X (k x n): a Dense forward with m outputs, k inputs, batch n.
void eigen_sgemm(benchmark::State& state, Index m, Index n, Index k) {
  const Eigen::MatrixXf weight = Eigen::MatrixXf::Random(m, k);
  const Eigen::MatrixXf input = Eigen::MatrixXf::Random(k, n);
  Eigen::MatrixXf output(m, n);
  for (auto _ : state) {
    output.noalias() = weight * input;
    benchmark::DoNotOptimize(output.data());
    benchmark::ClobberMemory();
  }
  set_flops_counter(state, 2.0 * static_cast<double>(m * n * k));
}

#if defined(__FMA__)
// The core's float32 peak for this build's widest vectors: independent chains of fused
// multiply-adds, enough of them to cover the FMA latency on every FMA unit.
#if defined(__AVX512F__)
using FmaVector = __m512;
constexpr int fma_lanes = 16;
inline FmaVector fma_set(float value) { return _mm512_set1_ps(value); }
inline FmaVector fma(FmaVector a, FmaVector b, FmaVector c) { return _mm512_fmadd_ps(a, b, c); }
#else
using FmaVector = __m256;
constexpr int fma_lanes = 8;
inline FmaVector fma_set(float value) { return _mm256_set1_ps(value); }
inline FmaVector fma(FmaVector a, FmaVector b, FmaVector c) { return _mm256_fmadd_ps(a, b, c); }
#endif

void fma_peak(benchmark::State& state) {
  constexpr int chains = 12, rounds = 4096;
  FmaVector sums[chains];
  for (int chain = 0; chain < chains; ++chain) sums[chain] = fma_set(static_cast<float>(chain));
  const FmaVector factor = fma_set(0.999f), offset = fma_set(0.001f);
  for (auto _ : state) {
    for (int round = 0; round < rounds; ++round)
      for (int chain = 0; chain < chains; ++chain) sums[chain] = fma(sums[chain], factor, offset);
    for (auto& sum : sums) benchmark::DoNotOptimize(sum);
  }
  set_flops_counter(state, 2.0 * fma_lanes * chains * rounds);
}
#endif
#endif  // !BNORM_BENCH_THREADED

#if defined(BNORM_BENCH_THREADED)
// The opt-in to several cores (bnorm::openmp): the six workloads on OMP_NUM_THREADS threads,
// timed by the wall clock (CPU time would add up the threads).
void register_benchmarks() {
  auto wall = [](benchmark::internal::Benchmark* benchmark) {
    benchmark->UseRealTime()->Unit(benchmark::kMicrosecond);
  };
  wall(benchmark::RegisterBenchmark("bnorm_threads/bn_small", batch_norm_train, bn_small));
  wall(benchmark::RegisterBenchmark("bnorm_threads/bn_large", batch_norm_train, bn_large));
  wall(benchmark::RegisterBenchmark("bnorm_threads/bn_eval", batch_norm_eval, bn_eval));
  wall(benchmark::RegisterBenchmark("bnorm_threads/mlp64", mlp_train_step, mlp64_batch));
  wall(benchmark::RegisterBenchmark("bnorm_threads/mlp256", mlp_train_step, mlp256_batch));
  wall(benchmark::RegisterBenchmark("bnorm_threads/infer1", mlp_inference));
}
#else
void register_benchmarks() {
  configure(benchmark::RegisterBenchmark("bnorm/bn_small", batch_norm_train, bn_small));
  configure(benchmark::RegisterBenchmark("bnorm/bn_large", batch_norm_train, bn_large));
  configure(benchmark::RegisterBenchmark("bnorm/bn_eval", batch_norm_eval, bn_eval));
  configure(benchmark::RegisterBenchmark("bnorm/mlp64", mlp_train_step, mlp64_batch));
  configure(benchmark::RegisterBenchmark("bnorm/mlp256", mlp_train_step, mlp256_batch));
  configure(benchmark::RegisterBenchmark("bnorm/infer1", mlp_inference));
#if defined(BNORM_HAS_FOLD)
  configure(benchmark::RegisterBenchmark("bnorm/infer1_folded", mlp_inference_folded));
#endif
  configure(benchmark::RegisterBenchmark("limits/copy_256MiB", copy_bandwidth, dram_floats));
#if defined(__AVX__)
  configure(benchmark::RegisterBenchmark("limits/streaming_copy_256MiB", streaming_copy_bandwidth,
                                         dram_floats));
#endif
  configure(benchmark::RegisterBenchmark("limits/read_256MiB", read_bandwidth, dram_floats));
  configure(benchmark::RegisterBenchmark("limits/copy_2MiB", copy_bandwidth, cached_floats));
  configure(
      benchmark::RegisterBenchmark("limits/read_mlp_weights", read_bandwidth, mlp_weight_floats));
#if defined(__FMA__)
  configure(benchmark::RegisterBenchmark("limits/fma_peak", fma_peak));
#endif
  configure(benchmark::RegisterBenchmark("limits/sgemm_256x64x784", eigen_sgemm, 256, 64, 784));
  configure(benchmark::RegisterBenchmark("limits/sgemm_256x256x256", eigen_sgemm, 256, 256, 256));
  // The shape of mlp64's first weight gradient, dW (256 x 784) = dy (256 x 64) * x^T.
  configure(benchmark::RegisterBenchmark("limits/sgemm_256x784x64", eigen_sgemm, 256, 784, 64));
}
#endif

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  add_build_context();
  register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
