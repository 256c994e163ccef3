// Sequential: layers applied one after another. Implements the layer contract of
// core/layer.hpp itself, so networks nest.
//
//   bnorm::Sequential<float> net;
//   for (int i = 0; i < depth; ++i) net.add(bnorm::Dense<float>(n, n, bnorm::Bias::none))
//                                      .add(bnorm::BatchNorm<float>(n))
//                                      .add(bnorm::ReLU<float>());
#pragma once

#include "../core/buffer.hpp"
#include "../core/error.hpp"
#include "../core/generator.hpp"
#include "../core/layer.hpp"
#include "../core/layer_ref.hpp"
#include "../core/parameter.hpp"
#include "../core/types.hpp"
#include "../core/inference_scratch.hpp"
#include "../layers/batch_norm.hpp"
#include "inference_workspace.hpp"

#include <cmath>
#include <concepts>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace bnorm {

template <class T>
class Sequential {
 public:
  // Its kind (core/layer_ref.hpp): tools find a subclass as a Sequential.
  using layer_kind = Sequential;
  // parameters() and buffers() list the whole tree, for optimizers (core/layer.hpp).
  static constexpr bool parameters_include_children = true;

  Sequential() = default;

  // Brace construction: Sequential<float> net{Dense<float>(784, 10), ReLU<float>()};
  template <class... Layers>
    requires(sizeof...(Layers) > 0 &&
             !(sizeof...(Layers) == 1 &&
               (std::same_as<std::remove_cvref_t<Layers>, Sequential> && ...)) &&
             (Layer<std::remove_cvref_t<Layers>, T> && ...))
  Sequential(Layers&&... layers) {  // NOLINT(google-explicit-constructor): brace syntax
    (add(std::forward<Layers>(layers)), ...);
  }

  Sequential(const Sequential& other)
      : input_gradient_needed_(other.input_gradient_needed_), check_finite_(other.check_finite_) {
    layers_.reserve(other.layers_.size());
    for (const auto& entry : other.layers_) layers_.push_back(make_entry(entry.layer.copy()));
    apply_input_gradient_setting();
  }
  Sequential& operator=(const Sequential& other) {
    if (this != &other) *this = Sequential(other);
    return *this;
  }
  // Moving keeps every layer where it is on the heap, so Parameter views stay valid.
  // Assigning destroys the old layers: views of them expire (core/parameter.hpp).
  Sequential(Sequential&&) noexcept = default;
  Sequential& operator=(Sequential&&) noexcept = default;
  ~Sequential() = default;

  // Appends a copy (or the moved-from value) of any type that meets the layer contract.
  // Strong guarantee: if it throws (bad_alloc, the layer's copy), the network is unchanged.
  template <class L>
    requires Layer<std::remove_cvref_t<L>, T>
  Sequential& add(L&& layer) {
    return append(make_entry(AnyLayer<T>(std::forward<L>(layer))));
  }

  // Appends a copy of layer `index` of `other` (any layer type, as it is now).
  Sequential& add_copy(const Sequential& other, std::size_t index) {
    other.check_index(index);
    return append(make_entry(other.layers_[index].layer.copy()));
  }

  // In Mode::train, a failure in any layer (a bad shape, a non-finite value caught by
  // set_check_finite, bad_alloc) restores every buffer of every layer (running statistics,
  // num_batches_tracked, Dropout streams) to its value before the call: the strong
  // guarantee of the layer contract, for the whole network. The buffers are copied once
  // per training forward into storage kept between calls (a few vectors per BatchNorm;
  // nothing is allocated once sized).
  const Matrix<T>& forward(const Eigen::Ref<const Matrix<T>>& x, Mode mode) {
    if (layers_.empty()) fail_empty();
    if (check_finite_) check_finite(x, "the network's input", "forward");
    if (mode == Mode::train && x.cols() == 0) join_statistics_sync_with_empty_batch();
    if (mode == Mode::train) save_buffers();
    try {
      run_forward(x, mode);
    } catch (...) {
      if (mode == Mode::train) restore_buffers();
      throw;
    }
    return *layers_.back().output;
  }

  // Eval-mode inference from several threads at once (core/layer.hpp): the same result as
  // forward(x, Mode::eval), bit for bit, computed in `workspace` (one per thread,
  // model/inference_workspace.hpp) without changing the network. Returns the workspace's
  // output, valid until its next use; x must not be a buffer of the same workspace. Throws
  // bnorm::Error naming the first layer without infer, when it is reached. With
  // set_check_finite(true) it checks every layer's output, as forward does.
  const Matrix<T>& infer(const Eigen::Ref<const Matrix<T>>& x,
                         InferenceWorkspace<T>& workspace) const {
    InferenceScratch<T>& scratch = workspace.scratch_;
    const Matrix<T>& output = workspace.output_;
    const bool overlaps_output = output.size() > 0 && x.size() > 0 && x.data() >= output.data() &&
                                 x.data() < output.data() + output.size();
    if (overlaps_output || scratch.holds(x))
      fail("Sequential::infer: the input is a buffer of the workspace it is computed in; "
           "copy it, or use a second workspace");
    scratch.begin_call();
    infer(x, workspace.output_, scratch);
    return workspace.output_;
  }

