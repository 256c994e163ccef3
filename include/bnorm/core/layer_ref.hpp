// The tree of layers, walked once for every tool, and the one type erasure of the layer
// contract (core/layer.hpp):
//   LayerRef, ConstLayerRef  a reference to a layer of any type, to use it or only to read it
//   AnyLayer                 an owned layer of any type (a Sequential's layers)
//   Child, ConstChild        a named sub-layer, as PyTorch's named_children
//   for_each_layer           the one walker
// All three reach the layer through one table of its operations (detail::LayerOps), made
// once per layer type. Saving and loading, recalibrate, synchronized BatchNorm,
// fold_batchnorm, parameter and buffer naming and summaries all reach a network's layers
// through these, so a layer type of your own that exposes children() gets every tool.
//
// A layer's state is its own parameters() and buffers() plus those of its children,
// prefixed with the child's name: "1.norm.running_mean" is the running_mean of the child
// "norm" of layer 1 of a Sequential, as in PyTorch's state_dict.
//
// A layer's kind: tools that treat a layer specially (recalibrate finds BatchNorms, fold
// finds Dense) ask for its kind, `L::layer_kind` when the class declares it, else L itself.
// A subclass inherits the declaration, so a subclass of BatchNorm is recalibrated,
// synchronized, folded and saved as a BatchNorm; a subclass that is a kind of its own
// declares its own layer_kind.
#pragma once

#include "buffer.hpp"
#include "error.hpp"
#include "inference_scratch.hpp"
#include "layer.hpp"
#include "onnx_node.hpp"
#include "parameter.hpp"
#include "types.hpp"

#include <concepts>
#include <memory>
#include <string>
#include <typeinfo>
#include <type_traits>
#include <utility>
#include <vector>

