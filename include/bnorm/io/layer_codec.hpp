// How each built-in layer is stored in a model file, checked against a network's layer, and
// copied into it. docs/model_format.md gives the byte layout of every record.
//
// LayerCodec<L> exists for every built-in layer type L (and Sequential, which nests):
//   tag, kind                   the record's tag byte and the layer's kind in messages
//   encode(writer, layer)       appends the record's body (the tag is written by the caller)
//   decode(reader, prefix, depth)
//                               reads a body; every size is checked against the bytes that
//                               remain before anything is allocated (prefix and depth: the
//                               position of a nested Sequential, "2." inside layer 2)
//   compare(network, file, location)
//                               throws bnorm::Error naming the first constructor argument
//                               that differs (load_into's strict check)
//   assign(network, file)       copies the state (parameters, running statistics, counters,
//                               generators); after compare() succeeded it cannot throw: every
//                               destination already has the source's size
// A layer type of a user's is saved through its registration (layer_registry.hpp) by
// RegisteredCodec; one neither built in nor registered cannot be saved.
#pragma once

#include "../core/error.hpp"
#include "../core/generator.hpp"
#include "../core/types.hpp"
#include "../layers/batch_norm.hpp"
#include "../layers/dense.hpp"
#include "../layers/dropout.hpp"
#include "../layers/identity.hpp"
#include "../layers/init.hpp"
#include "../layers/leaky_relu.hpp"
#include "../layers/relu.hpp"
#include "../layers/sigmoid.hpp"
#include "../layers/tanh.hpp"
#include "../core/layer_ref.hpp"
#include "../model/sequential.hpp"
#include "generator_bytes.hpp"
#include "layer_registry.hpp"
#include "little_endian.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace bnorm::detail {

// The record tags of docs/model_format.md. Never renumber: files in the wild hold them.
enum class LayerTag : std::uint8_t {
  sequential = 1,
  dense = 2,
  batch_norm = 3,
  relu = 4,
  leaky_relu = 5,
  sigmoid = 6,
  tanh = 7,
  identity = 8,
  dropout = 9,
  registered = 10,  // a layer kind of a user's, registered (layer_registry.hpp); version 2
};

// Deeper nesting is rejected: it keeps a crafted file from exhausting the stack.
inline constexpr int max_nesting_depth = 64;

// ---- Messages -------------------------------------------------------------------------

// Option values as messages show them; floating-point values in the shortest form that
// reads back as the same value ("0.1", not "0.100000001"), so two that differ never look alike.
template <class Value>
std::string option_text(const Value& value) {
  std::ostringstream text;
  if constexpr (std::is_floating_point_v<Value>) {
    char digits[64];
    const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    text << std::string_view(digits, static_cast<std::size_t>(end - digits));
  } else if constexpr (std::is_same_v<Value, bool>) {
    text << (value ? "true" : "false");
  } else if constexpr (std::is_same_v<Value, RunningAverage>) {
    text << (value == RunningAverage::exponential ? "exponential" : "cumulative");
  } else if constexpr (std::is_same_v<Value, SmallBatch>) {
    text << (value == SmallBatch::error ? "error" : "use_running_statistics");
  } else {
    text << value;
  }
  return text.str();
}

// load_into's check of one constructor argument.
template <class Value>
void require_same(const std::string& location, std::string_view what, const Value& network,
                  const Value& file) {
  if (network == file) return;
  fail(location, ": ", what, " differs: the network has ", option_text(network),
       ", the file has ", option_text(file));
}

// Options (hyperparameters) are stored as f64 whatever the field's type; a float field
// accepts only values a float holds exactly, so every file has one reading.
template <class Field>
void write_option(ByteWriter& writer, Field value) {
  writer.scalar(static_cast<double>(value));
}
template <class Field>
Field read_option(ByteReader& reader, std::string_view what) {
  static_assert(std::is_same_v<Field, double> || std::is_same_v<Field, float>);
  const std::size_t at = reader.position();
  const double value = reader.scalar<double>(what);
  if constexpr (std::is_same_v<Field, float>) {
    const bool fits = !std::isfinite(value) ||
                      (std::abs(value) <= std::numeric_limits<float>::max() &&
                       static_cast<double>(static_cast<float>(value)) == value);
    if (!fits) reader.fail_at(at, what, " ", option_text(value), " is not a float value");
  }
  return static_cast<Field>(value);
}

