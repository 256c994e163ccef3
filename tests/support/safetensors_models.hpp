// The bnorm twins of the nn.Sequential models of tests/reference/make_safetensors.py, whose
// state_dicts are the fixtures tests/reference/safetensors/<name>_<float|double>.safetensors
// (for the tests and the fuzzer's seed corpus).
#pragma once

#include <bnorm/bnorm.hpp>

#include <string>

namespace bnorm_test {

inline const char* const safetensors_model_names[] = {"bn_after_linear", "bn_before_linear",
                                                      "one_input"};

// Throws std::invalid_argument for a name not in safetensors_model_names.
template <class T>
bnorm::Sequential<T> safetensors_model(const std::string& name) {
  using namespace bnorm;
  if (name == "bn_after_linear")
    return Sequential<T>{Dense<T>(4, 5), BatchNorm<T>(5), ReLU<T>(), Dense<T>(5, 3, Bias::none),
                         BatchNorm<T>(3), Tanh<T>()};
  if (name == "bn_before_linear")
    return Sequential<T>{BatchNorm<T>(4), Dense<T>(4, 3), LeakyReLU<T>(T(0.2)), Dropout<T>(0.3, 1),
                         Sequential<T>{Dense<T>(3, 3, Bias::none), Sigmoid<T>()}, Dense<T>(3, 2)};
  if (name == "one_input")  // Linear(1, 3): its weight is [3, 1], BatchNorm's [3]
    return Sequential<T>{Dense<T>(1, 3), BatchNorm<T>(3), ReLU<T>(), Dense<T>(3, 2)};
  throw std::invalid_argument("no safetensors test model named " + name);
}

}  // namespace bnorm_test
