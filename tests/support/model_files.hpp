// Networks, model files and folders for the tests of io/ (and the fuzzer's seed corpus).
#pragma once

#include <bnorm/bnorm.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "temp_dir.hpp"

namespace bnorm_test {

using namespace bnorm;

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), {});
}
inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

template <class T>
std::string save_bytes(const Sequential<T>& net) {
  std::ostringstream out(std::ios::binary);
  save(net, out);
  return out.str();
}
template <class T>
Sequential<T> load_bytes(const std::string& bytes) {
  std::istringstream in(bytes, std::ios::binary);
  return load<T>(in);
}

// A complete model file around `payload`, with a correct checksum: for records crafted by
// hand, and for damage the checksum must not hide from the parser. Version 1 by default:
// what bnorm writes for a network of built-in layers (version 2 only for registered ones).
inline std::string model_file(const std::string& payload, std::uint32_t scalar_tag,
                              std::uint32_t version = 1) {
  ByteWriter header;
  header.raw(detail::model_magic);
  header.u32(version);
  header.u32(scalar_tag);
  header.u64(payload.size());
  header.u32(detail::model_checksum(header.bytes(), payload));
  return header.bytes() + payload;
}
// The same file with its payload size and checksum made to fit whatever its bytes are now.
inline std::string with_valid_checksum(std::string bytes) {
  if (bytes.size() < detail::model_header_size) return bytes;
  ByteWriter fields;
  fields.u64(bytes.size() - detail::model_header_size);
  bytes.replace(16, 8, fields.bytes());
  ByteWriter checksum;
  checksum.u32(detail::model_checksum(bytes, std::string_view(bytes).substr(detail::model_header_size)));
  bytes.replace(detail::model_checksum_offset, 4, checksum.bytes());
  return bytes;
}

// Bit-for-bit equality (NaN payloads and -0 included).
template <class A, class B>
bool same_bits(const A& a, const B& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(*a.data()) * static_cast<std::size_t>(a.size())) == 0;
}

// A few training steps: running statistics, counters and Dropout's generators move on, and
// every parameter is set to values no constructor produces.
template <class T>
void train_a_little(Sequential<T>& net, Index inputs, Index batch = 8, int steps = 3) {
  Generator generator(99);
  for (auto& parameter : net.parameters())
    for (Index i = 0; i < parameter.size(); ++i)
      parameter.value().data()[i] = static_cast<T>(generator.normal(0.5, 1.0));
  for (int step = 0; step < steps; ++step) {
    Matrix<T> x(inputs, batch);
    for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<T>(generator.normal(1.0, 2.0));
    const Matrix<T>& y = net.forward(x, Mode::train);
    const Matrix<T> dy = Matrix<T>::Constant(y.rows(), y.cols(), T(0.1));
    net.backward(dy);
  }
}

template <class T>
BatchNormOptions<T> batch_norm_options(bool affine, bool track, RunningAverage average,
                                       Index ghost, bool renormalize, SmallBatch small) {
  BatchNormOptions<T> options;
  options.affine = affine;
  options.track_running_stats = track;
  options.running_average = average;
  options.virtual_batch_size = ghost;
  options.renormalize = renormalize;
  if (renormalize) {
    options.rmax = 2.5;
    options.dmax = 1.5;
  }
  options.small_batch = small;
  return options;
}

// Every built-in layer kind and every BatchNorm option, nested two deep, trained a little.
// 5 inputs, 3 outputs.
template <class T>
Sequential<T> every_layer_network() {
  Generator init(1);
  BatchNormOptions<T> light;
  light.momentum = 0.25;
  light.eps = 1e-3;
  light.affine = false;
  BatchNormOptions<T> untracked;
  untracked.track_running_stats = false;
  Sequential<T> innermost{
      Dense<T>(6, 6, Bias::learned, Init::xavier(), init),
      BatchNorm<T>(6, batch_norm_options<T>(true, true, RunningAverage::cumulative, 3, false,
                                            SmallBatch::use_running_statistics)),
      Sigmoid<T>()};
  Sequential<T> inner{
      Dense<T>(6, 6, Bias::none, Init::he(), init),
      BatchNorm<T>(6, batch_norm_options<T>(true, true, RunningAverage::exponential, 0, true,
                                            SmallBatch::error)),
      Tanh<T>(), std::move(innermost)};
  Sequential<T> net{Dense<T>(5, 8, Bias::learned, Init::pytorch_default(), init),
                    BatchNorm<T>(8),
                    ReLU<T>(),
                    Dense<T>(8, 6, Bias::none, Init::gaussian(0.1), init),
                    BatchNorm<T>(6, light),
                    LeakyReLU<T>(T(0.2)),
                    Dropout<T>(0.25, 7),
                    std::move(inner),
                    BatchNorm<T>(6, untracked),
                    Identity<T>(),
                    Dense<T>(6, 3, Bias::learned, Init::pytorch_default(), init)};
  train_a_little(net, 5);
  net.template layer<Dropout<T>>(6).generator().normal();  // leaves a spare normal pending
  return net;
}

// A small network for byte-by-byte damage: Dense, BatchNorm, an activation, Dropout.
template <class T>
Sequential<T> small_network() {
  Generator init(2);
  Sequential<T> net{Dense<T>(2, 2, Bias::learned, Init::pytorch_default(), init), BatchNorm<T>(2),
                    LeakyReLU<T>(T(0.1)), Dropout<T>(0.5, 3)};
  train_a_little(net, 2, 4, 1);
  return net;
}

}  // namespace bnorm_test
