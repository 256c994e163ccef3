// Fuzz target for the ONNX reader (run as fuzz_onnx, fuzz_readers.cpp): the bytes parsed as
// an onnx::ModelProto and translated to Sequential<float> and Sequential<double>, as
// bnorm::load_onnx does. A bnorm::Error is the expected answer to a bad file; anything else
// (a crash, a sanitizer report, another exception, a leak, a timeout) is a finding. A graph
// that loads must also export, reload, and give bit-identical eval outputs. scripts/fuzz.sh
// seeds it with the committed PyTorch exports under tests/reference/onnx/.
#pragma once

#include <bnorm/onnx.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace bnorm_fuzz::onnx_target {

template <class T>
void load_and_check(const std::string& bytes) {
  bnorm::Sequential<T> net;
  try {
    net = bnorm::detail::onnx_model_to_network<T>(bnorm::detail::parse_onnx_model(bytes, "fuzz"),
                                                  "fuzz");
  } catch (const bnorm::Error&) {
    return;
  }
  onnx::ModelProto exported;
  try {
    exported = bnorm::detail::OnnxExporter<T>().translate(net);
  } catch (const bnorm::Error&) {
    std::abort();  // every layer the importer makes has an ONNX operator
  }
  std::string written;
  if (!exported.SerializeToString(&written)) std::abort();
  bnorm::Sequential<T> reloaded =
      bnorm::detail::onnx_model_to_network<T>(bnorm::detail::parse_onnx_model(written, "again"),
                                              "again");
  const auto& width = exported.graph().input(0).type().tensor_type().shape().dim(1);
  const bnorm::Index features = width.has_dim_value() ? bnorm::Index(width.dim_value()) : 3;
  if (features > 4096) return;  // a declared width with nothing to check it against
  bnorm::Matrix<T> x(features, 2);
  for (bnorm::Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<T>(0.25 * double(i % 7) - 0.5);
  const bnorm::Matrix<T> first = net.forward(x, bnorm::Mode::eval);
  const bnorm::Matrix<T>& second = reloaded.forward(x, bnorm::Mode::eval);
  if (first.rows() != second.rows() || first.cols() != second.cols() ||
      std::memcmp(first.data(), second.data(), sizeof(T) * std::size_t(first.size())) != 0)
    std::abort();
}

// One input; the entry point of fuzz_readers.cpp calls it.
inline int run(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  load_and_check<float>(bytes);
  load_and_check<double>(bytes);
  return 0;
}

}  // namespace bnorm_fuzz::onnx_target
