// A user's program: trains a tiny batch-normalized network to separate two blobs, then,
// where bnorm's build has them, round-trips a network through bnorm::safetensors and
// bnorm::onnx (safetensors.cpp, onnx.cpp).
#include <bnorm/bnorm.hpp>

#include <cstdio>

#if BNORM_CONSUMER_SAFETENSORS
bool safetensors_round_trip();
#endif
#if BNORM_CONSUMER_ONNX
bool onnx_round_trip();
#endif

namespace {
bool train_two_blobs() {
  bnorm::manual_seed(1);
  bnorm::Sequential<float> net{bnorm::Dense<float>(2, 8, bnorm::Bias::none),
                               bnorm::BatchNorm<float>(8), bnorm::ReLU<float>(),
                               bnorm::Dense<float>(8, 2)};
  bnorm::SGD<float> optimizer(net.parameters(), {.lr = 0.1f, .momentum = 0.9f});
  bnorm::SoftmaxCrossEntropy<float> loss;
  bnorm::Matrix<float> x = bnorm::Matrix<float>::Random(2, 64);
  bnorm::Labels labels(64);
  for (int j = 0; j < 64; ++j) {
    labels(j) = j % 2;
    x(0, j) += labels(j) ? 2.0f : -2.0f;
  }
  float value = 0;
  for (int step = 0; step < 100; ++step) {
    value = loss.forward(net.forward(x, bnorm::Mode::train), labels);
    net.backward(loss.backward());
    optimizer.step();
  }
  std::printf("final loss %.4f\n", value);
  return value < 0.1f;
}
}  // namespace

int main() {
  bool passed = train_two_blobs();
#if BNORM_CONSUMER_SAFETENSORS
  passed = safetensors_round_trip() && passed;
#endif
#if BNORM_CONSUMER_ONNX
  passed = onnx_round_trip() && passed;
#endif
  return passed ? 0 : 1;
}
