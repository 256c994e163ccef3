// The three products of a Dense layer at the flagship MLP's shapes, in GFLOP/s, for Eigen's
// product (as compiled by this build: SSE2 in a default build, AVX-512 under -march=native)
// and for each variant of bnorm's packed GEMM (core/gemm/) this processor runs. Issue 10:
// the default build must come close to the native one.
//
//   gemm/<implementation>/<product>/<inputs>x<outputs>/<batch>
//     implementation  eigen | baseline | avx2 | avx512
//     product         forward  y = W x         (outputs x batch, depth inputs)
//                     weight   dW = dy x^T     (outputs x inputs, depth batch)
//                     input    dx = W^T dy     (inputs x batch, depth outputs)
//
// On a shared machine, run with --benchmark_enable_random_interleaving=true and repetitions
// so that every implementation sees the same load; compare medians.
#include <benchmark/benchmark.h>

#include <bnorm/core/gemm.hpp>

#include <string>

#include "bnorm_benchmarks.hpp"

namespace {

using bnorm::Index;
using bnorm::Matrix;
using bnorm::detail::Isa;

enum class Product { forward, weight, input };

struct Operands {
  Matrix<float> weight, x, dy, y, weight_grad, input_grad;
  Operands(Index inputs, Index outputs, Index batch)
      : weight(Matrix<float>::Random(outputs, inputs)),
        x(Matrix<float>::Random(inputs, batch)),
        dy(Matrix<float>::Random(outputs, batch)),
        y(outputs, batch),
        weight_grad(outputs, inputs),
        input_grad(inputs, batch) {}
};

double flops(Index inputs, Index outputs, Index batch) {
  return 2.0 * double(inputs) * double(outputs) * double(batch);
}

void eigen_product(benchmark::State& state, Product product, Index inputs, Index outputs,
                   Index batch) {
  Operands o(inputs, outputs, batch);
  for (auto _ : state) {
    switch (product) {
      case Product::forward: o.y.noalias() = o.weight * o.x; break;
      case Product::weight: o.weight_grad.noalias() = o.dy * o.x.transpose(); break;
      case Product::input: o.input_grad.noalias() = o.weight.transpose() * o.dy; break;
    }
    benchmark::ClobberMemory();
  }
  bnorm_bench::set_flops_counter(state, flops(inputs, outputs, batch));
}

void bnorm_product(benchmark::State& state, Isa isa, Product product, Index inputs,
                   Index outputs, Index batch) {
  bnorm::detail::force_isa(isa);
  Operands o(inputs, outputs, batch);
  bnorm::detail::Gemm<float> gemm;
  for (auto _ : state) {
    switch (product) {
      case Product::forward: gemm.assign(o.y, o.weight, o.x); break;
      case Product::weight: gemm.assign(o.weight_grad, o.dy, o.x.transpose()); break;
      case Product::input: gemm.assign(o.input_grad, o.weight.transpose(), o.dy); break;
    }
    benchmark::ClobberMemory();
  }
  bnorm_bench::set_flops_counter(state, flops(inputs, outputs, batch));
  bnorm::detail::force_isa(std::nullopt);
}

const bool registered = [] {
  const std::pair<const char*, Product> products[] = {
      {"forward", Product::forward}, {"weight", Product::weight}, {"input", Product::input}};
  for (auto [inputs, outputs] : {std::pair<Index, Index>{784, 256}, {256, 256}}) {
    for (Index batch : {Index{64}, Index{256}}) {
      for (auto [product_name, product] : products) {
        const std::string shape = "/" + std::string(product_name) + "/" + std::to_string(inputs) +
                                  "x" + std::to_string(outputs) + "/" + std::to_string(batch);
        bnorm_bench::configure(benchmark::RegisterBenchmark(
            ("gemm/eigen" + shape).c_str(), eigen_product, product, inputs, outputs, batch));
        for (Isa isa : bnorm::detail::every_isa) {
          if (!bnorm::detail::isa_supported(isa)) continue;
          const std::string name =
              "gemm/" + std::string(bnorm::detail::isa_name(isa)) + shape;
          bnorm_bench::configure(benchmark::RegisterBenchmark(name.c_str(), bnorm_product, isa,
                                                              product, inputs, outputs, batch));
        }
      }
    }
  }
  return true;
}();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  bnorm_bench::add_build_context();
  benchmark::AddCustomContext("gemm_isa_best", std::string(bnorm::detail::isa_name(
                                                   bnorm::detail::best_isa())));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
