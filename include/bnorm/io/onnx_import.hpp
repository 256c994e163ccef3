// ONNX graph -> Sequential: the translation behind bnorm::load_onnx (onnx.hpp).
//
// Accepted: a graph with one input [batch, features] and one output, whose compute nodes
// form a chain (each node's data input is the previous node's output, used by no one else)
// of these operators, as torch.onnx.export writes an nn.Sequential (opsets 9 to 17):
//   Gemm (alpha = 1, transA = 0, beta = 1 or no C; B as [out, in] with transB = 1 or as
//        [in, out])                                            -> Dense
//   MatMul [in, out], alone or followed by Add of an [out] bias -> Dense (no bias / bias)
//   BatchNormalization in inference mode                       -> BatchNorm (see below)
//   Relu, LeakyRelu, Sigmoid, Tanh, Identity                   -> ReLU, LeakyReLU, ...
//   Dropout (ratio as an attribute before opset 12, an input from 12) -> Dropout(ratio)
//   Flatten of the 2-D activations (axis 1, or -1)             -> nothing: a no-op
// Weights come from initializers, Constant nodes, or Identity nodes of either (torch
// shares equal initializers that way, e.g. an untouched BatchNorm's weight and running_var).
// Float and double tensors both convert to T (a double model loads as float, rounded once).
// Loading draws nothing from bnorm::default_generator(): a Dropout's mask stream is seeded
// with its layer index.
//
// BatchNormalization: epsilon and momentum are floats in ONNX; the importer takes the
// shortest decimal of each (detail::shortest_decimal) and PyTorch's momentum is 1 minus
// ONNX's, so PyTorch's eps = 1e-5, momentum = 0.1 come back exactly. ONNX has no
// num_batches_tracked: it starts at 0. A node in training mode (training_mode = 1 from
// opset 14; before, more than one output) is refused: its output depends on the batch.
#pragma once

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../layers/batch_norm.hpp"
#include "../layers/dense.hpp"
#include "../layers/dropout.hpp"
#include "../layers/identity.hpp"
#include "../layers/leaky_relu.hpp"
#include "../layers/relu.hpp"
#include "../layers/sigmoid.hpp"
#include "../layers/tanh.hpp"
#include "../model/sequential.hpp"
#include "onnx_values.hpp"

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace bnorm::detail {

// The opsets whose operator definitions the translation follows.
inline constexpr std::int64_t onnx_min_opset = 9;
inline constexpr std::int64_t onnx_max_opset = 17;

template <class T>
class OnnxImporter {
 public:
  // `source` names the file in every message.
  OnnxImporter(const onnx::ModelProto& model, std::string source)
      : model_(model), graph_(model.graph()), source_(std::move(source)) {}

  Sequential<T> translate() {
    read_opset();
    collect_constants();
    const std::string input = read_input();
    const std::string output = read_output();
    std::string current = input;
    std::set<int> visited;
    while (current != output) {
      const int index = only_consumer(current);
      if (!visited.insert(index).second)
        fail_node(index, "is reached twice: the graph has a cycle");
      current = translate_node(index, visited);
    }
    for (int i = 0; i < graph_.node_size(); ++i)
      if (!visited.count(i) && !constant_nodes_.count(i))
        fail_node(i, "is not on the chain from the graph's input '", input, "' to its output '",
                  output, "'; bnorm reads a graph that is one chain of layers");
    if (!output_features_.empty() && features_ >= 0)
      require(output_features_ == std::to_string(features_), source_, ": the graph's output '",
              output, "' declares ", output_features_, " features but the chain gives ", features_);
    if (network_.empty()) network_.add(Identity<T>());  // a graph of only no-ops
    return std::move(network_);
  }

 private:
  template <class... Parts>
  [[noreturn]] void fail_node(int index, const Parts&... parts) const {
    fail(source_, ": ", node_label(index), " ", parts...);
  }
  std::string node_label(int index) const {
    const auto& node = graph_.node(index);
    return "node " + std::to_string(index) + " '" + node.name() + "' (" + node.op_type() + ")";
  }

  void read_opset() {
    for (const auto& opset : model_.opset_import())
      if (opset.domain().empty() || opset.domain() == "ai.onnx") opset_ = opset.version();
    require(opset_ >= onnx_min_opset && opset_ <= onnx_max_opset, source_,
            ": the model imports ONNX opset ", opset_, "; bnorm reads opsets ", onnx_min_opset,
            " to ", onnx_max_opset);
  }

  void collect_constants() {
    for (const auto& initializer : graph_.initializer())
      constants_[initializer.name()] = std::make_shared<const OnnxTensor>(
          read_onnx_tensor(initializer, source_ + ": initializer '" + initializer.name() + "'"));
    // Constant and Identity-of-a-constant nodes, in graph order (ONNX sorts nodes
    // topologically, so an Identity comes after what it copies).
    for (int i = 0; i < graph_.node_size(); ++i) {
      const auto& node = graph_.node(i);
      if (node.op_type() == "Constant") {
        const auto* value = find_attribute(node, "value");
        if (!value || value->type() != onnx::AttributeProto_AttributeType_TENSOR ||
            node.output_size() != 1)
          fail_node(i, "has no tensor 'value' with one output; bnorm reads Constant nodes "
                       "that hold a tensor");
        constants_[node.output(0)] = std::make_shared<const OnnxTensor>(
            read_onnx_tensor(value->t(), source_ + ": " + node_label(i)));
        constant_nodes_.insert(i);
      } else if (node.op_type() == "Identity" && node.input_size() == 1 &&
                 node.output_size() == 1 && constants_.count(node.input(0))) {
        // Shared, not copied: a file of many Identity nodes of one tensor must not make
        // the loader allocate that tensor once per node.
        constants_[node.output(0)] = constants_.at(node.input(0));
        constant_nodes_.insert(i);
      }
    }
    // Who reads each value, found once: the chain is then followed in linear time, however
    // many nodes a file holds.
    for (int i = 0; i < graph_.node_size(); ++i)
      for (const auto& input : graph_.node(i).input()) {
        auto& readers = readers_[input];
        if (readers.empty() || readers.back() != i) readers.push_back(i);
      }
  }

  // The one graph input that is not an initializer (older exports list those as inputs).
  std::string read_input() {
    std::vector<const onnx::ValueInfoProto*> inputs;
    for (const auto& input : graph_.input())
      if (!constants_.count(input.name())) inputs.push_back(&input);
    require(inputs.size() == 1, source_, ": the graph has ", inputs.size(),
            " data inputs; bnorm reads a graph with one");
    const auto& info = *inputs.front();
    require(info.type().has_tensor_type(), source_, ": the graph's input '", info.name(),
            "' is not a tensor");
    {
      const auto& tensor = info.type().tensor_type();
      const int type = tensor.elem_type();
      require(type == onnx::TensorProto_DataType_FLOAT || type == onnx::TensorProto_DataType_DOUBLE,
              source_, ": the graph's input '", info.name(), "' is ", onnx_type_name(type),
              "; bnorm reads float and double models");
      if (tensor.has_shape()) {
        require(tensor.shape().dim_size() == 2, source_, ": the graph's input '", info.name(),
                "' has ", tensor.shape().dim_size(),
                " dimensions; bnorm reads [batch, features] inputs");
        const auto& dim = tensor.shape().dim(1);
        if (dim.has_dim_value()) {
          require(dim.dim_value() > 0, source_, ": the graph's input '", info.name(),
                  "' has ", dim.dim_value(), " features");
          features_ = dim.dim_value();
        }
      }
    }
    return info.name();
  }

  std::string read_output() {
    require(graph_.output_size() == 1, source_, ": the graph has ", graph_.output_size(),
            " outputs; bnorm reads a graph with one");
    const auto& info = graph_.output(0);
    if (info.type().has_tensor_type() && info.type().tensor_type().has_shape()) {
      const auto& shape = info.type().tensor_type().shape();
      require(shape.dim_size() == 2, source_, ": the graph's output '", info.name(), "' has ",
              shape.dim_size(), " dimensions; bnorm writes [batch, features] outputs");
      if (shape.dim(1).has_dim_value()) output_features_ = std::to_string(shape.dim(1).dim_value());
    }
    return info.name();
  }

  // The index of the one compute node that reads `value`.
  int only_consumer(const std::string& value) const {
    std::vector<int> readers;
    if (const auto found = readers_.find(value); found != readers_.end())
      for (const int i : found->second)
        if (!constant_nodes_.count(i)) readers.push_back(i);
    if (readers.size() == 1) return readers.front();
    if (readers.empty())
      fail(source_, ": nothing reads '", value, "', and it is not the graph's output: the "
                    "chain of layers breaks there");
    fail(source_, ": '", value, "' is read by ", readers.size(), " nodes (", node_label(readers[0]),
         " and ", node_label(readers[1]), "); bnorm reads a graph that is one chain of layers");
  }

  // Optional input `position` of node `index`, which must be a constant, or nullptr when
  // it is absent (missing, or "": ONNX's name for an absent optional input).
  const OnnxTensor* optional_constant_input(int index, int position, const char* role) const {
    const auto& node = graph_.node(index);
    if (position >= node.input_size() || node.input(position).empty()) return nullptr;
    const auto found = constants_.find(node.input(position));
    if (found == constants_.end())
      fail_node(index, "takes its ", role, " from '", node.input(position),
                "', which is not an initializer or a Constant; bnorm reads weights stored in "
                "the file");
    return found->second.get();
  }
  // A required input: absent ("" or missing) is an error, never a null tensor.
  const OnnxTensor& constant_input(int index, int position, const char* role) const {
    const OnnxTensor* tensor = optional_constant_input(index, position, role);
    if (!tensor)
      fail_node(index, "has no ", role, " (input ", position, " is ",
                position < graph_.node(index).input_size() ? "the empty name" : "missing",
                "); the operator requires it");
    return *tensor;
  }

  // The node's single data output; every other output must be unused (Dropout's mask).
  std::string data_output(int index) const {
    const auto& node = graph_.node(index);
    if (node.output_size() < 1 || node.output(0).empty()) fail_node(index, "has no output");
    for (int k = 1; k < node.output_size(); ++k)
      if (!node.output(k).empty() && is_read(node.output(k)))
        fail_node(index, "has its output '", node.output(k), "' read by another node; bnorm "
                         "reads only the first output");
    return node.output(0);
  }
  bool is_read(const std::string& value) const {
    if (readers_.count(value)) return true;
    for (const auto& output : graph_.output())
      if (output.name() == value) return true;
    return false;
  }

  void check_inputs(int index, int minimum, int maximum) const {
    const int count = graph_.node(index).input_size();
    if (count < minimum || count > maximum)
      fail_node(index, "has ", count, " inputs, not ", minimum,
                minimum == maximum ? std::string() : " to " + std::to_string(maximum));
  }

  // Checks that a layer reading `expected` features follows one that gives features_.
  void check_features(int index, std::int64_t expected, const std::string& what) {
    if (features_ >= 0 && features_ != expected)
      fail_node(index, "expects ", expected, " input features (", what, ") but its input has ",
                features_);
  }

  std::vector<std::int64_t> vector_shape(int index, const OnnxTensor& tensor, const char* role) const {
    // [n] or [1, n], as an nn.Linear bias may be stored.
    if (tensor.dims.size() == 1) return {tensor.dims[0]};
    if (tensor.dims.size() == 2 && tensor.dims[0] == 1) return {tensor.dims[1]};
    fail_node(index, "has a ", role, " of shape ", tensor.shape(), "; a vector was expected");
  }

  // Translates node `index`; returns the value the chain continues from.
  std::string translate_node(int index, std::set<int>& visited) {
    const auto& node = graph_.node(index);
    const std::string& op = node.op_type();
    const std::string where = source_ + ": " + node_label(index);
    if (!node.domain().empty() && node.domain() != "ai.onnx")
      fail_node(index, "is from the operator domain '", node.domain(), "'; bnorm reads ONNX's own operators");
    if (node.input_size() < 1 || node.input(0).empty()) fail_node(index, "has no data input");
    for (int k = 1; k < node.input_size(); ++k)
      if (node.input(k) == node.input(0))
        fail_node(index, "reads its data input twice; bnorm reads a graph that is one chain of layers");
    if (op == "Gemm") return translate_gemm(index, where);
    if (op == "MatMul") return translate_matmul(index, visited);
    if (op == "BatchNormalization") return translate_batch_norm(index, where);
    if (op == "Relu" || op == "Sigmoid" || op == "Tanh" || op == "Identity") {
      check_inputs(index, 1, 1);
      if (op == "Relu") network_.add(ReLU<T>());
      else if (op == "Sigmoid") network_.add(Sigmoid<T>());
      else if (op == "Tanh") network_.add(Tanh<T>());
      else network_.add(Identity<T>());
      return data_output(index);
    }
    if (op == "LeakyRelu") {
      check_inputs(index, 1, 1);
      const float alpha = float_attribute(node, "alpha", 0.01f, where);
      require(std::isfinite(alpha), where, ": alpha is ", alpha);
      network_.add(LeakyReLU<T>(static_cast<T>(shortest_decimal(alpha))));
      return data_output(index);
    }
    if (op == "Dropout") return translate_dropout(index, where);
    if (op == "Flatten") {
      check_inputs(index, 1, 1);
      const std::int64_t axis = int_attribute(node, "axis", 1, where);
      if (axis != 1 && axis != -1)
        fail_node(index, "has axis ", axis, "; on [batch, features] activations bnorm reads "
                         "only axis 1, the identity");
      return data_output(index);
    }
    fail_node(index, "is an unsupported operator '", op, "'; bnorm reads Gemm, MatMul, Add (a "
                     "MatMul's bias), BatchNormalization, Relu, LeakyRelu, Sigmoid, Tanh, "
                     "Dropout, Identity and Flatten");
  }

  std::string translate_gemm(int index, const std::string& where) {
    const auto& node = graph_.node(index);
    check_inputs(index, 2, 3);
    const float alpha = float_attribute(node, "alpha", 1.0f, where);
    const float beta = float_attribute(node, "beta", 1.0f, where);
    const std::int64_t trans_a = int_attribute(node, "transA", 0, where);
    const std::int64_t trans_b = int_attribute(node, "transB", 0, where);
    if (alpha != 1.0f) fail_node(index, "has alpha ", alpha, "; bnorm's Dense has alpha 1");
    if (trans_a != 0) fail_node(index, "has transA ", trans_a, "; bnorm reads A as [batch, features]");
    const OnnxTensor& b = constant_input(index, 1, "weight B");
    const OnnxTensor* c = optional_constant_input(index, 2, "bias C");
    if (c && beta != 1.0f) fail_node(index, "has beta ", beta, "; bnorm's Dense has beta 1");
    if (b.dims.size() != 2) fail_node(index, "has a weight B of shape ", b.shape(), "; a matrix was expected");
    // Dense's weight is [out, in]: B itself with transB = 1, B's transpose otherwise.
    const std::int64_t out = trans_b ? b.dims[0] : b.dims[1];
    const std::int64_t in = trans_b ? b.dims[1] : b.dims[0];
    add_dense(index, b, trans_b != 0, in, out, c);
    return data_output(index);
  }

  std::string translate_matmul(int index, std::set<int>& visited) {
    check_inputs(index, 2, 2);
    const OnnxTensor& b = constant_input(index, 1, "weight");
    if (b.dims.size() != 2) fail_node(index, "has a weight of shape ", b.shape(), "; a matrix was expected");
    std::string output = data_output(index);
    // MatMul then Add of a constant vector is a Linear with bias.
    const OnnxTensor* bias = nullptr;
    if (output != graph_.output(0).name()) {
      const int next = only_consumer(output);
      const auto& add = graph_.node(next);
      if (add.op_type() == "Add" && add.input_size() == 2 &&
          (add.domain().empty() || add.domain() == "ai.onnx")) {
        const int other = add.input(0) == output ? 1 : 0;
        const auto found = constants_.find(add.input(other));
        if (found == constants_.end())
          fail_node(next, "adds '", add.input(other), "', which is not an initializer or a "
                          "Constant; bnorm reads an Add only as the bias of a MatMul");
        bias = found->second.get();
        visited.insert(next);
        output = data_output(next);
      }
    }
    add_dense(index, b, false, b.dims[0], b.dims[1], bias);
    return output;
  }

  void add_dense(int index, const OnnxTensor& weight, bool out_by_in, std::int64_t in,
                 std::int64_t out, const OnnxTensor* bias) {
    if (in <= 0 || out <= 0) fail_node(index, "has an empty weight of shape ", weight.shape());
    check_features(index, in, "its weight's shape " + weight.shape());
    if (bias) {
      const auto shape = vector_shape(index, *bias, "bias");
      if (shape[0] != out)
        fail_node(index, "has a bias of shape ", bias->shape(), " for ", out, " outputs");
    }
    Generator unused;  // the weights are overwritten; bnorm::default_generator() is not drawn
    Dense<T> dense(in, out, bias ? Bias::learned : Bias::none, Init::gaussian(0.0), unused);
    for (Index o = 0; o < out; ++o)
      for (Index i = 0; i < in; ++i)
        dense.weight()(o, i) = static_cast<T>(out_by_in ? weight.values[std::size_t(o * in + i)]
                                                         : weight.values[std::size_t(i * out + o)]);
    if (bias)
      for (Index o = 0; o < out; ++o) dense.bias()(o) = static_cast<T>(bias->values[std::size_t(o)]);
    network_.add(std::move(dense));
    features_ = out;
  }

  std::string translate_batch_norm(int index, const std::string& where) {
    const auto& node = graph_.node(index);
    check_inputs(index, 5, 5);
    const float epsilon = float_attribute(node, "epsilon", 1e-5f, where);
    const float momentum = float_attribute(node, "momentum", 0.9f, where);
    const std::int64_t training = int_attribute(node, "training_mode", 0, where);
    int outputs = 0;
    for (const auto& output : node.output()) outputs += !output.empty();
    if (training != 0 || outputs > 1)
      fail_node(index, "is in training mode (", training != 0 ? "training_mode = 1" :
                       std::to_string(outputs) + " outputs", "): its output depends on the batch. "
                       "Export the model in eval mode (model.eval(), training=TrainingMode.EVAL)");
    const char* roles[] = {"scale", "bias B", "input_mean", "input_var"};
    const OnnxTensor* tensors[4];
    std::int64_t features = -1;
    for (int k = 0; k < 4; ++k) {
      tensors[k] = &constant_input(index, k + 1, roles[k]);
      if (tensors[k]->dims.size() != 1 || (features >= 0 && tensors[k]->dims[0] != features))
        fail_node(index, "has a ", roles[k], " of shape ", tensors[k]->shape(),
                  features >= 0 ? "; [" + std::to_string(features) + "] was expected" :
                                  std::string("; a vector was expected"));
      features = tensors[k]->dims[0];
    }
    if (features <= 0) fail_node(index, "normalizes ", features, " features");
    check_features(index, features, "its scale's shape");
    if (!(std::isfinite(epsilon) && epsilon > 0))
      fail_node(index, "has epsilon ", epsilon, "; bnorm needs a finite epsilon > 0");
    if (!(momentum >= 0 && momentum <= 1))
      fail_node(index, "has momentum ", momentum, "; ONNX's momentum is in [0, 1]");
    for (const double variance : tensors[3]->values)
      if (!(variance >= 0))
        fail_node(index, "has a running variance of ", variance, "; variances are >= 0");
    BatchNormOptions<T> options;
    options.eps = shortest_decimal(epsilon);
    options.momentum = pytorch_momentum(momentum);
    BatchNorm<T> layer(features, options);
    for (Index f = 0; f < features; ++f) {
      const auto at = std::size_t(f);
      layer.gamma()(f) = static_cast<T>(tensors[0]->values[at]);
      layer.beta()(f) = static_cast<T>(tensors[1]->values[at]);
      layer.running_mean()(f) = static_cast<T>(tensors[2]->values[at]);
      layer.running_var()(f) = static_cast<T>(tensors[3]->values[at]);
    }
    network_.add(std::move(layer));
    features_ = features;
    return data_output(index);
  }

  std::string translate_dropout(int index, const std::string& where) {
    const auto& node = graph_.node(index);
    double ratio = 0.5;
    if (opset_ < 12) {
      check_inputs(index, 1, 1);
      ratio = shortest_decimal(float_attribute(node, "ratio", 0.5f, where));
    } else {
      check_inputs(index, 1, 3);
      if (const OnnxTensor* given = optional_constant_input(index, 1, "ratio")) {
        if (given->values.size() != 1) fail_node(index, "has a ratio of shape ", given->shape());
        ratio = given->data_type == onnx::TensorProto_DataType_FLOAT
                    ? shortest_decimal(static_cast<float>(given->values[0]))
                    : given->values[0];
      }
      if (const OnnxTensor* training = optional_constant_input(index, 2, "training_mode"))
        if (training->values.size() != 1)
          fail_node(index, "has a training_mode of shape ", training->shape());
    }
    if (!(ratio >= 0 && ratio <= 1)) fail_node(index, "has ratio ", ratio, "; a ratio is in [0, 1]");
    // Seeded from its position, so loading draws nothing from bnorm::default_generator().
    network_.add(Dropout<T>(ratio, std::uint64_t(network_.size())));
    return data_output(index);
  }

  const onnx::ModelProto& model_;
  const onnx::GraphProto& graph_;
  std::string source_;
  std::int64_t opset_ = 0;
  std::map<std::string, std::shared_ptr<const OnnxTensor>> constants_;
  std::map<std::string, std::vector<int>> readers_;  // value -> the nodes reading it, in order
  std::set<int> constant_nodes_;
  std::int64_t features_ = -1;  // of the activations so far; -1 while unknown
  std::string output_features_;
  Sequential<T> network_;
};

}  // namespace bnorm::detail
