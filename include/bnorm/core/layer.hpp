// The layer contract, written once. Every bnorm layer implements it; a type of your own
// that implements it can be added to a Sequential like any built-in layer.
//
// Shapes: every input and output is features x batch, column-major, one column per
// example. The batch size may change from call to call.
//
// Required members, for a layer L over scalar type T:
//
//   const Matrix<T>& forward(const Eigen::Ref<const Matrix<T>>& x, Mode mode);
//     Requires x to have the layer's input feature count as rows and at least one column.
//     Returns y = f(x), owned by the layer and valid until its next forward; x may be
//     that very buffer (d.forward(d.forward(x, m), m)). In Mode::train the layer saves
//     what backward needs (x need not outlive the call) and may update internal state
//     (BatchNorm's running statistics); in Mode::eval it changes nothing that a later
//     call could observe, and keeps nothing for backward: a validation batch between a
//     training forward and its backward leaves that backward's result unchanged, bit for
//     bit, and plain inference stays as fast as it can be.
//
//   const Matrix<T>& backward(const Eigen::Ref<const Matrix<T>>& dy);
//     Differentiates the last forward that saved for backward: the last Mode::train
//     forward, or an eval forward under set_keep_for_backward(true); throws if there is
//     none. Requires dy = dLoss/dy with the shape of that forward's output. Returns
//     dx = dLoss/dx with the shape of that forward's input, owned by the layer; dy may be
//     that very buffer. Afterwards every trainable parameter's gradient holds
//     dLoss/dparameter for that mini-batch: by default gradients are overwritten, so
//     there is nothing to zero between steps. A frozen parameter's gradient
//     (Parameter::set_trainable(false)) is not computed and keeps what it held.
//
// Optional members, used when present:
//
//   std::vector<Parameter<T>> parameters();
//     Views of the learnable parameters and their gradients, in PyTorch's order and with
//     its state_dict names ("weight", "bias").
//   std::vector<Buffer<T>> buffers();
//     Views of the state that is not learned but must be saved (core/buffer.hpp): running
//     statistics and counters under PyTorch's names, random streams. Parameters and
//     buffers together are the layer's whole state: a copy of both makes an equal layer.
//   std::vector<Child<T>> children();
//     The layer's sub-layers, named (core/layer_ref.hpp): Child{"norm", LayerRef<T>(norm_)}.
//     A composite layer of your own lists its members here, and every tool reaches them:
//     their parameters and buffers (named "norm.weight"), saving and loading, recalibrate,
//     synchronized BatchNorm, fold_batchnorm, summaries. With children(), parameters() and
//     buffers() list only the layer's own state, not its children's (PyTorch's rule);
//     bnorm::named_parameters(LayerRef<T>(layer)) gives the whole tree's. A Sequential's
//     children are its layers ("0", "1", ...), and it breaks the rule on purpose: its
//     parameters() and buffers() list the whole tree, because they are what an optimizer
//     and a checkpoint are given (SGD<float> sgd(net.parameters()), as PyTorch's
//     model.parameters() recurses). A container of your own may do the same; it says so with
//     `static constexpr bool parameters_include_children = true;` (as Sequential does), and
//     the walk then takes no state of its own from it, only its children's.
//   std::string name() const;
//     Shown in error messages and summaries ("Dense(784 -> 256, no bias)").
//   void set_input_gradient(bool needed);
//     With false, backward may skip computing dx and return an empty matrix. A Sequential
//     uses it for its first layer, where dx would be thrown away.
//   void set_accumulate_gradients(bool accumulate);  void zero_grad();
//     With true, backward adds each mini-batch's parameter gradients to what the
//     gradients hold (PyTorch's default, for accumulation over micro-batches) instead of
//     overwriting them, in the same pass; zero_grad() clears them. Off by default.
//   void set_keep_for_backward(bool keep);
//     With true, eval forwards save what backward needs, as training forwards do, so that
//     backward gives the input gradient of the network in eval mode (saliency,
//     adversarial inputs): BatchNorm with its running statistics, Dropout as the
//     identity. Nothing else changes: running statistics stay put. Off by default, so
//     plain eval inference copies nothing.
//   A Sequential forwards these settings (and zero_grad) to every layer that has them.
//   std::vector<OnnxNode> onnx_nodes() const;
//     The layer in an ONNX graph, as plain data (core/onnx_node.hpp); without it save_onnx
//     refuses the layer, naming it.
//   void infer(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y,
//              InferenceScratch<T>& scratch) const;
//     Inference from several threads: y = f(x) as forward(x, Mode::eval) computes it, bit
//     for bit, with y and every scratch buffer the caller's (core/inference_scratch.hpp: a
//     Gemm for products, matrices and vectors handed out in call order). Resizes y; y does
//     not alias x. Being const and writing nothing of its own, it may run on one layer from
//     any number of threads at once, each with its own scratch. Why this design: forward
//     keeps its output and workspaces in the layer (no allocation, results by reference),
//     which a shared network cannot do for several callers; moving that state to a
//     caller-owned workspace keeps both properties and needs no lock. Every built-in layer
//     has it; a layer of your own opts in by writing it (sharing its kernel with its eval
//     forward), and Sequential::infer throws bnorm::Error naming a layer without it.
//
// Errors: a wrong shape, an empty batch, or backward without a training forward throws
// bnorm::Error naming the layer, the expected and the actual shape. After an error the
// layer is unchanged and usable (strong guarantee for state, basic for output buffers).
//
// Allocation: a layer sizes its buffers on the first call at a given batch size; later
// calls at that batch size allocate nothing.
#pragma once

