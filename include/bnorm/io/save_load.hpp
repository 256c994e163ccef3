// Saving and loading whole networks: architecture, parameters, BatchNorm's running
// statistics and counters, Dropout's mask stream. The format is docs/model_format.md.
//
//   bnorm::save(net, "net.bnorm");                          // atomic: old file or new file
//   auto net = bnorm::load<float>("net.bnorm");             // a new Sequential<float>
//   bnorm::load_into(net, "net.bnorm");                     // into an identical network
//
// What a file holds: every layer's kind and constructor arguments (sizes, options), Dense's
// weight and bias, BatchNorm's gamma, beta, running_mean, running_var and
// num_batches_tracked, LeakyReLU's slope, Dropout's p and generator state, nested
// Sequentials. The round trip is bit-exact, so eval outputs (and, Dropout's masks included,
// training outputs) are identical after reloading. Not saved: gradients (every backward
// overwrites them), buffers of the last forward, a BatchNorm's StatisticsSync hook, the
// Sequential's set_input_gradient setting, optimizer state. A layer type of your own is
// saved once registered (io/layer_registry.hpp: its constructor arguments and its whole
// state through parameters(), buffers() and children()); an unregistered one makes save()
// throw a bnorm::Error that names it.
//
// Errors: every problem throws bnorm::Error, saying what is wrong and where (the file, the
// layer, the byte offset): a missing or unreadable file, a truncated one, a wrong magic
// number, a newer format version, the other scalar type, a checksum mismatch, an invalid
// record, and for load_into a network that differs from the file's.
//
// Exception guarantees:
//   save(net, path)      strong: on failure the file at `path` is as it was (or still
//                        absent) and no temporary file remains; `net` is never changed.
//                        A crash or kill mid-save also leaves `path` intact.
//   save(net, stream)    basic: the stream may hold part of a model; `net` is unchanged.
//   load<T>(path/stream) strong: nothing but the stream's position changes (load does not
//                        draw from bnorm::default_generator()).
//   load_into(net, ...)  strong: on any failure `net` is exactly as it was. The whole file
//                        is read, verified and decoded, and compared with `net`, before a
//                        single value of `net` is written; the copy itself cannot fail.
#pragma once

#include "../core/error.hpp"
#include "../model/sequential.hpp"
#include "atomic_file.hpp"
#include "layer_codec.hpp"
#include "layer_registry.hpp"
#include "little_endian.hpp"
#include "model_format.hpp"
#include "open_file.hpp"

#include <filesystem>
#include <fstream>
#include <istream>
#include <ostream>
#include <string>

namespace bnorm {

namespace detail {

inline std::string model_file_source(const std::filesystem::path& path) {
  return "model file '" + path.string() + "'";
}

// Reads the model in the file at `path`; the file must hold exactly one model.
template <FileScalar T>
Sequential<T> read_model_file(const std::filesystem::path& path) {
  const std::string source = model_file_source(path);
  std::ifstream file = open_for_reading(path, source + ": ");
  Sequential<T> net = read_model<T>(file, source);
  if (file.peek() != std::ifstream::traits_type::eof())
    fail(source, ": unexpected bytes after the end of the model (at byte ",
         static_cast<long long>(file.tellg()), "); the file is corrupt");
  return net;
}

// load_into's two phases: check everything, then copy (which cannot fail).
template <FileScalar T>
void assign_checked(Sequential<T>& net, const Sequential<T>& loaded, const std::string& source) {
  try {
    LayerCodec<Sequential<T>>::compare(net, loaded, "", "");
  } catch (const Error& error) {
    fail(source, ": does not match the network: ", error.what());
  }
  LayerCodec<Sequential<T>>::assign(net, loaded);
}

}  // namespace detail

// Writes `net` to `path` atomically (io/atomic_file.hpp): through a temporary file in the
// same folder, flushed to disk and renamed over `path`.
template <FileScalar T>
void save(const Sequential<T>& net, const std::filesystem::path& path) {
  write_file_atomically(path, detail::encode_model(net));
}

// Writes `net` to a stream opened in binary mode.
template <FileScalar T>
void save(const Sequential<T>& net, std::ostream& out) {
  const std::string bytes = detail::encode_model(net);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) detail::fail("model stream: writing ", bytes.size(), " bytes failed");
}

// The network saved in `path`, as a new Sequential<T>.
template <FileScalar T>
Sequential<T> load(const std::filesystem::path& path) {
  return detail::read_model_file<T>(path);
}

// The network at the stream's position; the stream is left just after it.
template <FileScalar T>
Sequential<T> load(std::istream& in) {
  return detail::read_model<T>(in, "model stream");
}

// Loads into a network built like the saved one: the same layers in the same order, with
// the same constructor arguments (sizes and every option). A difference throws
// bnorm::Error naming the layer, the argument, the network's value and the file's.
// Values are copied into net's existing layers, so Parameter views (an optimizer's)
// stay valid.
template <FileScalar T>
void load_into(Sequential<T>& net, const std::filesystem::path& path) {
  detail::assign_checked(net, detail::read_model_file<T>(path), detail::model_file_source(path));
}

template <FileScalar T>
void load_into(Sequential<T>& net, std::istream& in) {
  detail::assign_checked(net, detail::read_model<T>(in, "model stream"), "model stream");
}

}  // namespace bnorm
