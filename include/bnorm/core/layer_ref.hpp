// The tree of layers, walked once for every tool: LayerRef (a type-erased reference to any
// layer), Child (a named sub-layer, as PyTorch's named_children) and for_each_layer (the one
// walker). Saving and loading, recalibrate, synchronized BatchNorm, fold_batchnorm,
// parameter and buffer naming and summaries all reach a network's layers through these, so
// a layer type of your own that exposes children() gets every tool (core/layer.hpp).
//
// A layer's state is its own parameters() and buffers() plus those of its children,
// prefixed with the child's name: "1.norm.running_mean" is the running_mean of the child
// "norm" of layer 1 of a Sequential, as in PyTorch's state_dict.
#pragma once

#include "buffer.hpp"
#include "error.hpp"
#include "layer.hpp"
#include "parameter.hpp"
#include "types.hpp"

#include <concepts>
#include <string>
#include <typeinfo>
#include <type_traits>
#include <utility>
#include <vector>

namespace bnorm {

// The layer kinds that tools treat specially. A type derived from one of them is found as
// that kind (a subclass of BatchNorm is recalibrated and synchronized like a BatchNorm).
template <class T> class BatchNorm;
template <class T> class Dense;
template <class T> class Dropout;
template <class T> class Identity;
template <class T> class Sequential;

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
  explicit LayerRef(L& layer) : object_(&layer), ops_(&ops_for<L>) {}

  // The layer's own state, without its children's (Sequential has none of its own).
  std::vector<Parameter<T>> own_parameters() const { return ops_->parameters(object_); }
  std::vector<Buffer<T>> own_buffers() const { return ops_->buffers(object_); }
  std::vector<Child<T>> children() const { return ops_->children(object_); }
  std::string name() const { return ops_->name(object_); }
  const Matrix<T>& forward(const Eigen::Ref<const Matrix<T>>& x, Mode mode) const {
    return ops_->forward(object_, x, mode);
  }

  // The layer as a U: its exact type, or for the kinds above also a type derived from U.
  // nullptr otherwise.
  template <class U>
  U* as() const {
    return static_cast<U*>(ops_->cast(object_, typeid(U)));
  }
  // The layer's exact type (io/ finds a layer's codec with it; tools use as<U>()).
  const std::type_info& type() const { return *ops_->type; }

 private:
  struct Ops {
    std::vector<Parameter<T>> (*parameters)(void*);
    std::vector<Buffer<T>> (*buffers)(void*);
    std::vector<Child<T>> (*children)(void*);
    std::string (*name)(void*);
    const Matrix<T>& (*forward)(void*, const Eigen::Ref<const Matrix<T>>&, Mode);
    void* (*cast)(void*, const std::type_info&);
    const std::type_info* type;
  };

  template <class L, class Kind>
  static void* cast_to(L* layer, const std::type_info& wanted) {
    if constexpr (std::derived_from<L, Kind>)
      if (wanted == typeid(Kind)) return static_cast<Kind*>(layer);
    return nullptr;
  }

  template <class L>
  static inline const Ops ops_for{
      [](void* p) -> std::vector<Parameter<T>> {
        if constexpr (HasParameters<L, T> && !std::derived_from<L, Sequential<T>>)
          return static_cast<L*>(p)->parameters();
        else
          return {};
      },
      [](void* p) -> std::vector<Buffer<T>> {
        if constexpr (HasBuffers<L, T> && !std::derived_from<L, Sequential<T>>)
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
      [](void* p) -> std::string {
        if constexpr (HasName<L>)
          return std::string(static_cast<L*>(p)->name());
        else
          return detail::type_name<L>();
      },
      [](void* p, const Eigen::Ref<const Matrix<T>>& x, Mode mode) -> const Matrix<T>& {
        return static_cast<L*>(p)->forward(x, mode);
      },
      [](void* p, const std::type_info& wanted) -> void* {
        L* layer = static_cast<L*>(p);
        if (wanted == typeid(L)) return layer;
        for (void* found : {cast_to<L, BatchNorm<T>>(layer, wanted), cast_to<L, Dense<T>>(layer, wanted),
                            cast_to<L, Dropout<T>>(layer, wanted), cast_to<L, Identity<T>>(layer, wanted),
                            cast_to<L, Sequential<T>>(layer, wanted)})
          if (found) return found;
        return nullptr;
      },
      &typeid(L)};

  void* object_;
  const Ops* ops_;
};

// A sub-layer and its name ("0" for a Sequential's first layer, "norm" for a user's member).
template <class T>
struct Child {
  std::string name;
  LayerRef<T> layer;
};

// Calls visit(path, layer) for `root`'s children and all their descendants, depth first in
// order, each before its own children. A path joins the children's names with dots: "3.1"
// is child "1" of child "3" of the root.
template <class T, class Visit>
void for_each_layer(const LayerRef<T>& root, Visit&& visit, const std::string& prefix = "") {
  for (Child<T>& child : root.children()) {
    const std::string path = prefix + child.name;
    visit(path, child.layer);
    for_each_layer(child.layer, visit, path + ".");
  }
}

// The whole state of `root` (its own and its descendants'), in walk order, each named by
// its layer's path and its own name ("3.1.weight"), as PyTorch's named_parameters.
template <class T>
std::vector<Parameter<T>> named_parameters(const LayerRef<T>& root) {
  std::vector<Parameter<T>> list = root.own_parameters();
  for_each_layer(root, [&](const std::string& path, const LayerRef<T>& layer) {
    for (Parameter<T>& parameter : layer.own_parameters()) {
      parameter.prefix_name(path);
      list.push_back(std::move(parameter));
    }
  });
  return list;
}
template <class T>
std::vector<Buffer<T>> named_buffers(const LayerRef<T>& root) {
  std::vector<Buffer<T>> list = root.own_buffers();
  for_each_layer(root, [&](const std::string& path, const LayerRef<T>& layer) {
    for (Buffer<T>& buffer : layer.own_buffers()) {
      buffer.prefix_name(path);
      list.push_back(std::move(buffer));
    }
  });
  return list;
}

}  // namespace bnorm
