// A network's state in the safetensors format (io/safetensors_format.hpp), as PyTorch's
// state_dict of the equivalent nn.Sequential: train in PyTorch, run in bnorm, and back.
//
//   # Python
//   state = model.state_dict()   # then written with the safetensors package (or by hand)
//   // C++: the same architecture, built in bnorm
//   bnorm::load_safetensors(net, "model.safetensors");
//   bnorm::save_safetensors(net, "trained.safetensors");   // model.load_state_dict() reads it
//
// Keys and shapes are PyTorch's: the names of net.parameters() and of net.buffers() that are
// in_state_dict() ("0.weight", "1.bias", "1.running_mean", "1.num_batches_tracked"). A view's
// dimensions() is the tensor's rank: a Dense weight (out x in, as Linear.weight, even with one
// input) is the 2-D tensor [out, in]; a vector (biases, BatchNorm's weight and bias, running
// statistics) the 1-D tensor [n]; num_batches_tracked is an I64 scalar (shape []).
// The data are row-major, so a weight is transposed from Eigen's column-major storage on the
// way in and out.
//
// load_safetensors is strict, like PyTorch's load_state_dict(strict=True): every key of the
// network in the file, no other key, the same shapes. F32, F64, F16 and BF16 tensors convert
// to T (F16 and BF16 exactly; F64 rounds to nearest in float); a counter must be I64, >= 0
// and below the largest i64 (the next training batch increments it); other dtypes are
// refused. Every problem, in the file or in its match with the network, throws bnorm::Error
// naming the file and the key(s), with both shapes for a mismatch. The whole
// file is read and checked, and every value decoded, before the network is written: after
// an error the network is exactly as it was (strong guarantee).
//
// save_safetensors writes every key PyTorch expects (F32 for float, F64 for double; metadata
// {"format": "pt"}), atomically like bnorm::save (io/atomic_file.hpp): on failure the file at
// `path` is as it was. What PyTorch's state_dict does not hold is not written: gradients,
// Dropout's random stream, the layers' options (eps, momentum; the architecture is the code).
#pragma once

#include "core/error.hpp"
#include "model/sequential.hpp"
#include "io/atomic_file.hpp"
#include "io/open_file.hpp"
#include "io/little_endian.hpp"
#include "io/safetensors_format.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace bnorm {

namespace detail {

// One key of a network's state_dict and where its values live.
template <class T>
struct StateDictEntry {
  std::string key;
  std::vector<std::uint64_t> shape;  // PyTorch's
  T* values = nullptr;               // rows x cols, column-major; null for a counter
  Index rows = 0, cols = 0;
  long long* counter = nullptr;      // null for values
};

// Views of `net`'s state: to load into a Sequential<T>, to save from a const one.
template <class T, class Net>
std::vector<StateDictEntry<T>> state_dict_entries(Net& net) {
  const auto shape_of = [](int dimensions, Index rows, Index cols) {
    if (dimensions == 1) return std::vector<std::uint64_t>{std::uint64_t(rows)};
    return std::vector<std::uint64_t>{std::uint64_t(rows), std::uint64_t(cols)};
  };
  std::vector<StateDictEntry<T>> entries;
  for (auto& parameter : net.parameters()) {
    auto& value = parameter.value();
    entries.push_back({parameter.name(), shape_of(parameter.dimensions(), value.rows(), value.cols()),
                       value.data(), value.rows(), value.cols(), nullptr});
  }
  for (auto& buffer : net.buffers()) {
    if (!buffer.in_state_dict()) continue;
    if (buffer.kind() == BufferKind::counter) {
      entries.push_back({buffer.name(), {}, nullptr, 0, 0, &buffer.counter()});
    } else {
      auto& values = buffer.values();
      entries.push_back({buffer.name(), shape_of(buffer.dimensions(), values.rows(), values.cols()),
                         values.data(), values.rows(), values.cols(), nullptr});
    }
  }
  return entries;
}

inline std::string safetensors_source(const std::filesystem::path& path) {
  return "safetensors file '" + path.string() + "'";
}

// A values tensor decoded into a rows x cols matrix: element (r, c) is the file's element
// r * cols + c (row-major; a 1-D tensor is rows x 1).
template <class T>
Matrix<T> decode_values(const SafetensorsTensor& tensor, Index rows, Index cols) {
  Matrix<T> values(rows, cols);
  for (Index r = 0; r < rows; ++r)
    for (Index c = 0; c < cols; ++c)
      values(r, c) = static_cast<T>(
          safetensors_float_element(tensor, static_cast<std::size_t>(r * cols + c)));
  return values;
}

}  // namespace detail

