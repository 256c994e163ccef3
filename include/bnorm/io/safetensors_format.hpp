// The safetensors file format (Hugging Face's; https://github.com/huggingface/safetensors),
// read and written as a list of named tensors, with nothing about networks: that mapping is
// in bnorm/safetensors.hpp.
//
// Layout, as its authors specify it:
//   8 bytes      N, the header's length: an unsigned 64-bit little-endian integer
//   N bytes      the header: UTF-8 JSON, one object. Each key is a tensor's name, each value
//                {"dtype": "F32", "shape": [3, 2], "data_offsets": [begin, end]}, the offsets
//                in bytes from the first byte after the header, end exclusive. The optional
//                key "__metadata__" maps strings to strings. Writers may pad the header with
//                spaces (the reference writer pads it to a multiple of 8 bytes).
//   the rest     the data: each tensor's elements, little-endian, row-major (C order), with
//                no hole and no overlap between tensors, and nothing after the last one.
//
// parse_safetensors() trusts nothing in the bytes. Every number is checked before it is used,
// so no input makes it read out of bounds or allocate from an unchecked size: the header
// length against the bytes there are (and against a 100 MB ceiling, the reference reader's);
// the JSON by nlohmann::json (malformed text, invalid UTF-8); the header's structure (an
// object, every entry an object of exactly dtype, shape and data_offsets, each of its type;
// no key twice, in the header or in an entry); each shape (non-negative integers whose product times the dtype's size does
// not overflow and equals the entry's byte span); the offsets (within the data, begin <= end,
// and all spans together tiling the data area exactly). Every failure is a bnorm::Error that
// starts with the source's name ("safetensors file 'net.safetensors'") and names the key.
#pragma once

#include "../core/error.hpp"
#include "little_endian.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace bnorm {
namespace detail {

// The header's ceiling. Real headers are a few kilobytes per thousand tensors.
inline constexpr std::uint64_t safetensors_max_header_size = std::uint64_t{100} << 20;

// The dtypes of the format and their sizes in bytes; 0 for a name the format does not define.
inline std::size_t safetensors_dtype_size(std::string_view dtype) {
  static const std::map<std::string_view, std::size_t> sizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},   {"F8_E5M2", 1}, {"F8_E4M3", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2},  {"BF16", 2},    {"I32", 4},
      {"U32", 4},  {"F32", 4}, {"I64", 8},  {"U64", 8},     {"F64", 8}};
  const auto found = sizes.find(dtype);
  return found == sizes.end() ? 0 : found->second;
}

// "[3, 2]"; "[]" for a scalar.
inline std::string safetensors_shape_string(const std::vector<std::uint64_t>& shape) {
  std::ostringstream text;
  text << "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text << (i ? ", " : "") << shape[i];
  text << "]";
  return text.str();
}

// One tensor of a parsed file: `data` views the bytes of the input given to the parser.
struct SafetensorsTensor {
  std::string name;
  std::string dtype;
  std::vector<std::uint64_t> shape;
  std::string_view data;
};

struct SafetensorsContents {
  std::vector<SafetensorsTensor> tensors;  // in the order of their data
  std::map<std::string, std::string> metadata;
};