// ---- Codecs ------------------------------------------------------------------------------

template <class L>
struct LayerCodec;  // defined for each built-in layer below

template <class T>
using BuiltinLayers = std::tuple<Sequential<T>, Dense<T>, BatchNorm<T>, ReLU<T>, LeakyReLU<T>,
                                 Sigmoid<T>, Tanh<T>, Identity<T>, Dropout<T>>;

// Calls visit(LayerCodec<L>{}) for the built-in kind L of `layer` (core/layer_ref.hpp: a
// subclass is stored as its kind); returns false, without calling it, for another kind.
template <class T, class Visit>
bool visit_layer_codec(const ConstLayerRef<T>& layer, Visit&& visit) {
  return [&]<class... L>(std::tuple<L...>*) {
    return ((layer.kind() == typeid(L) ? (visit(LayerCodec<L>{}), true) : false) || ...);
  }(static_cast<BuiltinLayers<T>*>(nullptr));
}

// The same for the layer type with record tag `tag`.
template <class T, class Visit>
bool visit_tag_codec(std::uint8_t tag, Visit&& visit) {
  return [&]<class... L>(std::tuple<L...>*) {
    return ((static_cast<std::uint8_t>(LayerCodec<L>::tag) == tag ? (visit(LayerCodec<L>{}), true)
                                                                    : false) ||
            ...);
  }(static_cast<BuiltinLayers<T>*>(nullptr));
}

// "layer 3", "layer 1.2" inside a nested Sequential.
inline std::string layer_location(const std::string& prefix, std::size_t index) {
  return "layer " + prefix + std::to_string(index);
}

// Activations: a tag and nothing else.
template <class L, LayerTag tag_value>
struct StatelessCodec {
  using Layer = L;
  static constexpr LayerTag tag = tag_value;
  static void encode(ByteWriter&, const L&) {}
  static L decode(ByteReader&, const std::string&, int) { return L(); }
  static void compare(const L&, const L&, const std::string&) {}
  static void assign(L&, const L&) {}
};

template <FileScalar T>
struct LayerCodec<ReLU<T>> : StatelessCodec<ReLU<T>, LayerTag::relu> {
  static constexpr std::string_view kind = "ReLU";
};
template <FileScalar T>
struct LayerCodec<Sigmoid<T>> : StatelessCodec<Sigmoid<T>, LayerTag::sigmoid> {
  static constexpr std::string_view kind = "Sigmoid";
};
template <FileScalar T>
struct LayerCodec<Tanh<T>> : StatelessCodec<Tanh<T>, LayerTag::tanh> {
  static constexpr std::string_view kind = "Tanh";
};
template <FileScalar T>
struct LayerCodec<Identity<T>> : StatelessCodec<Identity<T>, LayerTag::identity> {
  static constexpr std::string_view kind = "Identity";
};

template <FileScalar T>
struct LayerCodec<LeakyReLU<T>> {
  using Layer = LeakyReLU<T>;
  static constexpr LayerTag tag = LayerTag::leaky_relu;
  static constexpr std::string_view kind = "LeakyReLU";
  static void encode(ByteWriter& writer, const LeakyReLU<T>& layer) { write_option(writer, layer.slope()); }
  static LeakyReLU<T> decode(ByteReader& reader, const std::string&, int) {
    const auto slope = read_option<decltype(std::declval<const LeakyReLU<T>&>().slope())>(reader, "slope");
    try {
      return LeakyReLU<T>(slope);
    } catch (const Error& error) {
      reader.fail("invalid options: ", error.what());
    }
  }
  static void compare(const LeakyReLU<T>& network, const LeakyReLU<T>& file,
                      const std::string& location) {
    require_same(location, "slope", network.slope(), file.slope());
  }
  static void assign(LeakyReLU<T>&, const LeakyReLU<T>&) {}
};

