// Sequential -> ONNX graph: the translation behind bnorm::save_onnx (onnx.hpp).
//
// The graph is what an inference engine needs: the network in eval mode, at ONNX opset 17
// (IR version 8), input "input" [batch, features] and output "output" [batch, outputs] of
// T (float or double). Initializers carry PyTorch's state_dict names ("0.weight",
// "1.running_mean"), so a reader sees which layer each belongs to.
//   Dense      -> Gemm(transB = 1), weight [out, in] and bias [out] (none without bias)
//   BatchNorm  -> BatchNormalization (training_mode 0), epsilon = float(eps),
//                 momentum = float(1 - momentum); running statistics as inputs
//   ReLU, LeakyReLU(slope), Sigmoid, Tanh, Identity -> Relu, LeakyRelu(alpha), Sigmoid, ...
//   Dropout(p) -> Dropout with ratio p (an identity in inference; kept so the file
//                 reloads as the same network)
//   Sequential -> its layers, in place
// What ONNX cannot hold is lost: num_batches_tracked, BatchNorm's options beyond eps and
// momentum (renormalization, ghost batches, the cumulative average; all alike in eval
// mode), Dropout's random stream. eps and momentum pass through float attributes: values
// with at most 7 significant digits come back exactly (see onnx_values.hpp). A layer type
// without an ONNX operator (a user's own) makes save_onnx throw, naming the layer.
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
    add_layers(network, "");
    // The last node writes the graph's output.
    graph_->mutable_node(graph_->node_size() - 1)->set_output(0, "output");
    set_value_info(graph_->add_input(), "input", input_features_);
    set_value_info(graph_->add_output(), "output", features_);
    return model;
  }

 private:
  static constexpr int data_type =
      std::is_same_v<T, float> ? onnx::TensorProto_DataType_FLOAT : onnx::TensorProto_DataType_DOUBLE;

  void add_layers(const Sequential<T>& network, const std::string& prefix) {
    for (std::size_t i = 0; i < network.size(); ++i) {
      const std::string name = prefix + std::to_string(i);
      if (const auto* nested = layer_if<Sequential<T>>(network, i)) add_layers(*nested, name + ".");
      else if (const auto* dense = layer_if<Dense<T>>(network, i)) add_dense(*dense, name);
      else if (const auto* norm = layer_if<BatchNorm<T>>(network, i)) add_batch_norm(*norm, name);
      else if (layer_if<ReLU<T>>(network, i)) add_node("Relu", name);
      else if (layer_if<Sigmoid<T>>(network, i)) add_node("Sigmoid", name);
      else if (layer_if<Tanh<T>>(network, i)) add_node("Tanh", name);
      else if (layer_if<Identity<T>>(network, i)) add_node("Identity", name);
      else if (const auto* leaky = layer_if<LeakyReLU<T>>(network, i)) {
        auto* alpha = add_node("LeakyRelu", name)->add_attribute();
        alpha->set_name("alpha");
        alpha->set_type(onnx::AttributeProto_AttributeType_FLOAT);
        alpha->set_f(static_cast<float>(leaky->slope()));
      } else if (const auto* dropout = layer_if<Dropout<T>>(network, i)) {
        auto* node = add_node("Dropout", name);
        add_initializer(name + ".ratio", {}, [&](auto& t) { t.add_double_data(dropout->p()); },
                        onnx::TensorProto_DataType_DOUBLE);
        node->add_input(name + ".ratio");
      } else {
        fail("save_onnx: layer ", name, " is ", network.layer_name(i),
             ", which has no ONNX operator; bnorm exports Dense, BatchNorm, ReLU, LeakyReLU, "
             "Sigmoid, Tanh, Identity, Dropout and nested Sequentials");
      }
    }
  }

  template <class L>
  static const L* layer_if(const Sequential<T>& network, std::size_t index) {
    return network.template holds<L>(index) ? &network.template layer<L>(index) : nullptr;
  }

  // A node reading the current value; its output becomes the current value.
  onnx::NodeProto* add_node(const char* op, const std::string& name) {
    auto* node = graph_->add_node();
    node->set_op_type(op);
    node->set_name("/" + name + "/" + op);
    node->add_input(current_);
    current_ = node->name() + "_output_0";
    node->add_output(current_);
    return node;
  }

  template <class Fill>
  void add_initializer(const std::string& name, std::initializer_list<std::int64_t> dims,
                       Fill&& fill, int type = data_type) {
    auto* tensor = graph_->add_initializer();
    tensor->set_name(name);
    tensor->set_data_type(type);
    for (const auto dim : dims) tensor->add_dims(dim);
    fill(*tensor);
  }

  template <class Derived>
  void add_values(const std::string& name, std::initializer_list<std::int64_t> dims,
                  const Eigen::DenseBase<Derived>& values) {
    add_initializer(name, dims, [&](onnx::TensorProto& tensor) {
      for (Index i = 0; i < values.size(); ++i) {
        if constexpr (std::is_same_v<T, float>) tensor.add_float_data(values(i));
        else tensor.add_double_data(values(i));
      }
    });
  }

  void check_features(const std::string& name, const std::string& layer, Index in) {
    if (input_features_ < 0 && features_ < 0) input_features_ = in;
    if (features_ >= 0 && features_ != in)
      fail("save_onnx: layer ", name, " (", layer, ") reads ", in, " features but its input has ",
           features_);
  }

  void add_dense(const Dense<T>& dense, const std::string& name) {
    check_features(name, dense.name(), dense.in_features());
    auto* node = add_node("Gemm", name);
    // Row-major [out, in] is the transpose of Eigen's column-major storage order.
    const Matrix<T> row_major = dense.weight().transpose();
    add_values(name + ".weight", {dense.out_features(), dense.in_features()},
               row_major.reshaped());
    node->add_input(name + ".weight");
    if (dense.has_bias()) {
      add_values(name + ".bias", {dense.out_features()}, dense.bias());
      node->add_input(name + ".bias");
    }
    auto* trans_b = node->add_attribute();
    trans_b->set_name("transB");
    trans_b->set_type(onnx::AttributeProto_AttributeType_INT);
    trans_b->set_i(1);
    features_ = dense.out_features();
  }

  void add_batch_norm(const BatchNorm<T>& norm, const std::string& name) {
    if (!norm.tracking())
      fail("save_onnx: layer ", name, " (", norm.name(), ") keeps no running statistics, so it "
           "normalizes with the batch's in eval mode too, which ONNX's BatchNormalization cannot");
    check_features(name, norm.name(), norm.features());
    auto* node = add_node("BatchNormalization", name);
    add_values(name + ".weight", {norm.features()}, norm.gamma());
    add_values(name + ".bias", {norm.features()}, norm.beta());
    add_values(name + ".running_mean", {norm.features()}, norm.running_mean());
    add_values(name + ".running_var", {norm.features()}, norm.running_var());
    for (const char* input : {".weight", ".bias", ".running_mean", ".running_var"})
      node->add_input(name + input);
    auto* epsilon = node->add_attribute();
    epsilon->set_name("epsilon");
    epsilon->set_type(onnx::AttributeProto_AttributeType_FLOAT);
    epsilon->set_f(static_cast<float>(norm.options().eps));
    auto* momentum = node->add_attribute();
    momentum->set_name("momentum");
    momentum->set_type(onnx::AttributeProto_AttributeType_FLOAT);
    momentum->set_f(static_cast<float>(1.0 - norm.options().momentum));
    features_ = norm.features();
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
