// Writes the fuzzer's seed corpus: valid model files, float and double, covering every
// layer kind and option. Usage: make_seeds <folder>
#include "support/model_files.hpp"

#include <cstdio>

using namespace bnorm;
using namespace bnorm_test;

namespace {

template <class T>
void write_seeds(const std::filesystem::path& folder, const char* type) {
  const auto write = [&](const std::string& name, const Sequential<T>& net) {
    save(net, folder / (std::string(type) + "_" + name + ".bnorm"));
  };
  Generator init(1);
  write("empty", Sequential<T>());
  write("small", small_network<T>());
  write("every_layer", every_layer_network<T>());
  write("dense", Sequential<T>{Dense<T>(3, 2, Bias::learned, Init::xavier(), init),
                               Dense<T>(2, 1, Bias::none, Init::xavier(), init)});
  BatchNormOptions<T> options = batch_norm_options<T>(false, true, RunningAverage::cumulative, 2,
                                                      true, SmallBatch::use_running_statistics);
  BatchNormOptions<T> untracked;
  untracked.track_running_stats = false;
  write("batch_norm", Sequential<T>{BatchNorm<T>(2), BatchNorm<T>(2, options), BatchNorm<T>(1, untracked)});
  write("activations", Sequential<T>{ReLU<T>(), LeakyReLU<T>(T(0.3)), Sigmoid<T>(), Tanh<T>(),
                                     Identity<T>(), Dropout<T>(0.5, 9)});
  write("nested", Sequential<T>{Sequential<T>{Sequential<T>{ReLU<T>()}, Tanh<T>()}, Sequential<T>()});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <folder>\n", argv[0]);
    return 2;
  }
  const std::filesystem::path folder = argv[1];
  std::filesystem::create_directories(folder);
  write_seeds<float>(folder, "float");
  write_seeds<double>(folder, "double");
  return 0;
}