template <FileScalar T>
struct LayerCodec<Dropout<T>> {
  using Layer = Dropout<T>;
  static constexpr LayerTag tag = LayerTag::dropout;
  static constexpr std::string_view kind = "Dropout";
  static void encode(ByteWriter& writer, const Dropout<T>& layer) {
    write_option(writer, layer.p());
    write_generator_state(writer, layer.generator().state());
  }
  static Dropout<T> decode(ByteReader& reader, const std::string&, int) {
    const double p = read_option<double>(reader, "p");
    const Generator::State state = read_generator_state(reader);
    try {
      Dropout<T> layer(p, 0);
      layer.generator().set_state(state);
      return layer;
    } catch (const Error& error) {
      reader.fail("invalid options: ", error.what());
    }
  }
  static void compare(const Dropout<T>& network, const Dropout<T>& file, const std::string& location) {
    require_same(location, "p", network.p(), file.p());
  }
  static void assign(Dropout<T>& network, const Dropout<T>& file) {
    network.generator() = file.generator();
  }
};

template <FileScalar T>
struct LayerCodec<Dense<T>> {
  using Layer = Dense<T>;
  static constexpr LayerTag tag = LayerTag::dense;
  static constexpr std::string_view kind = "Dense";
  // The weight row-major, as PyTorch's weight tensor (out_features, in_features).
  static void encode(ByteWriter& writer, const Dense<T>& layer) {
    writer.u64(static_cast<std::uint64_t>(layer.in_features()));
    writer.u64(static_cast<std::uint64_t>(layer.out_features()));
    writer.boolean(layer.has_bias());
    const RowMajor rows = layer.weight();
    writer.scalars(rows.data(), static_cast<std::size_t>(rows.size()));
    writer.scalars(layer.bias().data(), static_cast<std::size_t>(layer.bias().size()));
  }
  static Dense<T> decode(ByteReader& reader, const std::string&, int) {
    const std::size_t in = reader.take_count("in_features", sizeof(T), 1);
    const std::size_t out = reader.take_count("out_features", sizeof(T), 1);
    const bool has_bias = reader.boolean("bias flag");
    if (out > reader.remaining() / sizeof(T) / in)
      reader.fail("truncated: a ", out, " x ", in, " weight does not fit in the ",
                  reader.remaining(), " bytes that remain");
    // A generator of its own: loading must not advance bnorm::default_generator().
    Generator unused(0);
    Dense<T> layer(static_cast<Index>(in), static_cast<Index>(out),
                   has_bias ? Bias::learned : Bias::none, Init::xavier(), unused);
    RowMajor rows(layer.out_features(), layer.in_features());
    reader.scalars(rows.data(), static_cast<std::size_t>(rows.size()), "weight");
    layer.weight() = rows;
    reader.scalars(layer.bias().data(), static_cast<std::size_t>(layer.bias().size()), "bias");
    return layer;
  }
  static void compare(const Dense<T>& network, const Dense<T>& file, const std::string& location) {
    require_same(location, "in_features", network.in_features(), file.in_features());
    require_same(location, "out_features", network.out_features(), file.out_features());
    require_same(location, "bias", network.has_bias(), file.has_bias());
  }
  static void assign(Dense<T>& network, const Dense<T>& file) {
    network.weight() = file.weight();
    network.bias() = file.bias();
  }

 private:
  using RowMajor = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
};

template <FileScalar T>
struct LayerCodec<BatchNorm<T>> {
  using Layer = BatchNorm<T>;
  static constexpr LayerTag tag = LayerTag::batch_norm;
  static constexpr std::string_view kind = "BatchNorm";
  // The StatisticsSync hook is a connection to other processes, not state: not saved.
  static void encode(ByteWriter& writer, const BatchNorm<T>& layer) {
    const BatchNormOptions<T>& options = layer.options();
    writer.u64(static_cast<std::uint64_t>(layer.features()));
    write_option(writer, options.momentum);
    write_option(writer, options.eps);
    writer.boolean(options.affine);
    writer.boolean(options.track_running_stats);
    writer.u8(options.running_average == RunningAverage::exponential ? 0 : 1);
    writer.u64(static_cast<std::uint64_t>(options.virtual_batch_size));
    writer.boolean(options.renormalize);
    write_option(writer, options.rmax);
    write_option(writer, options.dmax);
    writer.u8(options.small_batch == SmallBatch::error ? 0 : 1);
    const auto features = static_cast<std::size_t>(layer.features());
    writer.scalars(layer.gamma().data(), features);
    writer.scalars(layer.beta().data(), features);
    if (layer.tracking()) {
      writer.scalars(layer.running_mean().data(), features);
      writer.scalars(layer.running_var().data(), features);
    }
    writer.i64(layer.num_batches_tracked());
  }

