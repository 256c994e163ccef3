// Writes the fuzzers' generated seeds: valid model files, float and double, covering every
// layer kind and option, and checkpoints of the checkpoint target's training run before and
// after a few steps. Usage: make_seeds <model-file folder> <checkpoint folder>
#include "checkpoint_target.hpp"
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

template <class T>
void write_checkpoint_seeds(const std::filesystem::path& folder, const char* type) {
  bnorm_fuzz::checkpoint_target::Run<T> run;
  write_file(folder / (std::string(type) + "_untrained.ckpt"), run.save());
  run.train(6);  // past an epoch's end, the plateau's patience and its cooldown
  write_file(folder / (std::string(type) + "_trained.ckpt"), run.save());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <model-file folder> <checkpoint folder>\n", argv[0]);
    return 2;
  }
  const std::filesystem::path models = argv[1], checkpoints = argv[2];
  std::filesystem::create_directories(models);
  std::filesystem::create_directories(checkpoints);
  write_seeds<float>(models, "float");
  write_seeds<double>(models, "double");
  write_checkpoint_seeds<float>(checkpoints, "float");
  write_checkpoint_seeds<double>(checkpoints, "double");
  return 0;
}