#include "buffer.hpp"
#include "inference_scratch.hpp"
#include "parameter.hpp"
#include "types.hpp"

#include <Eigen/Core>
#include <concepts>
#include <string>
#include <vector>

namespace bnorm {

template <class L, class T>
concept Layer = std::move_constructible<L> &&
    requires(L& layer, const Eigen::Ref<const Matrix<T>>& matrix, Mode mode) {
      { layer.forward(matrix, mode) } -> std::same_as<const Matrix<T>&>;
      { layer.backward(matrix) } -> std::same_as<const Matrix<T>&>;
    };

template <class L, class T>
concept HasParameters = requires(L& layer) {
  { layer.parameters() } -> std::same_as<std::vector<Parameter<T>>>;
};

template <class L, class T>
concept HasBuffers = requires(L& layer) {
  { layer.buffers() } -> std::same_as<std::vector<Buffer<T>>>;
};

template <class T>
struct Child;  // core/layer_ref.hpp

template <class L, class T>
concept HasChildren = requires(L& layer) {
  { layer.children() } -> std::same_as<std::vector<Child<T>>>;
};

template <class L>
concept HasName = requires(const L& layer) {
  { layer.name() } -> std::convertible_to<std::string>;
};

template <class L>
concept HasOptionalInputGradient = requires(L& layer, bool needed) {
  layer.set_input_gradient(needed);
};

template <class L, class T>
concept HasInfer = requires(const L& layer, const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y,
                            InferenceScratch<T>& scratch) {
  layer.infer(x, y, scratch);
};

struct OnnxNode;  // core/onnx_node.hpp

template <class L>
concept HasOnnxNodes = requires(const L& layer) {
  { layer.onnx_nodes() } -> std::same_as<std::vector<OnnxNode>>;
};

template <class L>
concept HasTrainingSettings = requires(L& layer, bool enabled) {
  layer.set_accumulate_gradients(enabled);
  layer.set_keep_for_backward(enabled);
  layer.zero_grad();
};

}  // namespace bnorm

// LayerRef and Child, which need the concepts above (layer_ref.hpp includes this file).
#include "layer_ref.hpp"  // IWYU pragma: export