namespace safetensors_parsing {

// A value found in the header, for a message: a scalar as JSON (cut at 40 characters), a
// container by its kind and size only, since dumping a deeply nested one would recurse once
// per level (a 100 MB header can nest millions deep).
inline std::string describe(const nlohmann::json& value) {
  if (value.is_structured())
    return std::string(value.is_array() ? "an array" : "an object") + " of " +
           std::to_string(value.size()) + (value.size() == 1 ? " item" : " items");
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

inline std::uint64_t non_negative_integer(const nlohmann::json& value, const std::string& source,
                                          const std::string& key, std::string_view what) {
  // nlohmann::json stores every non-negative integer as unsigned; negatives, fractions and
  // integers beyond 2^64 - 1 (parsed as floating point) are not.
  if (!value.is_number_unsigned())
    fail(source, ": tensor '", key, "': ", what, " must be a non-negative integer, found ",
         describe(value));
  return value.get<std::uint64_t>();
}

inline std::vector<std::uint64_t> integer_list(const nlohmann::json& value,
                                               const std::string& source,
                                               const std::string& key, std::string_view what) {
  if (!value.is_array())
    fail(source, ": tensor '", key, "': ", what, " must be a list of integers, found ",
         describe(value));
  std::vector<std::uint64_t> list;
  list.reserve(value.size());  // bounded by the header, which is in memory already
  for (const auto& item : value) list.push_back(non_negative_integer(item, source, key, what));
  return list;
}

}  // namespace safetensors_parsing

// Parses and checks a whole safetensors file held in `bytes` (see the top of this header).
inline SafetensorsContents parse_safetensors(std::string_view bytes, const std::string& source) {
  using nlohmann::json;
  using namespace safetensors_parsing;
  if (bytes.empty()) fail(source, ": the file is empty; a safetensors file starts with an 8-byte header length");
  ByteReader reader(bytes, source);
  const std::uint64_t header_size = reader.u64("the header length");
  if (header_size > reader.remaining())
    fail(source, ": the header length is ", header_size, " bytes but only ", reader.remaining(),
         " bytes follow it: the file is truncated or not a safetensors file");
  if (header_size > safetensors_max_header_size)
    fail(source, ": the header length is ", header_size, " bytes, more than the format's ceiling of ",
         safetensors_max_header_size, " bytes");
  const std::string_view header_text = bytes.substr(8, header_size);
  const std::string_view data = bytes.substr(8 + header_size);

  // nlohmann::json keeps the last of two equal keys; the format has no such header (the
  // reference reader refuses one), so the parser's callback refuses a key seen twice in the
  // top-level object or in one of its entries (a tensor's fields, __metadata__). Deeper
  // objects are refused anyway, as values of the wrong type.
  std::set<std::string> names_seen, fields_seen;
  std::string entry;  // the entry whose fields are being parsed
  const json::parser_callback_t refuse_duplicate_keys = [&](int depth, json::parse_event_t event,
                                                            json& parsed) {
    // depth: for a key, that of the object holding it (1 = the header); for an object's start,
    // that of the value it is (0 = the header, 1 = an entry).
    if (event == json::parse_event_t::object_start && depth == 1) fields_seen.clear();
    if (event != json::parse_event_t::key) return true;
    const std::string& key = parsed.get_ref<const std::string&>();
    if (depth == 1) {
      if (!names_seen.insert(key).second) fail(source, ": the header names tensor '", key, "' twice");
      entry = key;
    } else if (depth == 2 && !fields_seen.insert(key).second) {
      if (entry == "__metadata__") fail(source, ": __metadata__ has the key '", key, "' twice");
      fail(source, ": tensor '", entry, "' has the field '", key, "' twice");
    }
    return true;
  };
  json header;
  try {
    header = json::parse(header_text.begin(), header_text.end(), refuse_duplicate_keys);
  } catch (const json::exception& error) {
    fail(source, ": the header (", header_size, " bytes after the length) is not valid JSON: ",
         error.what());
  }
  if (!header.is_object())
    fail(source, ": the header must be a JSON object of tensors, found a ", header.type_name());

  SafetensorsContents contents;
  struct Span {
    std::uint64_t begin, end;
    std::size_t tensor;
  };
  std::vector<Span> spans;
  for (const auto& [key, entry] : header.items()) {
    if (key == "__metadata__") {
      if (!entry.is_object())
        fail(source, ": __metadata__ must be an object of strings, found ", describe(entry));
      for (const auto& [name, value] : entry.items()) {
        if (!value.is_string())
          fail(source, ": __metadata__ entry '", name, "' must be a string, found ", describe(value));
        contents.metadata[name] = value.get<std::string>();
      }
      continue;
    }
    if (!entry.is_object())
      fail(source, ": tensor '", key, "' must be an object with dtype, shape and data_offsets, found ",
           describe(entry));
    for (const auto& [field, ignored] : entry.items())
      if (field != "dtype" && field != "shape" && field != "data_offsets")
        fail(source, ": tensor '", key, "' has an unknown field '", field,
             "'; the format has dtype, shape and data_offsets");
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!entry.contains(field)) fail(source, ": tensor '", key, "' has no ", field);

    SafetensorsTensor tensor;
    tensor.name = key;
    if (!entry["dtype"].is_string())
      fail(source, ": tensor '", key, "': dtype must be a string, found ", describe(entry["dtype"]));
    tensor.dtype = entry["dtype"].get<std::string>();
    const std::size_t element_size = safetensors_dtype_size(tensor.dtype);
    if (element_size == 0)
      fail(source, ": tensor '", key, "': '", tensor.dtype, "' is not a safetensors dtype");
    tensor.shape = integer_list(entry["shape"], source, key, "shape");
    const std::vector<std::uint64_t> offsets = integer_list(entry["data_offsets"], source, key, "data_offsets");
    if (offsets.size() != 2)
      fail(source, ": tensor '", key, "': data_offsets must be [begin, end], found ",
           describe(entry["data_offsets"]));
    if (offsets[0] > offsets[1] || offsets[1] > data.size())
      fail(source, ": tensor '", key, "': data_offsets [", offsets[0], ", ", offsets[1],
           "] are not a span of the data area of ", data.size(), " bytes");

    std::uint64_t byte_count = element_size;
    for (const std::uint64_t extent : tensor.shape) {
      if (extent != 0 && byte_count > std::numeric_limits<std::uint64_t>::max() / extent)
        fail(source, ": tensor '", key, "': shape ", safetensors_shape_string(tensor.shape),
             " of ", tensor.dtype, " holds more bytes than 2^64");
      byte_count *= extent;
    }
    if (byte_count != offsets[1] - offsets[0])
      fail(source, ": tensor '", key, "': shape ", safetensors_shape_string(tensor.shape), " of ",
           tensor.dtype, " needs ", byte_count, " bytes but data_offsets [", offsets[0], ", ",
           offsets[1], "] span ", offsets[1] - offsets[0]);
    tensor.data = data.substr(offsets[0], offsets[1] - offsets[0]);
    spans.push_back({offsets[0], offsets[1], contents.tensors.size()});
    contents.tensors.push_back(std::move(tensor));
  }