namespace bnorm {

template <class T>
class LayerRef;
template <class T>
class ConstLayerRef;

// The kind of layer type L (see the top of this file).
template <class L>
struct LayerKindOf {
  using type = L;
};
template <class L>
  requires requires { typename L::layer_kind; }
struct LayerKindOf<L> {
  using type = typename L::layer_kind;
};
template <class L>
using LayerKind = typename LayerKindOf<L>::type;

// A sub-layer and its name ("0" for a Sequential's first layer, "norm" for a user's member).
// `liveness`, when set, expires with the sub-layer (a Sequential's layers): views of its
// parameters know whether it still lives (core/parameter.hpp).
template <class T>
struct Child {
  std::string name;
  LayerRef<T> layer;
  std::shared_ptr<const void> liveness = nullptr;
};
template <class T>
struct ConstChild {
  std::string name;
  ConstLayerRef<T> layer;
};

namespace detail {

// The operations of the layer contract for one layer type L, behind plain function
// pointers: every member of core/layer.hpp, the optional ones answered for a type without
// them, and what owning a layer of unknown type needs (copy, destroy).
template <class T>
struct LayerOps {
  const Matrix<T>& (*forward)(void*, const Eigen::Ref<const Matrix<T>>&, Mode);
  const Matrix<T>& (*backward)(void*, const Eigen::Ref<const Matrix<T>>&);
  // Throws bnorm::Error for a type without infer.
  void (*infer)(const void*, const Eigen::Ref<const Matrix<T>>&, Matrix<T>&, InferenceScratch<T>&);
  // The layer's own state, without its children's.
  std::vector<Parameter<T>> (*parameters)(void*);
  std::vector<Buffer<T>> (*buffers)(void*);
  std::vector<Child<T>> (*children)(void*);
  std::string (*name)(const void*);
  bool (*set_input_gradient)(void*, bool);  // false: the layer cannot skip dx
  // The training settings; a type without them ignores them (has_training_settings false),
  // and zero_grad zeroes its gradients through its parameters.
  bool has_training_settings;
  void (*set_accumulate_gradients)(void*, bool);
  void (*set_keep_for_backward)(void*, bool);
  void (*zero_grad)(void*);
  void* (*copy)(const void*);  // a new L on the heap; throws for a type that cannot be copied
  void (*destroy)(void*);
  // The layer as its exact type or as its kind, nullptr for any other type.
  void* (*cast)(void*, const std::type_info&);
  // Its ONNX nodes (core/onnx_node.hpp), each naming the layer; a refusal for a type without.
  std::vector<OnnxNode> (*onnx_nodes)(const void*);
  const std::type_info* type;
  const std::type_info* kind;
};

// A container whose parameters() list its whole tree (core/layer.hpp): no state of its own.
template <class L>
concept ListsWholeTree = L::parameters_include_children;

// The table of layer type L, one per program. A class, so that a program can compile the
// tables of the layer types it uses once (`extern template struct LayerModel<float, L>;`,
// examples/common/float_network.hpp).
template <class T, class L>
struct LayerModel {
  static const LayerOps<T> ops;
};

template <class T, class L>
const LayerOps<T> LayerModel<T, L>::ops{
    [](void* p, const Eigen::Ref<const Matrix<T>>& x, Mode mode) -> const Matrix<T>& {
      return static_cast<L*>(p)->forward(x, mode);
    },
    [](void* p, const Eigen::Ref<const Matrix<T>>& dy) -> const Matrix<T>& {
      return static_cast<L*>(p)->backward(dy);
    },
    [](const void* p, const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, InferenceScratch<T>& scratch) {
      if constexpr (HasInfer<L, T>)
        static_cast<const L*>(p)->infer(x, y, scratch);
      else
        fail(LayerModel<T, L>::ops.name(p), ": this layer type has no const infer(x, y, scratch), so "
             "Sequential::infer cannot run it; write one (core/layer.hpp), or use "
             "forward(x, Mode::eval)");
    },
    [](void* p) -> std::vector<Parameter<T>> {
      if constexpr (HasParameters<L, T> && !ListsWholeTree<L>)
        return static_cast<L*>(p)->parameters();
      else
        return {};
    },
    [](void* p) -> std::vector<Buffer<T>> {
      if constexpr (HasBuffers<L, T> && !ListsWholeTree<L>)
        return static_cast<L*>(p)->buffers();
      else
        return {};
    },
    [](void* p) -> std::vector<Child<T>> {
      if constexpr (HasChildren<L, T>)
        return static_cast<L*>(p)->children();
      else
        return {};
    },
    [](const void* p) -> std::string {
      if constexpr (HasName<L>)
        return std::string(static_cast<const L*>(p)->name());
      else
        return type_name<L>();
    },
    [](void* p, bool needed) {
      if constexpr (HasOptionalInputGradient<L>) static_cast<L*>(p)->set_input_gradient(needed);
      return HasOptionalInputGradient<L>;
    },
    HasTrainingSettings<L>,
    [](void* p, bool accumulate) {
      if constexpr (HasTrainingSettings<L>) static_cast<L*>(p)->set_accumulate_gradients(accumulate);
    },
    [](void* p, bool keep) {
      if constexpr (HasTrainingSettings<L>) static_cast<L*>(p)->set_keep_for_backward(keep);
    },
    [](void* p) {
      if constexpr (HasTrainingSettings<L>) {
        static_cast<L*>(p)->zero_grad();
      } else {
        for (auto& parameter : named_parameters(LayerRef<T>(*static_cast<L*>(p))))
          parameter.grad().setZero();
      }
    },
    [](const void* p) -> void* {
      if constexpr (std::copy_constructible<L>)
        return new L(*static_cast<const L*>(p));
      else
        fail(LayerModel<T, L>::ops.name(p), ": this layer type is not copyable, so the network cannot be copied");
    },
    [](void* p) { delete static_cast<L*>(p); },
    [](void* p, const std::type_info& wanted) -> void* {
      L* layer = static_cast<L*>(p);
      if (wanted == typeid(L)) return layer;
      if constexpr (std::derived_from<L, LayerKind<L>>)
        if (wanted == typeid(LayerKind<L>)) return static_cast<LayerKind<L>*>(layer);
      return nullptr;
    },
    [](const void* p) -> std::vector<OnnxNode> {
      const std::string name = LayerModel<T, L>::ops.name(p);
      if constexpr (HasOnnxNodes<L>) {
        std::vector<OnnxNode> nodes = static_cast<const L*>(p)->onnx_nodes();
        for (OnnxNode& node : nodes)
          if (node.layer.empty()) node.layer = name;
        return nodes;
      } else {
        return {{.refusal = "has no ONNX operator: its type declares no onnx_nodes() "
                            "(core/onnx_node.hpp)",
                 .layer = name}};
      }
    },
    &typeid(L),
    &typeid(LayerKind<L>)};

}  // namespace detail

// A non-owning reference to a layer of any type that meets the layer contract. It stays
// valid while the layer lives at the same address (for a layer inside a Sequential: while
// the Sequential holds it).
template <class T>
class LayerRef {
 public:
  template <class L>
    // LayerRef itself first: checking Layer<LayerRef> would ask whether LayerRef is
    // copyable, which asks this constructor again (clang 14 recurses forever).
    requires(!std::same_as<std::remove_cv_t<L>, LayerRef> && Layer<L, T>)
  explicit LayerRef(L& layer) : LayerRef(&layer, &detail::LayerModel<T, L>::ops) {}

