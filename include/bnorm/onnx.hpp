// ONNX in and out: networks trained in PyTorch run in bnorm, and bnorm's networks run in any
// ONNX engine. Needs the CMake target bnorm::onnx (Debian's libonnx-dev and protobuf).
//
//   // Python: torch.onnx.export(model.eval(), x, "net.onnx", opset_version=17)
//   auto net = bnorm::load_onnx<float>("net.onnx");  // a Sequential<float>, ready to train on
//   bnorm::save_onnx(net, "out.onnx");              // atomic: old file or new file
//
// load_onnx<T>(path) reads what torch.onnx.export (1.13, opsets 9 to 17) writes for an
// nn.Sequential of Linear, BatchNorm1d, ReLU, LeakyReLU, Sigmoid, Tanh, Dropout, Identity
// and Flatten, exported in eval mode: the operators, their attributes and the constant
// forms are listed in io/onnx_import.hpp. The network gives the model's eval outputs, keeps
// BatchNorm's running statistics, eps and momentum (ONNX's momentum is 1 minus PyTorch's),
// and trains on like any other (num_batches_tracked starts at 0: ONNX does not hold it).
// A double model loads as Sequential<float> by rounding each value once, and a float model
// as Sequential<double> exactly.
//
// save_onnx(net, path) writes the network in eval mode at opset 17 (io/onnx_export.hpp),
// a file onnx.checker.check_model(full_check=True) accepts; load_onnx of it gives
// bit-identical eval outputs. Each layer describes its nodes next to its class
// (core/onnx_node.hpp); a layer type without onnx_nodes() (a user's own, unless it declares
// one) makes it throw, naming the layer.
//
// Errors: every problem throws bnorm::Error naming the file and, for a graph it cannot
// translate, the node (index, name) and its operator: a missing, empty or unparsable file,
// an unsupported operator, a graph that is not a chain, weights computed by the graph
// rather than stored in it, Gemm attributes a Dense cannot express, BatchNormalization in
// training mode, shapes that disagree between consecutive nodes.
// Exception guarantees: load_onnx changes nothing (it draws nothing from
// bnorm::default_generator()); save_onnx leaves `path` as it was on failure.
#pragma once

#include "core/error.hpp"
#include "io/atomic_file.hpp"
#include "io/open_file.hpp"
#include "io/onnx_export.hpp"
#include "io/onnx_import.hpp"
#include "model/sequential.hpp"

#include <onnx/onnx_pb.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <system_error>

namespace bnorm {

namespace detail {

inline std::string onnx_file_source(const std::filesystem::path& path) {
  return "ONNX file '" + path.string() + "'";
}

// Parses an ONNX model from the bytes of a file; `source` names it in messages.
inline onnx::ModelProto parse_onnx_model(const std::string& bytes, const std::string& source) {
  if (bytes.empty()) fail(source, ": is empty");
  if (bytes.size() > std::size_t(std::numeric_limits<int>::max()))
    fail(source, ": is ", bytes.size(), " bytes, more than protobuf reads (2 GiB)");
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes))
    fail(source, ": is not an ONNX model (protobuf could not parse its ", bytes.size(),
         " bytes; truncated or not ONNX?)");
  if (!model.has_graph()) fail(source, ": holds no graph; truncated or not ONNX?");
  return model;
}

template <class T>
Sequential<T> onnx_model_to_network(const onnx::ModelProto& model, const std::string& source) {
  return OnnxImporter<T>(model, source).translate();
}

}  // namespace detail

template <class T>
Sequential<T> load_onnx(const std::filesystem::path& path) {
  const std::string source = detail::onnx_file_source(path);
  const std::string bytes = detail::read_whole_file(path, source + ": ");
  return detail::onnx_model_to_network<T>(detail::parse_onnx_model(bytes, source), source);
}

template <class T>
void save_onnx(const Sequential<T>& net, const std::filesystem::path& path) {
  onnx::ModelProto model;
  try {
    model = detail::OnnxExporter<T>().translate(net);
  } catch (const Error& error) {
    detail::fail("cannot save '", path.string(), "': ", error.what());
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes))
    detail::fail("cannot save '", path.string(), "': protobuf could not serialize the model");
  write_file_atomically(path, bytes);
}

}  // namespace bnorm
