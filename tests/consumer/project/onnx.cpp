// A user's program with bnorm::onnx: exports a network to ONNX and reads it back.
#include <bnorm/bnorm.hpp>
#include <bnorm/onnx.hpp>

#include <cstdio>
#include <filesystem>

bool onnx_round_trip() {
  bnorm::manual_seed(2);
  bnorm::Sequential<float> net{bnorm::Dense<float>(3, 4), bnorm::BatchNorm<float>(4),
                               bnorm::ReLU<float>(), bnorm::Dense<float>(4, 2)};
  const auto path = std::filesystem::temp_directory_path() / "bnorm_consumer.onnx";
  bnorm::save_onnx(net, path);
  auto loaded = bnorm::load_onnx<float>(path);
  std::filesystem::remove(path);
  const bnorm::Matrix<float> x = bnorm::Matrix<float>::Random(3, 5);
  const bool same = loaded.forward(x, bnorm::Mode::eval) == net.forward(x, bnorm::Mode::eval);
  std::printf("ONNX round trip: %s\n", same ? "identical outputs" : "DIFFERENT outputs");
  return same;
}