  // The layer's own state, without its children's (a Sequential has none of its own).
  std::vector<Parameter<T>> own_parameters() const { return ops_->parameters(object_); }
  std::vector<Buffer<T>> own_buffers() const { return ops_->buffers(object_); }
  std::vector<Child<T>> children() const { return ops_->children(object_); }
  std::string name() const { return ops_->name(object_); }
  const Matrix<T>& forward(const Eigen::Ref<const Matrix<T>>& x, Mode mode) const {
    return ops_->forward(object_, x, mode);
  }

  // The layer as a U: its exact type, or its kind (see the top of this file). nullptr otherwise.
  template <class U>
  U* as() const {
    return static_cast<U*>(ops_->cast(object_, typeid(U)));
  }
  // The layer's exact type, and its kind.
  const std::type_info& type() const { return *ops_->type; }
  const std::type_info& kind() const { return *ops_->kind; }

 private:
  template <class>
  friend class AnyLayer;
  template <class>
  friend class ConstLayerRef;
  LayerRef(void* object, const detail::LayerOps<T>* ops) : object_(object), ops_(ops) {}

  void* object_;
  const detail::LayerOps<T>* ops_;
};

// A reference to a layer that only reads it: what a walk of a const network hands out.
// Made from a LayerRef, or by a const owner of layers (Sequential::children() const). The
// views its state functions return are for reading.
template <class T>
class ConstLayerRef {
 public:
  ConstLayerRef(const LayerRef<T>& layer) : layer_(layer) {}  // NOLINT: a LayerRef reads too

  std::vector<Parameter<T>> own_parameters() const { return layer_.own_parameters(); }
  std::vector<Buffer<T>> own_buffers() const { return layer_.own_buffers(); }
  std::vector<ConstChild<T>> children() const {
    std::vector<ConstChild<T>> list;
    for (Child<T>& child : layer_.children()) list.push_back({std::move(child.name), child.layer});
    return list;
  }
  std::string name() const { return layer_.name(); }
  template <class U>
  const U* as() const {
    return layer_.template as<U>();
  }
  const std::type_info& type() const { return layer_.type(); }
  const std::type_info& kind() const { return layer_.kind(); }

 private:
  LayerRef<T> layer_;
};

// An owned layer of any type that meets the layer contract, on the heap (so that moving its
// owner keeps Parameter views valid), through the same table as LayerRef.
template <class T>
class AnyLayer {
 public:
  template <class L>
    requires(!std::same_as<std::remove_cvref_t<L>, AnyLayer> && Layer<std::remove_cvref_t<L>, T>)
  explicit AnyLayer(L&& layer)
      : object_(new std::remove_cvref_t<L>(std::forward<L>(layer)),
                detail::LayerModel<T, std::remove_cvref_t<L>>::ops.destroy),
        ops_(&detail::LayerModel<T, std::remove_cvref_t<L>>::ops) {}

  // A copy of the layer, as it is now; throws bnorm::Error for a type that cannot be copied.
  AnyLayer copy() const { return AnyLayer(ops_->copy(object_.get()), ops_); }

  LayerRef<T> ref() { return LayerRef<T>(object_.get(), ops_); }
  // The owner of a const layer hands out references that only read it.
  ConstLayerRef<T> read() const { return LayerRef<T>(object_.get(), ops_); }