  static BatchNorm<T> decode(ByteReader& reader, const std::string&, int) {
    // gamma and beta follow: 2 * features values must remain.
    const std::size_t features = reader.take_count("features", 2 * sizeof(T), 1);
    BatchNormOptions<T> options;
    options.momentum = read_option<decltype(options.momentum)>(reader, "momentum");
    options.eps = read_option<decltype(options.eps)>(reader, "eps");
    options.affine = reader.boolean("affine");
    options.track_running_stats = reader.boolean("track_running_stats");
    options.running_average = read_enum<RunningAverage>(reader, "running_average");
    const std::size_t ghost_at = reader.position();
    const std::uint64_t ghost = reader.u64("virtual_batch_size");
    if (ghost > static_cast<std::uint64_t>(std::numeric_limits<Index>::max()))
      reader.fail_at(ghost_at, "virtual_batch_size ", ghost, " is out of range");
    options.virtual_batch_size = static_cast<Index>(ghost);
    options.renormalize = reader.boolean("renormalize");
    options.rmax = read_option<decltype(options.rmax)>(reader, "rmax");
    options.dmax = read_option<decltype(options.dmax)>(reader, "dmax");
    options.small_batch = read_enum<SmallBatch>(reader, "small_batch");
    reader.need_items(features, (options.track_running_stats ? 4 : 2) * sizeof(T),
                      "gamma, beta and running statistics");
    BatchNorm<T> layer = construct(reader, static_cast<Index>(features), options);
    reader.scalars(layer.gamma().data(), features, "gamma");
    reader.scalars(layer.beta().data(), features, "beta");
    if (layer.tracking()) {
      reader.scalars(layer.running_mean().data(), features, "running_mean");
      reader.scalars(layer.running_var().data(), features, "running_var");
    }
    layer.set_num_batches_tracked(reader.counter("num_batches_tracked"));
    return layer;
  }

  static void compare(const BatchNorm<T>& network, const BatchNorm<T>& file,
                      const std::string& location) {
    const BatchNormOptions<T>& a = network.options();
    const BatchNormOptions<T>& b = file.options();
    require_same(location, "features", network.features(), file.features());
    require_same(location, "momentum", a.momentum, b.momentum);
    require_same(location, "eps", a.eps, b.eps);
    require_same(location, "affine", a.affine, b.affine);
    require_same(location, "track_running_stats", a.track_running_stats, b.track_running_stats);
    require_same(location, "running_average", a.running_average, b.running_average);
    require_same(location, "virtual_batch_size", a.virtual_batch_size, b.virtual_batch_size);
    require_same(location, "renormalize", a.renormalize, b.renormalize);
    require_same(location, "rmax", a.rmax, b.rmax);
    require_same(location, "dmax", a.dmax, b.dmax);
    require_same(location, "small_batch", a.small_batch, b.small_batch);
  }

  static void assign(BatchNorm<T>& network, const BatchNorm<T>& file) {
    network.gamma() = file.gamma();
    network.beta() = file.beta();
    network.running_mean() = file.running_mean();
    network.running_var() = file.running_var();
    network.set_num_batches_tracked(file.num_batches_tracked());
  }

 private:
  template <class Enum>
  static Enum read_enum(ByteReader& reader, std::string_view what) {
    const std::size_t at = reader.position();
    const std::uint8_t value = reader.u8(what);
    if (value > 1) reader.fail_at(at, what, " must be 0 or 1, found ", int(value));
    if constexpr (std::is_same_v<Enum, RunningAverage>)
      return value == 0 ? RunningAverage::exponential : RunningAverage::cumulative;
    else
      return value == 0 ? SmallBatch::error : SmallBatch::use_running_statistics;
  }
  static BatchNorm<T> construct(ByteReader& reader, Index features, const BatchNormOptions<T>& options) {
    try {
      return BatchNorm<T>(features, options);
    } catch (const Error& error) {
      reader.fail("invalid options: ", error.what());
    }
  }
};

