// A user's program with bnorm::safetensors: a network saved as a PyTorch state_dict and loaded
// back into a fresh network gives the same outputs.
#include <bnorm/bnorm.hpp>
#include <bnorm/safetensors.hpp>

#include <cstdio>

bool safetensors_round_trip() {
  bnorm::manual_seed(2);
  bnorm::Sequential<float> net{bnorm::Dense<float>(3, 4, bnorm::Bias::none),
                               bnorm::BatchNorm<float>(4), bnorm::ReLU<float>(),
                               bnorm::Dense<float>(4, 2)};
  const bnorm::Matrix<float> x = bnorm::Matrix<float>::Random(3, 5);
  net.forward(x, bnorm::Mode::train);  // running statistics that differ from a fresh network's
  bnorm::save_safetensors(net, "consumer.safetensors");
  bnorm::Sequential<float> copy{bnorm::Dense<float>(3, 4, bnorm::Bias::none),
                                bnorm::BatchNorm<float>(4), bnorm::ReLU<float>(),
                                bnorm::Dense<float>(4, 2)};
  bnorm::load_safetensors(copy, "consumer.safetensors");
  const bool same = copy.forward(x, bnorm::Mode::eval) == net.forward(x, bnorm::Mode::eval);
  std::printf("safetensors round trip: %s\n", same ? "same outputs" : "DIFFERENT outputs");
  return same;
}
