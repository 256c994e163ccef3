// How a layer appears in an ONNX graph, as plain data: io/onnx_export.hpp (the optional
// bnorm::onnx target) turns it into protobuf. So a layer describes its export next to its
// class, without depending on ONNX, and save_onnx needs no list of layer kinds.
//
// A layer type exports by declaring
//   std::vector<OnnxNode> onnx_nodes() const;
// the nodes it becomes in eval mode, in order, each reading the previous one's output (the
// first reads the layer's input). A node with a `refusal` says why the layer, as it is
// configured, cannot be exported (save_onnx then throws, naming it); a layer type without
// onnx_nodes() is refused the same way. A Sequential's nodes are its layers', in order.
#pragma once

#include "types.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace bnorm {

// An attribute of a node: INT or FLOAT (a double rounded to float where it is stored).
struct OnnxAttribute {
  enum class Type { integer, real };
  std::string name{};
  Type type = Type::real;
  double value = 0;
};

// A constant input of a node, stored as an initializer named "<layer path><suffix>"
// ("0.weight"), after the node's data input.
struct OnnxInitializer {
  std::string suffix{};
  std::vector<std::int64_t> dims{};  // ONNX's row-major order
  std::vector<double> values{};      // stored as the network's scalar type...
  bool as_double = false;            // ...or always as double (Dropout's ratio)
};

// Every member has a default, so that a layer names only the ones it sets ({.op = "Relu"}).
struct OnnxNode {
  std::string op{};                // the operator ("Gemm"); empty with a refusal
  std::vector<OnnxInitializer> inputs{};
  std::vector<OnnxAttribute> attributes{};
  Index in_features = -1;          // the features it reads; -1: any number
  Index out_features = -1;         // the features it writes; -1: as many as it reads
  std::string refusal{};           // non-empty: why the layer cannot be exported
  // Filled in by the tools: the layer's path below the exporting network ("1.0") and name.
  std::string path{}, layer{};
};

}  // namespace bnorm
