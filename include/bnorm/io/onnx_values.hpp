// The pieces of an ONNX graph that the importer and exporter share: a constant tensor read
// from an initializer or a Constant node, node attributes with their defaults, and the
// float attributes (epsilon, momentum) mapped to and from PyTorch's double hyperparameters.
// Everything is read through ONNX's own protobuf classes (onnx::ModelProto and friends).
#pragma once

#include "../core/error.hpp"
#include "../core/types.hpp"

#include <onnx/onnx_pb.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace bnorm::detail {

// A constant tensor (weights, biases, statistics, Dropout's ratio), its values widened to
// double: float and double tensors convert exactly, and T rounds them once at the end.
struct OnnxTensor {
  std::vector<std::int64_t> dims;
  std::vector<double> values;
  int data_type = 0;

  std::string shape() const {
    std::string text = "[";
    for (std::size_t i = 0; i < dims.size(); ++i)
      text += (i ? ", " : "") + std::to_string(dims[i]);
    return text + "]";
  }
};

inline const char* onnx_type_name(int data_type) {
  switch (data_type) {
    case onnx::TensorProto_DataType_FLOAT: return "float";
    case onnx::TensorProto_DataType_DOUBLE: return "double";
    case onnx::TensorProto_DataType_INT64: return "int64";
    case onnx::TensorProto_DataType_INT32: return "int32";
    case onnx::TensorProto_DataType_BOOL: return "bool";
    case onnx::TensorProto_DataType_FLOAT16: return "float16";
    case onnx::TensorProto_DataType_BFLOAT16: return "bfloat16";
    default: return "another type";
  }
}

// Reads a tensor's values, from its typed field or its raw little-endian bytes. `where`
// names the tensor in messages. Checks the element count against the dimensions before
// anything is allocated, so a forged dimension cannot ask for terabytes.
inline OnnxTensor read_onnx_tensor(const onnx::TensorProto& proto, const std::string& where) {
  OnnxTensor tensor;
  tensor.data_type = proto.data_type();
  if (proto.data_location() == onnx::TensorProto_DataLocation_EXTERNAL)
    fail(where, " keeps its data in an external file, which bnorm does not read");
  if (proto.has_segment()) fail(where, " is a segment of a tensor, which bnorm does not read");
  std::uint64_t count = 1;
  for (const std::int64_t dim : proto.dims()) {
    require(dim >= 0, where, " has a negative dimension (", dim, ")");
    require(dim == 0 || count <= std::numeric_limits<std::uint32_t>::max() / std::uint64_t(dim),
            where, " has more than 2^32 elements");
    count *= std::uint64_t(dim);
    tensor.dims.push_back(dim);
  }
  std::size_t element_size = 0;
  int typed_count = 0;
  switch (tensor.data_type) {
    case onnx::TensorProto_DataType_FLOAT: element_size = 4; typed_count = proto.float_data_size(); break;
    case onnx::TensorProto_DataType_DOUBLE: element_size = 8; typed_count = proto.double_data_size(); break;
    case onnx::TensorProto_DataType_INT64: element_size = 8; typed_count = proto.int64_data_size(); break;
    // BOOL's typed field is int32_data, one value per element.
    case onnx::TensorProto_DataType_BOOL: element_size = 1; typed_count = proto.int32_data_size(); break;
    default:
      fail(where, " holds ", onnx_type_name(tensor.data_type), " (ONNX data type ",
           tensor.data_type, "); bnorm reads float, double, int64 and bool tensors");
  }
  const bool raw = proto.has_raw_data();
  const std::uint64_t stored = raw ? proto.raw_data().size() / element_size : std::uint64_t(typed_count);
  if (stored != count || (raw && proto.raw_data().size() % element_size != 0))
    fail(where, " has shape ", tensor.shape(), " (", count, " elements) but holds ",
         raw ? proto.raw_data().size() : std::size_t(typed_count), raw ? " bytes" : " values",
         raw ? " of raw data, not " + std::to_string(count * element_size) : std::string());
  tensor.values.resize(count);
  const auto raw_bytes = [&](std::size_t i) {
    return reinterpret_cast<const unsigned char*>(proto.raw_data().data()) + i * element_size;
  };
  // ONNX's raw_data is little-endian whatever the machine: assembled byte by byte.
  const auto raw_word = [&](std::size_t i) {
    std::uint64_t word = 0;
    for (std::size_t b = 0; b < element_size; ++b) word |= std::uint64_t(raw_bytes(i)[b]) << (8 * b);
    return word;
  };
  for (std::size_t i = 0; i < count; ++i) {
    switch (tensor.data_type) {
      case onnx::TensorProto_DataType_FLOAT:
        if (raw) {
          const auto word = static_cast<std::uint32_t>(raw_word(i));
          float value;
          std::memcpy(&value, &word, 4);
          tensor.values[i] = value;
        } else {
          tensor.values[i] = proto.float_data(int(i));
        }
        break;
      case onnx::TensorProto_DataType_DOUBLE:
        if (raw) {
          const std::uint64_t word = raw_word(i);
          std::memcpy(&tensor.values[i], &word, 8);
        } else {
          tensor.values[i] = proto.double_data(int(i));
        }
        break;
      case onnx::TensorProto_DataType_INT64:
        tensor.values[i] = double(raw ? static_cast<std::int64_t>(raw_word(i)) : proto.int64_data(int(i)));
        break;
      default:  // BOOL
        tensor.values[i] = (raw ? raw_word(i) : std::uint64_t(proto.int32_data(int(i)))) != 0;
    }
  }
  return tensor;
}