// One piece of a registered layer's state (a parameter or a buffer), by name.
template <class T>
struct StateSlot {
  std::string name;
  BufferKind kind = BufferKind::values;
  T* values = nullptr;
  Index rows = 0, cols = 0;
  long long* counter = nullptr;
  Generator* generator = nullptr;
};

// Every parameter, then every buffer, of a layer and its children (core/layer_ref.hpp).
template <template <class> class Ref, class T>
std::vector<StateSlot<T>> state_slots(const Ref<T>& layer) {
  std::vector<StateSlot<T>> slots;
  for (Parameter<T>& parameter : named_parameters(layer))
    slots.push_back({parameter.name(), BufferKind::values, parameter.value().data(), parameter.rows(),
                     parameter.cols()});
  for (Buffer<T>& buffer : named_buffers(layer)) {
    StateSlot<T> slot{buffer.name(), buffer.kind()};
    if (buffer.kind() == BufferKind::values) {
      slot.values = buffer.values().data();
      slot.rows = buffer.values().rows();
      slot.cols = buffer.values().cols();
    } else if (buffer.kind() == BufferKind::counter) {
      slot.counter = &buffer.counter();
    } else {
      slot.generator = &buffer.generator();
    }
    slots.push_back(std::move(slot));
  }
  return slots;
}

// A registered layer's record: u32-length name, u32 kind version, u64 count and f64
// constructor arguments, u64 count and state entries (docs/model_format.md).
template <FileScalar T>
struct RegisteredCodec {
  static void encode(ByteWriter& writer, const ConstLayerRef<T>& layer, const RegisteredLayer<T>& kind) {
    writer.u32(static_cast<std::uint32_t>(kind.name.size()));
    writer.raw(kind.name);
    writer.u32(kind.version);
    const std::vector<double> arguments = kind.arguments(layer);
    writer.u64(arguments.size());
    for (const double argument : arguments) writer.scalar(argument);
    const auto slots = state_slots(layer);
    writer.u64(slots.size());
    for (const StateSlot<T>& slot : slots) {
      writer.u32(static_cast<std::uint32_t>(slot.name.size()));
      writer.raw(slot.name);
      writer.u8(static_cast<std::uint8_t>(slot.kind));
      if (slot.kind == BufferKind::values) {
        writer.u64(static_cast<std::uint64_t>(slot.rows));
        writer.u64(static_cast<std::uint64_t>(slot.cols));
        writer.scalars(slot.values, static_cast<std::size_t>(slot.rows * slot.cols));
      } else if (slot.kind == BufferKind::counter) {
        writer.i64(*slot.counter);
      } else {
        write_generator_state(writer, slot.generator->state());
      }
    }
  }

  // Appends the layer to `net`; `here` names it in messages.
  static void decode(ByteReader& reader, Sequential<T>& net, const std::string& here) {
    const std::string name = text(reader, "layer kind name");
    reader.set_location(here + " (" + name + ")");
    const RegisteredLayer<T>* kind = registered_kind<T>(name);
    if (!kind)
      reader.fail("the layer kind '", name, "' is not registered in this program; call ",
                  "bnorm::register_layer for it before loading");
    const std::size_t version_at = reader.position();
    const std::uint32_t version = reader.u32("kind version");
    if (version == 0 || version > kind->version)
      reader.fail_at(version_at, "kind version ", version, " of '", name, "' is not one this program ",
                     "can read (1 to ", kind->version, ")");
    std::vector<double> arguments(reader.take_count("argument count", sizeof(double)));
    for (double& argument : arguments) argument = reader.scalar<double>("argument");
    const std::size_t at = reader.position();
    // The appended layer, from append itself: net.children() per layer made n layers cost n^2.
    const LayerRef<T> layer = [&] {
      try {
        return kind->append(net, arguments, version);
      } catch (const std::exception& error) {
        reader.fail_at(at, "cannot construct it from its ", arguments.size(), " arguments: ", error.what());
      }
    }();
    const auto slots = state_slots(layer);
    const std::size_t count = reader.take_count("state entry count", 1);
    if (count != slots.size())
      reader.fail("the file holds ", count, " state entries, the constructed layer has ", slots.size());
    for (const StateSlot<T>& slot : slots) {
      const std::size_t entry_at = reader.position();
      const std::string entry = text(reader, "state entry name");
      if (entry != slot.name)
        reader.fail_at(entry_at, "state entry '", entry, "' where the layer has '", slot.name, "'");
      const std::size_t kind_at = reader.position();
      if (reader.u8("state entry kind") != static_cast<std::uint8_t>(slot.kind))
        reader.fail_at(kind_at, "state entry '", entry, "' is of another kind than the layer's");
      if (slot.kind == BufferKind::values) {
        const std::uint64_t rows = reader.u64("rows"), cols = reader.u64("cols");
        if (rows != static_cast<std::uint64_t>(slot.rows) || cols != static_cast<std::uint64_t>(slot.cols))
          reader.fail("state entry '", entry, "' is ", rows, " x ", cols, ", the layer's is ",
                      shape_string(slot.rows, slot.cols));
        reader.scalars(slot.values, static_cast<std::size_t>(slot.rows * slot.cols), entry);
      } else if (slot.kind == BufferKind::counter) {
        *slot.counter = reader.counter(entry);
      } else {
        slot.generator->set_state(read_generator_state(reader));
      }
    }
  }