namespace detail {

// load_safetensors on the bytes of a file; `source` names it in every message.
template <FileScalar T>
void load_safetensors_bytes(Sequential<T>& net, std::string_view bytes, const std::string& source) {
  const SafetensorsContents contents = parse_safetensors(bytes, source);
  const std::vector<StateDictEntry<T>> entries = state_dict_entries<T>(net);

  std::map<std::string, const SafetensorsTensor*> in_file;
  for (const auto& tensor : contents.tensors) in_file[tensor.name] = &tensor;
  std::set<std::string> expected;
  std::string missing, mismatched;
  for (const auto& entry : entries) {
    expected.insert(entry.key);
    const auto found = in_file.find(entry.key);
    if (found == in_file.end())
      missing += (missing.empty() ? "" : ", ") + entry.key + " " + safetensors_shape_string(entry.shape);
    else if (found->second->shape != entry.shape)
      mismatched += (mismatched.empty() ? "" : "; ") + entry.key + ": the file has " +
                    safetensors_shape_string(found->second->shape) + ", the network " +
                    safetensors_shape_string(entry.shape);
  }
  std::string unexpected;
  for (const auto& tensor : contents.tensors)
    if (!expected.count(tensor.name))
      unexpected += (unexpected.empty() ? "" : ", ") + tensor.name + " " +
                    safetensors_shape_string(tensor.shape);
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty())
    fail(source, ": does not match the network ", net.name(), " (a state_dict of another architecture?):",
         missing.empty() ? "" : " missing keys: ", missing, missing.empty() ? "" : ".",
         unexpected.empty() ? "" : " unexpected keys: ", unexpected, unexpected.empty() ? "" : ".",
         mismatched.empty() ? "" : " size mismatch for ", mismatched, mismatched.empty() ? "" : ".");

  // Decode everything first; only then write into the network (nothing below can fail).
  std::vector<Matrix<T>> values(entries.size());
  std::vector<long long> counters(entries.size(), 0);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const StateDictEntry<T>& entry = entries[i];
    const SafetensorsTensor& tensor = *in_file.at(entry.key);
    if (entry.counter) {
      if (tensor.dtype != "I64")
        fail(source, ": tensor '", entry.key, "' has dtype ", tensor.dtype,
             "; a counter (PyTorch's int64 num_batches_tracked) must be I64");
      ByteReader counter(tensor.data, source, static_cast<std::size_t>(tensor.data.data() - bytes.data()));
      counter.set_location("tensor '" + entry.key + "'");
      counters[i] = counter.counter("the count");
    } else {
      if (!is_safetensors_float_dtype(tensor.dtype))
        fail(source, ": tensor '", entry.key, "' has dtype ", tensor.dtype,
             ", which bnorm does not load; it loads F32, F64, F16 and BF16 values");
      values[i] = decode_values<T>(tensor, entry.rows, entry.cols);
    }
  }
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].counter) *entries[i].counter = counters[i];
    else Eigen::Map<Matrix<T>>(entries[i].values, entries[i].rows, entries[i].cols) = values[i];
  }
}

// save_safetensors's bytes.
template <FileScalar T>
std::string encode_state_dict(const Sequential<T>& net) {
  const std::vector<StateDictEntry<T>> entries = state_dict_entries<T>(net);
  std::vector<SafetensorsOutput> tensors;
  tensors.reserve(entries.size());
  for (const auto& entry : entries) {
    ByteWriter data;
    if (entry.counter) {
      data.i64(*entry.counter);
      tensors.push_back({entry.key, "I64", entry.shape, data.take()});
      continue;
    }
    const Eigen::Map<const Matrix<T>> values(entry.values, entry.rows, entry.cols);
    for (Index r = 0; r < entry.rows; ++r)
      for (Index c = 0; c < entry.cols; ++c) data.scalar(values(r, c));
    tensors.push_back({entry.key, sizeof(T) == 4 ? "F32" : "F64", entry.shape, data.take()});
  }
  return encode_safetensors(tensors, {{"format", "pt"}});
}

}  // namespace detail

// Loads PyTorch's state_dict of the equivalent nn.Sequential from `path` into `net` (see the
// top of this header). Strong guarantee: on any error `net` is unchanged.
template <FileScalar T>
void load_safetensors(Sequential<T>& net, const std::filesystem::path& path) {
  const std::string source = detail::safetensors_source(path);
  detail::load_safetensors_bytes(net, detail::read_whole_file(path, source + ": "), source);
}

// Writes PyTorch's state_dict of the equivalent nn.Sequential to `path`, atomically.
template <FileScalar T>
void save_safetensors(const Sequential<T>& net, const std::filesystem::path& path) {
  write_file_atomically(path, detail::encode_state_dict(net));
}

}  // namespace bnorm
