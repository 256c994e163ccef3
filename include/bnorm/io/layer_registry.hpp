// Model files for layer types of your own: register the kind once, under a name and a
// version, with how to rebuild it from its constructor arguments; save, load and load_into
// then store it as a "registered layer" record (docs/model_format.md, tag 10) holding the
// name, the version, the arguments and the layer's whole state: every parameter and buffer
// of it and of its children (core/layer_ref.hpp), by name.
//
//   bnorm::register_layer<Residual<float>>(
//       "Residual", 1,
//       [](const Residual<float>& r) { return std::vector<double>{double(r.features())}; },
//       [](const std::vector<double>& arguments, std::uint32_t version) {
//         return Residual<float>(bnorm::Index(arguments.at(0)));
//       });
//
// `arguments` turns a layer into the numbers its constructor needs (sizes, options; a
// double holds every integer up to 2^53 exactly); `construct` builds a layer from them. It
// receives the version the file was written with (at most the registered one) so that a
// kind can change its arguments and still read its old files; it may throw (bnorm::Error,
// std::out_of_range from at()): loading then fails naming the layer. The arguments come
// from a file, and a damaged or crafted one can hold any value: `construct` must reject
// sizes its layer cannot have (as the built-in records check theirs against the bytes that
// remain), or a file can make it allocate without bound. The state need not
// be handled: it is copied through parameters() and buffers() after construct. The layer
// type must be movable, and copyable if the network is to be copied.
//
// Register before saving or loading, not concurrently with them (the registry is a plain
// process-wide list). Registering a name twice replaces the kind; one kind has one name. A
// subclass of a registered type that does not declare a layer_kind of its own (core/layer_ref.hpp)
// is saved as that type, as every tool treats it.
#pragma once

#include "../core/error.hpp"
#include "../core/layer_ref.hpp"
#include "../core/types.hpp"
#include "../model/sequential.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

namespace bnorm {

namespace detail {

template <class T>
struct RegisteredLayer {
  std::string name;
  std::uint32_t version = 1;
  const std::type_info* type = nullptr;
  std::function<std::vector<double>(const ConstLayerRef<T>&)> arguments;
  // Constructs a layer from its arguments, appends it to the network and returns it.
  std::function<LayerRef<T>(Sequential<T>&, const std::vector<double>&, std::uint32_t)> append;
};

template <class T>
std::vector<RegisteredLayer<T>>& layer_registry() {
  static std::vector<RegisteredLayer<T>> registry;
  return registry;
}

// The registered kind of a layer's kind (core/layer_ref.hpp: a subclass of a kind that
// declares layer_kind is that kind), or null.
template <class T>
const RegisteredLayer<T>* registered_kind(const std::type_info& kind) {
  for (const auto& registered : layer_registry<T>())
    if (*registered.type == kind) return &registered;
  return nullptr;
}
template <class T>
const RegisteredLayer<T>* registered_kind(const std::string& name) {
  for (const auto& kind : layer_registry<T>())
    if (kind.name == name) return &kind;
  return nullptr;
}

}  // namespace detail

// The scalar type is deduced from the layer: L must meet Layer<L, T> for T = float or double.
template <class L, class Arguments, class Construct>
void register_layer(std::string name, std::uint32_t version, Arguments arguments,
                    Construct construct) {
  using T = std::conditional_t<Layer<L, float>, float, double>;
  static_assert(Layer<L, T>, "register_layer: the type does not meet the layer contract");
  detail::require(!name.empty() && name.size() <= 255, "register_layer: the name must have 1 to 255 ",
                  "characters, got ", name.size());
  detail::require(version >= 1, "register_layer: ", name, ": the version must be at least 1");
  detail::RegisteredLayer<T> kind{
      name, version, &typeid(LayerKind<L>),
      [arguments](const ConstLayerRef<T>& layer) -> std::vector<double> {
        return arguments(*layer.template as<L>());
      },
      [construct](Sequential<T>& net, const std::vector<double>& values, std::uint32_t file_version) {
        net.add(L(construct(values, file_version)));
        return LayerRef<T>(net.template layer<L>(net.size() - 1));
      }};
  auto& registry = detail::layer_registry<T>();
  std::erase_if(registry, [&](const auto& old) {
    return old.name == name || *old.type == typeid(LayerKind<L>);
  });
  registry.push_back(std::move(kind));
}

}  // namespace bnorm