  // load_into's check: the same kind, constructor arguments and state shapes.
  static void compare(const ConstLayerRef<T>& network, const ConstLayerRef<T>& file,
                      const std::string& location) {
    const RegisteredLayer<T>* kind = registered_kind<T>(network.kind());
    if (network.kind() != file.kind())
      fail(location, ": the network has ", network.name(), ", the file has ", file.name());
    const auto a = kind->arguments(network), b = kind->arguments(file);
    if (a != b) fail(location, ": the constructor arguments differ");
    const auto sa = state_slots(network), sb = state_slots(file);
    bool same = sa.size() == sb.size();
    for (std::size_t i = 0; same && i < sa.size(); ++i)
      same = sa[i].name == sb[i].name && sa[i].kind == sb[i].kind && sa[i].rows == sb[i].rows &&
             sa[i].cols == sb[i].cols;
    if (!same) fail(location, ": the layers' state entries differ in names or shapes");
  }

  // After compare() succeeded: copies every state entry.
  static void assign(const LayerRef<T>& network, const ConstLayerRef<T>& file) {
    const auto to = state_slots(network), from = state_slots(file);
    for (std::size_t i = 0; i < to.size(); ++i) {
      if (to[i].kind == BufferKind::values)
        std::copy_n(from[i].values, to[i].rows * to[i].cols, to[i].values);
      else if (to[i].kind == BufferKind::counter)
        *to[i].counter = *from[i].counter;
      else
        *to[i].generator = *from[i].generator;
    }
  }

 private:
  static std::string text(ByteReader& reader, std::string_view what) {
    const std::size_t at = reader.position();
    const std::uint32_t size = reader.u32(what);
    if (size == 0 || size > 255) reader.fail_at(at, what, " must have 1 to 255 bytes, found ", size);
    const std::size_t start = reader.position();
    reader.skip(size, what);
    return std::string(reader.view(start, size));
  }
};

// Whether `net` holds a registered layer, which needs format version 2.
template <class T>
bool holds_registered_layer(const Sequential<T>& net) {
  bool found = false;
  for_each_layer(net, [&](const std::string&, const ConstLayerRef<T>& layer) {
    found = found || registered_kind<T>(layer.kind()) != nullptr;
  });
  return found;
}

// A Sequential record: the layer count, then each layer's tag and body.
template <FileScalar T>
struct LayerCodec<Sequential<T>> {
  using Layer = Sequential<T>;
  static constexpr LayerTag tag = LayerTag::sequential;
  static constexpr std::string_view kind = "Sequential";