  // The spans, in order, must tile [0, data size): each begins where the one before ends.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t covered = 0;
  for (std::size_t i = 0; i < spans.size(); ++i) {
    const Span& span = spans[i];
    const std::string& name = contents.tensors[span.tensor].name;
    if (span.begin > covered)
      fail(source, ": the data has a hole: bytes [", covered, ", ", span.begin,
           ") belong to no tensor (before tensor '", name, "')");
    if (span.begin < covered)
      fail(source, ": tensor '", name, "' (data_offsets [", span.begin, ", ", span.end,
           "]) overlaps tensor '", contents.tensors[spans[i - 1].tensor].name, "', which ends at ", covered);
    covered = span.end;
  }
  if (covered != data.size())
    fail(source, ": the data area has ", data.size(), " bytes but the tensors cover only the first ",
         covered, ": the file has a hole or bytes after its last tensor");

  std::vector<SafetensorsTensor> ordered;
  ordered.reserve(spans.size());
  for (const Span& span : spans) ordered.push_back(std::move(contents.tensors[span.tensor]));
  contents.tensors = std::move(ordered);
  return contents;
}

// IEEE binary16 to float: every half value (subnormals, infinities, NaN) is exact in float.
inline float half_to_float(std::uint16_t bits) {
  const float sign = (bits & 0x8000u) ? -1.0f : 1.0f;
  const int exponent = (bits >> 10) & 0x1F;
  const int mantissa = bits & 0x3FF;
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -24);
  if (exponent == 31)
    return mantissa == 0 ? sign * std::numeric_limits<float>::infinity()
                         : std::numeric_limits<float>::quiet_NaN();
  return sign * std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);
}

// bfloat16 is the upper half of a binary32.
inline float bfloat16_to_float(std::uint16_t bits) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(bits) << 16);
}

// Element `index` of a floating-point tensor (F64, F32, F16 or BF16) as a double; the caller
// has checked the dtype and the index.
inline double safetensors_float_element(const SafetensorsTensor& tensor, std::size_t index) {
  const auto little_endian = [&](std::size_t width) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < width; ++i)
      value |= std::uint64_t(static_cast<std::uint8_t>(tensor.data[index * width + i])) << (8 * i);
    return value;
  };
  if (tensor.dtype == "F64") return std::bit_cast<double>(little_endian(8));
  if (tensor.dtype == "F32") return std::bit_cast<float>(static_cast<std::uint32_t>(little_endian(4)));
  if (tensor.dtype == "F16") return half_to_float(static_cast<std::uint16_t>(little_endian(2)));
  BNORM_ASSERT(tensor.dtype == "BF16");
  return bfloat16_to_float(static_cast<std::uint16_t>(little_endian(2)));
}

inline bool is_safetensors_float_dtype(std::string_view dtype) {
  return dtype == "F64" || dtype == "F32" || dtype == "F16" || dtype == "BF16";
}

// A tensor to write: its elements already encoded, little-endian and row-major.
struct SafetensorsOutput {
  std::string name;
  std::string dtype;
  std::vector<std::uint64_t> shape;
  std::string data;
};

// The bytes of a safetensors file holding `tensors` in this order, the header padded with
// spaces to a multiple of 8 bytes so that the data starts aligned, as the reference writer does.
inline std::string encode_safetensors(const std::vector<SafetensorsOutput>& tensors,
                                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& tensor : tensors) {
    header[tensor.name] = {{"dtype", tensor.dtype},
                           {"shape", tensor.shape},
                           {"data_offsets", {offset, offset + tensor.data.size()}}};
    offset += tensor.data.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  ByteWriter writer;
  writer.u64(text.size());
  writer.raw(text);
  for (const auto& tensor : tensors) writer.raw(tensor.data);
  return writer.take();
}

}  // namespace detail
}  // namespace bnorm