  // The layer contract's infer, for a Sequential nested in another: each intermediate
  // output is a matrix of `scratch`, the last layer writes y.
  void infer(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y,
             InferenceScratch<T>& scratch) const {
    if (layers_.empty()) fail_empty();
    if (check_finite_) check_finite(x, "the network's input", "infer");
    const Matrix<T>* previous = nullptr;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      Matrix<T>& output = i + 1 == layers_.size() ? y : scratch.matrix();
      try {
        if (i == 0) layers_[i].layer.infer(x, output, scratch);
        else layers_[i].layer.infer(*previous, output, scratch);
      } catch (const Error& error) {
        rethrow_with_position(error, i);
      }
      if (check_finite_) check_finite(output, position(i) + " output", "infer");
      previous = &output;
    }
  }

  // Runs layer `index` alone (for tools that walk the network layer by layer).
  const Matrix<T>& forward_layer(std::size_t index, const Eigen::Ref<const Matrix<T>>& x,
                                 Mode mode) {
    check_index(index);
    try {
      return layers_[index].layer.forward(x, mode);
    } catch (const Error& error) {
      rethrow_with_position(error, index);
    }
  }

  // The output of layer `index` in the last forward: the network's hidden activations,
  // without a copy. Valid until the next forward.
  const Matrix<T>& layer_output(std::size_t index) const {
    check_index(index);
    if (!layers_[index].output)
      fail("Sequential: layer ", index, " has no output; run forward first");
    return *layers_[index].output;
  }

  const Matrix<T>& backward(const Eigen::Ref<const Matrix<T>>& dy) {
    if (layers_.empty()) fail_empty();
    if (check_finite_) check_finite(dy, "the output gradient given to backward", "backward");
    const Matrix<T>* current = nullptr;
    for (std::size_t i = layers_.size(); i-- > 0;) {
      try {
        current = i + 1 == layers_.size() ? &layers_[i].layer.backward(dy)
                                          : &layers_[i].layer.backward(*current);
      } catch (const Error& error) {
        rethrow_with_position(error, i);
      }
      if (check_finite_) {
        check_finite(*current, position(i) + " input gradient", "backward");
        for (auto& parameter : named_parameters(layers_[i].layer.ref()))
          check_finite(parameter.grad(), position(i) + " gradient of " + parameter.name(),
                       "backward");
      }
    }
    return *current;
  }

  // Anomaly detection, as PyTorch's detect_anomaly: with true, forward and backward check
  // every layer's output, input gradient and parameter gradients and throw bnorm::Error
  // naming the first layer where a NaN or an infinity appears. Costs one extra pass over
  // each activation; off by default.
  void set_check_finite(bool enabled) { check_finite_ = enabled; }
  bool check_finite_enabled() const { return check_finite_; }

  // The layers, named "0", "1", ... (core/layer_ref.hpp): the tools' way in. Each carries
  // the token that expires with it, for the views of its parameters.
  std::vector<Child<T>> children() {
    buffer_snapshot_valid_ = false;  // the caller may restructure a nested network
    std::vector<Child<T>> list;
    list.reserve(layers_.size());
    for (std::size_t i = 0; i < layers_.size(); ++i)
      list.push_back({std::to_string(i), layers_[i].layer.ref(), layers_[i].liveness});
    return list;
  }
  // The layers, to read: the walk of a const network.
  std::vector<ConstChild<T>> children() const {
    std::vector<ConstChild<T>> list;
    list.reserve(layers_.size());
    for (std::size_t i = 0; i < layers_.size(); ++i)
      list.push_back({std::to_string(i), layers_[i].layer.read()});
    return list;
  }

  // Every parameter of the whole tree in layer order, named as PyTorch's state_dict keys
  // ("0.weight", "3.1.weight" in a nested network, "2.norm.bias" in a user's layer). Each
  // view knows whether its layer still lives (core/parameter.hpp).
  std::vector<Parameter<T>> parameters() { return named_parameters(LayerRef<T>(*this)); }

  // Every buffer of the whole tree in layer order, named as PyTorch's state_dict keys
  // ("1.running_mean").
  std::vector<Buffer<T>> buffers() { return named_buffers(LayerRef<T>(*this)); }

  // The same views, to read: what saving a const network takes.
  std::vector<Parameter<T>> parameters() const {
    return detail::named_state(*this, std::vector<Parameter<T>>{},
                               [](const ConstLayerRef<T>& layer) { return layer.own_parameters(); });
  }
  std::vector<Buffer<T>> buffers() const {
    return detail::named_state(*this, std::vector<Buffer<T>>{},
                               [](const ConstLayerRef<T>& layer) { return layer.own_buffers(); });
  }

  // With false, the first layer skips dLoss/dx (wasted work in training) when it can, and
  // backward then returns an empty matrix. On by default, as the layer contract requires.
  void set_input_gradient(bool needed) {
    input_gradient_needed_ = needed;
    apply_input_gradient_setting();
  }

  // The training settings of core/layer.hpp, applied to every layer held now (and nested
  // ones); a layer added later keeps its own. Throws, changing nothing, if a layer of a
  // user's type lacks them and `enabled` is true.
  void set_accumulate_gradients(bool enabled) {
    check_training_settings(enabled, "set_accumulate_gradients", true);
    for (auto& entry : layers_) entry.layer.set_accumulate_gradients(enabled);
  }
  void set_keep_for_backward(bool enabled) {
    check_training_settings(enabled, "set_keep_for_backward", false);
    for (auto& entry : layers_) entry.layer.set_keep_for_backward(enabled);
  }
  void zero_grad() {
    for (auto& entry : layers_) entry.layer.zero_grad();
  }

  std::size_t size() const { return layers_.size(); }
  bool empty() const { return layers_.empty(); }

  // The layer at `index`, as its exact type: net.layer<BatchNorm<float>>(1).
  template <class L>
  L& layer(std::size_t index) {
    if (L* found = layer_if<L>(index)) return *found;
    fail("Sequential: layer ", index, " is ", layers_[index].layer.name(),
         ", not the requested ", detail::type_name<L>());
  }
  template <class L>
  const L& layer(std::size_t index) const {
    check_index(index);
    if (layers_[index].layer.type() == typeid(L)) return *static_cast<const L*>(layers_[index].layer.address());
    fail("Sequential: layer ", index, " is ", layers_[index].layer.name(), ", not the requested ",
         detail::type_name<L>());
  }
  // nullptr if layer `index` is not exactly an L; Error if there is no such layer. Tools
  // that should also find subclasses use children() and LayerRef::as.
  template <class L>
  L* layer_if(std::size_t index) {
    check_index(index);
    if (layers_[index].layer.type() != typeid(L)) return nullptr;
    buffer_snapshot_valid_ = false;  // the caller may restructure a nested network
    return static_cast<L*>(layers_[index].layer.address());
  }
  template <class L>
  bool holds(std::size_t index) const {
    check_index(index);
    return layers_[index].layer.type() == typeid(L);
  }

  std::string layer_name(std::size_t index) const {
    check_index(index);
    return layers_[index].layer.name();
  }

  // Its layers' ONNX nodes in order (core/onnx_node.hpp), each with its layer's path.
  std::vector<OnnxNode> onnx_nodes() const {
    std::vector<OnnxNode> nodes;
    for (std::size_t i = 0; i < layers_.size(); ++i)
      for (OnnxNode& node : layers_[i].layer.onnx_nodes()) {
        node.path = std::to_string(i) + (node.path.empty() ? "" : "." + node.path);
        nodes.push_back(std::move(node));
      }
    return nodes;
  }

  std::string name() const {
    std::ostringstream text;
    text << "Sequential(";
    for (std::size_t i = 0; i < layers_.size(); ++i)
      text << (i ? ", " : "") << layers_[i].layer.name();
    text << ")";
    return text.str();
  }

 private:
  // A layer, a token that lives exactly as long as it (Parameter views watch it), and its
  // output in the last forward. One vector of these keeps them in step.
  struct Entry {
    AnyLayer<T> layer;
    std::shared_ptr<const void> liveness;
    const Matrix<T>* output = nullptr;
  };
  // A buffer's value before the current training forward.
  struct SavedBuffer {
    Buffer<T> view;
    Matrix<T> values;
    long long counter = 0;
    Generator::State generator;
  };

  static Entry make_entry(AnyLayer<T> layer) {
    return Entry{std::move(layer), std::make_shared<const char>('\0'), nullptr};
  }
  Sequential& append(Entry entry) {
    layers_.push_back(std::move(entry));  // strong: Entry's move cannot throw
    buffer_snapshot_valid_ = false;
    // The new layer's setting alone: the others have theirs, and revisiting them made n
    // appends (a model file of n one-byte layer records) cost n^2 / 2 calls.
    layers_.back().layer->set_input_gradient(layers_.size() > 1 || input_gradient_needed_);
    return *this;
  }

  void run_forward(const Eigen::Ref<const Matrix<T>>& x, Mode mode) {
    for (auto& entry : layers_) entry.output = nullptr;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      try {
        layers_[i].output = i == 0 ? &layers_[i].layer.forward(x, mode)
                                   : &layers_[i].layer.forward(*layers_[i - 1].output, mode);
      } catch (const Error& error) {
        rethrow_with_position(error, i);
      }
      if (check_finite_) check_finite(*layers_[i].output, position(i) + " output", "forward");
    }
  }

  // Data-parallel training: a process whose local batch is empty would throw in its first
  // layer while the others wait in their first synchronized BatchNorm's collective call, for
  // ever. It makes that call itself, with no examples, so that every process learns of the
  // empty batch there and all throw the same bnorm::Error (distributed/mpi_statistics_sync.hpp).
  void join_statistics_sync_with_empty_batch() {
    BatchNorm<T>* first = nullptr;
    for_each_layer(LayerRef<T>(*this), [&](const std::string&, const LayerRef<T>& layer) {
      auto* norm = layer.template as<BatchNorm<T>>();
      if (!first && norm && norm->statistics_sync()) first = norm;
    });
    if (!first) return;
    Vector<T> mean = Vector<T>::Zero(first->features()), m2 = Vector<T>::Zero(first->features());
    first->statistics_sync()->merge_moments(T(0), mean, m2);
  }

  // The views are taken once (and again after the layers may have changed), so the
  // steady-state step allocates nothing.
  void save_buffers() {
    if (!buffer_snapshot_valid_) {
      saved_buffers_.clear();
      for (Buffer<T>& view : buffers()) saved_buffers_.push_back(SavedBuffer{std::move(view), {}, 0, {}});
      buffer_snapshot_valid_ = true;
    }
    for (SavedBuffer& saved : saved_buffers_) {
      switch (saved.view.kind()) {
        case BufferKind::values: saved.values = saved.view.values(); break;
        case BufferKind::counter: saved.counter = saved.view.counter(); break;
        case BufferKind::generator: saved.generator = saved.view.generator().state(); break;
      }
    }
  }
  void restore_buffers() noexcept {
    for (SavedBuffer& saved : saved_buffers_) {
      switch (saved.view.kind()) {
        case BufferKind::values: saved.view.values() = saved.values; break;
        case BufferKind::counter: saved.view.counter() = saved.counter; break;
        case BufferKind::generator: saved.view.generator().set_state(saved.generator); break;
      }
    }
  }

  template <class... Parts>
  [[noreturn]] static void fail(const Parts&... parts) {
    detail::fail(parts...);
  }
  [[noreturn]] static void fail_empty() { fail("Sequential: the network has no layers"); }

  void check_index(std::size_t index) const {
    if (index >= layers_.size())
      fail("Sequential: no layer ", index, "; the network has ", layers_.size(), " layers");
  }

  std::string position(std::size_t index) const {
    return "layer " + std::to_string(index) + " of " + std::to_string(layers_.size()) + " (" +
           layers_[index].layer.name() + ")";
  }

  [[noreturn]] void rethrow_with_position(const Error& error, std::size_t index) const {
    fail("layer ", index, " of ", layers_.size(), ": ", error.what());
  }

  template <class Derived>
  static void check_finite(const Eigen::MatrixBase<Derived>& values, const std::string& what,
                           const char* pass) {
    if (values.allFinite()) [[likely]] return;
    for (Index j = 0; j < values.cols(); ++j)
      for (Index i = 0; i < values.rows(); ++i)
        if (!std::isfinite(static_cast<double>(values(i, j))))
          fail("Sequential ", pass, ": first non-finite value (", values(i, j), ") is in ", what,
               ", at row ", i, ", column ", j, " of ",
               detail::shape_string(values.rows(), values.cols()));
  }

  // Checked before any layer changes. Accumulation is moot for a layer without parameters.
  void check_training_settings(bool enabled, const char* setting, bool only_with_parameters) {
    if (!enabled) return;
    for (std::size_t i = 0; i < layers_.size(); ++i)
      if (!layers_[i].layer.has_training_settings() &&
          !(only_with_parameters && named_parameters(layers_[i].layer.ref()).empty()))
        fail("Sequential: ", setting, "(true) needs every layer to support it; ", position(i),
             " has no set_accumulate_gradients, set_keep_for_backward and zero_grad "
             "(core/layer.hpp)");
  }

  void apply_input_gradient_setting() {
    for (std::size_t i = 0; i < layers_.size(); ++i)
      layers_[i].layer.set_input_gradient(i != 0 || input_gradient_needed_);
  }

  std::vector<Entry> layers_;
  std::vector<SavedBuffer> saved_buffers_;  // training forward's copy; views of layers_
  // Cleared wherever the layers may change (add, children(), layer<L>()): a cache of the
  // views, not part of the network's value.
  bool buffer_snapshot_valid_ = false;
  bool input_gradient_needed_ = true;
  bool check_finite_ = false;
};

}  // namespace bnorm