  // `prefix` is "" for the whole network, "2." for the Sequential that is its layer 2.
  static void encode(ByteWriter& writer, const Sequential<T>& net, const std::string& prefix) {
    const std::vector<ConstChild<T>> children = net.children();
    writer.u64(children.size());
    for (std::size_t i = 0; i < children.size(); ++i) {
      const ConstLayerRef<T>& layer = children[i].layer;
      const bool known = visit_layer_codec(layer, [&]<class Codec>(Codec) {
        writer.u8(static_cast<std::uint8_t>(Codec::tag));
        if constexpr (Codec::tag == LayerTag::sequential)
          Codec::encode(writer, *layer.template as<Sequential<T>>(), prefix + std::to_string(i) + ".");
        else
          Codec::encode(writer, *layer.template as<typename Codec::Layer>());
      });
      if (known) continue;
      const RegisteredLayer<T>* kind = registered_kind<T>(layer.kind());
      if (!kind)
        fail("cannot save ", layer_location(prefix, i), " (", net.layer_name(i),
             "): it is not a built-in bnorm layer and its type is not registered: call ",
             "bnorm::register_layer for it (io/layer_registry.hpp)");
      writer.u8(static_cast<std::uint8_t>(LayerTag::registered));
      RegisteredCodec<T>::encode(writer, layer, *kind);
    }
  }
  static Sequential<T> decode(ByteReader& reader, const std::string& prefix, int depth) {
    if (depth > max_nesting_depth)
      reader.fail("Sequentials nested more than ", max_nesting_depth, " deep");
    // Each layer record takes at least its tag byte.
    const std::size_t count = reader.take_count("layer count", 1);
    Sequential<T> net;
    for (std::size_t i = 0; i < count; ++i) {
      const std::string here = layer_location(prefix, i);
      reader.set_location(here);
      const std::size_t tag_at = reader.position();
      const std::uint8_t tag = reader.u8("layer tag");
      if (tag == static_cast<std::uint8_t>(LayerTag::registered)) {
        RegisteredCodec<T>::decode(reader, net, here);
        continue;
      }
      const bool known = visit_tag_codec<T>(tag, [&]<class Codec>(Codec) {
        reader.set_location(here + " (" + std::string(Codec::kind) + ")");
        net.add(Codec::decode(reader, prefix + std::to_string(i) + ".", depth + 1));
      });
      if (!known)
        reader.fail_at(tag_at, "unknown layer tag ", int(tag), " (this bnorm knows tags 1 to 10)");
    }
    return net;
  }

  // load_into's strict check: the same layers, in the same order, built with the same
  // constructor arguments. `prefix` is "" for the whole network, "2." inside layer 2.
  static void compare(const Sequential<T>& network, const Sequential<T>& file,
                      const std::string& location, const std::string& prefix = "") {
    const std::string where = location.empty() ? "the network" : location;
    if (network.size() != file.size())
      fail(where, ": the network has ", network.size(), " layers, the file has ", file.size());
    const std::vector<ConstChild<T>> ours = network.children(), theirs = file.children();
    for (std::size_t i = 0; i < ours.size(); ++i) {
      const std::string here = layer_location(prefix, i);
      const bool known = visit_layer_codec(ours[i].layer, [&]<class Codec>(Codec) {
        using L = typename Codec::Layer;
        if (theirs[i].layer.kind() != typeid(L))
          fail(here, ": the network has ", network.layer_name(i), ", the file has ",
               file.layer_name(i));
        const std::string named = here + " (" + network.layer_name(i) + ")";
        if constexpr (Codec::tag == LayerTag::sequential)
          Codec::compare(*ours[i].layer.template as<L>(), *theirs[i].layer.template as<L>(), named,
                         prefix + std::to_string(i) + ".");
        else
          Codec::compare(*ours[i].layer.template as<L>(), *theirs[i].layer.template as<L>(), named);
      });
      if (known) continue;
      if (!registered_kind<T>(ours[i].layer.kind()))
        fail(here, ": the network has ", network.layer_name(i),
             ", which is not a built-in layer and not registered (bnorm::register_layer), so ",
             "cannot be in a model file; the file has ", file.layer_name(i));
      RegisteredCodec<T>::compare(ours[i].layer, theirs[i].layer,
                                  here + " (" + network.layer_name(i) + ")");
    }
  }

  static void assign(Sequential<T>& network, const Sequential<T>& file) {
    const std::vector<Child<T>> ours = network.children();
    const std::vector<ConstChild<T>> theirs = file.children();
    for (std::size_t i = 0; i < ours.size(); ++i) {
      const bool known = visit_layer_codec(theirs[i].layer, [&]<class Codec>(Codec) {
        using L = typename Codec::Layer;
        Codec::assign(*ours[i].layer.template as<L>(), *theirs[i].layer.template as<L>());
      });
      if (!known) RegisteredCodec<T>::assign(ours[i].layer, theirs[i].layer);
    }
  }
};

}  // namespace bnorm::detail
