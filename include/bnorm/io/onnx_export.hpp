// Sequential -> ONNX graph: the translation behind bnorm::save_onnx (onnx.hpp).
//
// The graph is what an inference engine needs: the network in eval mode, at ONNX opset 17
// (IR version 8), input "input" [batch, features] and output "output" [batch, outputs] of
// T (float or double). Each layer says which nodes it becomes, next to its class, as plain
// data (core/onnx_node.hpp: Dense's Gemm, BatchNorm's BatchNormalization, ...); this file
// only writes them. Initializers carry PyTorch's state_dict names ("0.weight",
// "1.running_mean"), so a reader sees which layer each belongs to. What ONNX cannot hold is
// lost (num_batches_tracked, Dropout's random stream; see each layer's onnx_nodes()).
// Attributes of type FLOAT pass through float: values with at most 7 significant digits
// come back exactly (see onnx_values.hpp). A layer type without an ONNX export (a user's
// own, unless it declares onnx_nodes()) makes save_onnx throw, naming the layer.
#pragma once

#include "../core/error.hpp"
#include "../core/onnx_node.hpp"
#include "../core/types.hpp"
#include "../model/sequential.hpp"

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>

namespace bnorm::detail {

inline constexpr std::int64_t onnx_export_opset = 17;
inline constexpr std::int64_t onnx_export_ir_version = 8;

template <class T>
class OnnxExporter {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "ONNX models hold float or double");

 public:
  onnx::ModelProto translate(const Sequential<T>& network) {
    onnx::ModelProto model;
    model.set_ir_version(onnx_export_ir_version);
    model.set_producer_name("bnorm");
    auto* opset = model.add_opset_import();
    opset->set_domain("");
    opset->set_version(onnx_export_opset);
    graph_ = model.mutable_graph();
    graph_->set_name("bnorm");
    if (network.empty()) fail("save_onnx: the network has no layers");
    add_layers(network);
    // The last node writes the graph's output.
    graph_->mutable_node(graph_->node_size() - 1)->set_output(0, "output");
    set_value_info(graph_->add_input(), "input", input_features_);
    set_value_info(graph_->add_output(), "output", features_);
    return model;
  }

 private:
  static constexpr int data_type =
      std::is_same_v<T, float> ? onnx::TensorProto_DataType_FLOAT : onnx::TensorProto_DataType_DOUBLE;

  void add_layers(const Sequential<T>& network) {
    for (const OnnxNode& node : network.onnx_nodes()) {
      const std::string where = "save_onnx: layer " + node.path + " (" + node.layer + ")";
      if (!node.refusal.empty()) fail(where, " ", node.refusal);
      if (node.in_features >= 0) {
        if (input_features_ < 0 && features_ < 0) input_features_ = node.in_features;
        if (features_ >= 0 && features_ != node.in_features)
          fail(where, " reads ", node.in_features, " features but its input has ", features_);
      }
      add_node(node);
      if (node.out_features >= 0) features_ = node.out_features;
      else if (node.in_features >= 0) features_ = node.in_features;
    }
  }

  // A node reading the current value and its initializers; its output becomes the current value.
  void add_node(const OnnxNode& description) {
    auto* node = graph_->add_node();
    node->set_op_type(description.op);
    node->set_name("/" + description.path + "/" + description.op);
    node->add_input(current_);
    current_ = node->name() + "_output_0";
    node->add_output(current_);
    for (const OnnxInitializer& input : description.inputs) {
      auto* tensor = graph_->add_initializer();
      tensor->set_name(description.path + input.suffix);
      node->add_input(tensor->name());
      for (const auto dim : input.dims) tensor->add_dims(dim);
      if (input.as_double || std::is_same_v<T, double>) {
        tensor->set_data_type(onnx::TensorProto_DataType_DOUBLE);
        for (const double value : input.values) tensor->add_double_data(value);
      } else {
        tensor->set_data_type(onnx::TensorProto_DataType_FLOAT);
        for (const double value : input.values) tensor->add_float_data(static_cast<float>(value));
      }
    }
    for (const OnnxAttribute& description_attribute : description.attributes) {
      auto* attribute = node->add_attribute();
      attribute->set_name(description_attribute.name);
      if (description_attribute.type == OnnxAttribute::Type::integer) {
        attribute->set_type(onnx::AttributeProto_AttributeType_INT);
        attribute->set_i(static_cast<std::int64_t>(description_attribute.value));
      } else {
        attribute->set_type(onnx::AttributeProto_AttributeType_FLOAT);
        attribute->set_f(static_cast<float>(description_attribute.value));
      }
    }
  }

  // [batch, features]; an unknown feature count (a network of activations only) stays symbolic.
  static void set_value_info(onnx::ValueInfoProto* info, const char* name, Index features) {
    info->set_name(name);
    auto* tensor = info->mutable_type()->mutable_tensor_type();
    tensor->set_elem_type(data_type);
    auto* shape = tensor->mutable_shape();
    shape->add_dim()->set_dim_param("batch");
    if (features >= 0) shape->add_dim()->set_dim_value(features);
    else shape->add_dim()->set_dim_param("features");
  }

  onnx::GraphProto* graph_ = nullptr;
  std::string current_ = "input";
  Index input_features_ = -1, features_ = -1;
};

}  // namespace bnorm::detail
