// The multilayer perceptrons of the examples, with and without batch normalization:
//
//   inputs -> [Dense -> (BatchNorm) -> activation -> (Dropout)] per hidden width -> Dense(outputs)
//
// With BatchNorm a hidden Dense has no bias (the batch mean would cancel it), as in the
// PyTorch reference scripts' build_mlp; without, every Dense has one. The output Dense
// always has a bias.
#pragma once

#include "float_network.hpp"  // bnorm.hpp, with the float types compiled once

#include <map>
#include <string>
#include <vector>

namespace examples {

enum class Activation { relu, sigmoid, tanh };

// For CLI11's CheckedTransformer and for printing.
inline const std::map<std::string, Activation> activation_names = {
    {"relu", Activation::relu}, {"sigmoid", Activation::sigmoid}, {"tanh", Activation::tanh}};

inline std::string to_string(Activation activation) {
  for (const auto& [name, value] : activation_names)
    if (value == activation) return name;
  return "?";
}

struct MlpOptions {
  bnorm::Index inputs = 28 * 28;
  std::vector<bnorm::Index> hidden;
  bnorm::Index outputs = 10;
  Activation activation = Activation::relu;
  bool batch_norm = false;
  bnorm::Init init = bnorm::Init::pytorch_default();
  double dropout = 0;  // probability of dropping a hidden unit; 0: no Dropout layers
};

// Layers are initialized from bnorm::default_generator(): call bnorm::manual_seed first.
inline bnorm::Sequential<float> build_mlp(const MlpOptions& options) {
  bnorm::Sequential<float> net;
  bnorm::Index inputs = options.inputs;
  for (bnorm::Index width : options.hidden) {
    net.add(bnorm::Dense<float>(inputs, width,
                                options.batch_norm ? bnorm::Bias::none : bnorm::Bias::learned,
                                options.init));
    if (options.batch_norm) net.add(bnorm::BatchNorm<float>(width));
    switch (options.activation) {
      case Activation::relu: net.add(bnorm::ReLU<float>()); break;
      case Activation::sigmoid: net.add(bnorm::Sigmoid<float>()); break;
      case Activation::tanh: net.add(bnorm::Tanh<float>()); break;
    }
    if (options.dropout > 0) net.add(bnorm::Dropout<float>(options.dropout));
    inputs = width;
  }
  net.add(bnorm::Dense<float>(inputs, options.outputs, bnorm::Bias::learned, options.init));
  return net;
}

}  // namespace examples
