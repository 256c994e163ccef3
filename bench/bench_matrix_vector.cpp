// Dense's product for one example (core/kernels.hpp, matrix_vector) at every 16-byte offset
// of the weights from a 64-byte boundary: a default build's Eigen puts the MLP's large
// weights at 16 mod 64 (glibc's large blocks), a -march=native build with AVX-512 at 0.
//
//   bnorm/matrix_vector/rows:R/depth:D/offset_bytes:B   y = W x, W R x D at B mod 64
//       the two shapes of bnorm/infer1's hidden layers (256 x 784 and 256 x 256); GEMM
//       FLOP/s as workloads.hpp counts them. The context names the kernel variant.
//
// What the batch-1 inference of bnorm/infer1 loses to the alignment of its weights, without
// the rest of the network and at any alignment (bench/infer1-2026-12-02 ran it).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "bnorm_benchmarks.hpp"

namespace {

using namespace bnorm_bench;

void matrix_vector(benchmark::State& state) {
  const Index rows = state.range(0), depth = state.range(1), offset = state.range(2);
  bnorm::Generator generator(4);
  const Matrix<float> weight = random_matrix(rows, depth, generator);
  const Matrix<float> x = random_matrix(depth, 1, generator);
  std::vector<float> storage(static_cast<std::size_t>(weight.size() + 32));
  const auto address = reinterpret_cast<std::uintptr_t>(storage.data());
  float* const w = storage.data() + (64 - address % 64) % 64 / sizeof(float) +
                   offset / static_cast<Index>(sizeof(float));
  std::copy(weight.data(), weight.data() + weight.size(), w);
  std::vector<float> y(static_cast<std::size_t>(rows));
  for (auto _ : state) {
    bnorm::detail::kernels::matrix_vector<float>(w, rows, rows, depth, x.data(), nullptr,
                                                 y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_flops_counter(state, 2.0 * static_cast<double>(rows * depth));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  add_build_context();
  auto* benchmark = configure(benchmark::RegisterBenchmark("bnorm/matrix_vector", matrix_vector));
  benchmark->ArgNames({"rows", "depth", "offset_bytes"});
  for (long depth : {784, 256})
    for (long offset : {0, 16, 32, 48}) benchmark->Args({mlp_hidden, depth, offset});
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