  const Matrix<T>& forward(const Eigen::Ref<const Matrix<T>>& x, Mode mode) {
    return ops_->forward(object_.get(), x, mode);
  }
  const Matrix<T>& backward(const Eigen::Ref<const Matrix<T>>& dy) {
    return ops_->backward(object_.get(), dy);
  }
  void infer(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y, InferenceScratch<T>& scratch) const {
    ops_->infer(object_.get(), x, y, scratch);
  }
  std::string name() const { return ops_->name(object_.get()); }
  bool set_input_gradient(bool needed) { return ops_->set_input_gradient(object_.get(), needed); }
  bool has_training_settings() const { return ops_->has_training_settings; }
  void set_accumulate_gradients(bool accumulate) {
    ops_->set_accumulate_gradients(object_.get(), accumulate);
  }
  void set_keep_for_backward(bool keep) { ops_->set_keep_for_backward(object_.get(), keep); }
  void zero_grad() { ops_->zero_grad(object_.get()); }
  std::vector<OnnxNode> onnx_nodes() const { return ops_->onnx_nodes(object_.get()); }
  const std::type_info& type() const { return *ops_->type; }
  void* address() { return object_.get(); }
  const void* address() const { return object_.get(); }

 private:
  AnyLayer(void* object, const detail::LayerOps<T>* ops) : object_(object, ops->destroy), ops_(ops) {}

  std::unique_ptr<void, void (*)(void*)> object_;
  const detail::LayerOps<T>* ops_;
};

// Calls visit(path, layer) for `root`'s children and all their descendants, depth first in
// order, each before its own children. A path joins the children's names with dots: "3.1"
// is child "1" of child "3" of the root. The root is a LayerRef (visit gets LayerRefs), or a
// ConstLayerRef or a const Sequential (visit gets ConstLayerRefs).
template <class Root, class Visit>
void for_each_layer(const Root& root, Visit&& visit, const std::string& prefix = "") {
  for (auto& child : root.children()) {
    const std::string path = prefix + child.name;
    visit(path, child.layer);
    for_each_layer(child.layer, visit, path + ".");
  }
}

namespace detail {
template <class T>
void append_named_parameters(const LayerRef<T>& layer, const std::string& prefix,
                             const std::shared_ptr<const void>& liveness,
                             std::vector<Parameter<T>>& list) {
  for (Child<T>& child : layer.children()) {
    // The innermost owner's token: a nested Sequential's layers outlive its own slot.
    const std::shared_ptr<const void>& owner = child.liveness ? child.liveness : liveness;
    for (Parameter<T>& parameter : child.layer.own_parameters()) {
      parameter.prefix_name(prefix + child.name);
      if (owner) parameter.set_owner(owner);
      list.push_back(std::move(parameter));
    }
    append_named_parameters(child.layer, prefix + child.name + ".", owner, list);
  }
}

// `list` (the root's own views), then the views own(layer) gives for each layer under `root`,
// named by the layer's path.
template <class Root, class View, class Own>
std::vector<View> named_state(const Root& root, std::vector<View> list, Own&& own) {
  for_each_layer(root, [&](const std::string& path, const auto& layer) {
    for (View& view : own(layer)) {
      view.prefix_name(path);
      list.push_back(std::move(view));
    }
  });
  return list;
}

}  // namespace detail

// The whole state of `root` (its own and its descendants'), in walk order, each named by
// its layer's path and its own name ("3.1.weight"), as PyTorch's named_parameters. The
// views of a Sequential's layers know whether their layer still lives (core/parameter.hpp).
template <class T>
std::vector<Parameter<T>> named_parameters(const LayerRef<T>& root) {
  std::vector<Parameter<T>> list = root.own_parameters();
  detail::append_named_parameters(root, "", nullptr, list);
  return list;
}
template <class T>
std::vector<Buffer<T>> named_buffers(const LayerRef<T>& root) {
  return detail::named_state(root, root.own_buffers(),
                             [](const LayerRef<T>& layer) { return layer.own_buffers(); });
}

// The same, to read, for a layer that is only read (and Sequential's parameters() const and
// buffers() const for a const network).
template <class T>
std::vector<Parameter<T>> named_parameters(const ConstLayerRef<T>& root) {
  return detail::named_state(root, root.own_parameters(),
                             [](const ConstLayerRef<T>& layer) { return layer.own_parameters(); });
}
template <class T>
std::vector<Buffer<T>> named_buffers(const ConstLayerRef<T>& root) {
  return detail::named_state(root, root.own_buffers(),
                             [](const ConstLayerRef<T>& layer) { return layer.own_buffers(); });
}

}  // namespace bnorm
