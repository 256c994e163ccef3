// Networks that several tests train.
#pragma once

#include <bnorm/bnorm.hpp>

namespace bnorm_test {

// The flagship: 784 -> [Dense 256 without bias -> BatchNorm -> ReLU] x 3 -> Dense 10.
template <class T>
bnorm::Sequential<T> flagship_network() {
  bnorm::Sequential<T> net;
  bnorm::Index inputs = 784;
  for (int block = 0; block < 3; ++block) {
    net.add(bnorm::Dense<T>(inputs, 256, bnorm::Bias::none))
        .add(bnorm::BatchNorm<T>(256))
        .add(bnorm::ReLU<T>());
    inputs = 256;
  }
  net.add(bnorm::Dense<T>(256, 10));
  return net;
}

}  // namespace bnorm_test