inline const onnx::AttributeProto* find_attribute(const onnx::NodeProto& node, const char* name) {
  for (const auto& attribute : node.attribute())
    if (attribute.name() == name) return &attribute;
  return nullptr;
}

// An INT or FLOAT attribute, or `fallback` (the operator's default) when it is absent.
inline std::int64_t int_attribute(const onnx::NodeProto& node, const char* name,
                                  std::int64_t fallback, const std::string& where) {
  const auto* attribute = find_attribute(node, name);
  if (!attribute) return fallback;
  require(attribute->type() == onnx::AttributeProto_AttributeType_INT, where, ": attribute '",
          name, "' is not an integer");
  return attribute->i();
}
inline float float_attribute(const onnx::NodeProto& node, const char* name, float fallback,
                             const std::string& where) {
  const auto* attribute = find_attribute(node, name);
  if (!attribute) return fallback;
  require(attribute->type() == onnx::AttributeProto_AttributeType_FLOAT, where, ": attribute '",
          name, "' is not a float");
  return attribute->f();
}

// ONNX stores epsilon and momentum as floats, PyTorch as doubles: torch writes float(1e-5).
// The shortest decimal that reads back as that float ("1e-05") is the number the user
// typed, so reading it as a double gives PyTorch's value exactly for every hyperparameter
// with at most 7 significant digits. Returns it with its decimal digits.
inline double shortest_decimal(float value, std::string* digits = nullptr) {
  char text[64];
  const auto result = std::to_chars(text, text + sizeof text, value, std::chars_format::fixed);
  std::string decimal(text, result.ptr);
  if (digits) *digits = decimal;
  double parsed = 0;
  std::from_chars(decimal.data(), decimal.data() + decimal.size(), parsed);
  return parsed;
}

// PyTorch's momentum (the weight of the new batch) from ONNX's (that of the running value):
// 1 - m, computed in decimal from m's shortest decimal, so 0.9f gives exactly 0.1.
inline double pytorch_momentum(float onnx_momentum) {
  std::string digits;
  const double value = shortest_decimal(onnx_momentum, &digits);
  const auto point = digits.find('.');
  if (value < 0 || value > 1 || point == std::string::npos || digits.size() - point - 1 > 15)
    return 1.0 - value;
  // m = D / 10^k exactly, so 1 - m = (10^k - D) / 10^k, one correctly rounded division.
  const std::string fraction = digits.substr(point + 1);
  std::int64_t denominator = 1, numerator = 0;
  for (char c : digits.substr(0, point) + fraction) numerator = numerator * 10 + (c - '0');
  for (std::size_t i = 0; i < fraction.size(); ++i) denominator *= 10;
  return double(denominator - numerator) / double(denominator);
}

}  // namespace bnorm::detail
