// bnorm-test-needs: bnorm::safetensors
// load_safetensors and save_safetensors (safetensors.hpp) and the format's parser
// (io/safetensors_format.hpp): PyTorch's eval outputs from PyTorch's files
// (tests/reference/make_safetensors.py), half-precision conversion, the round trip, the
// row-major layout, strictness, and every class of bad input, each leaving the network as it was.
#include <bnorm/bnorm.hpp>
#include <bnorm/safetensors.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/model_files.hpp"
#include "support/reference.hpp"
#include "support/safetensors_models.hpp"

#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>

using namespace bnorm;
using namespace bnorm_test;
using nlohmann::json;

namespace {

const std::filesystem::path fixtures = std::filesystem::path(BNORM_TEST_DATA_DIR) / "safetensors";

template <class T>
const char* type_tag() {
  return sizeof(T) == 4 ? "float" : "double";
}

// Every value of the network's state_dict, in order: parameters, buffers' values, counters.
template <class T>
std::vector<double> state_values(Sequential<T>& net) {
  std::vector<double> values;
  for (auto& parameter : net.parameters())
    for (Index i = 0; i < parameter.size(); ++i) values.push_back(parameter.value().data()[i]);
  for (auto& buffer : net.buffers()) {
    if (buffer.kind() == BufferKind::values)
      for (Index i = 0; i < buffer.values().size(); ++i) values.push_back(buffer.values().data()[i]);
    else if (buffer.kind() == BufferKind::counter)
      values.push_back(static_cast<double>(buffer.counter()));
  }
  return values;
}

template <class T>
double max_relative_difference(const Matrix<T>& actual, const Matrix<T>& expected) {
  double worst = 0;
  for (Index i = 0; i < expected.size(); ++i) {
    const double scale = std::max(std::abs(double(expected.data()[i])), 1e-30);
    worst = std::max(worst, std::abs(double(actual.data()[i]) - double(expected.data()[i])) / scale);
  }
  return worst;
}

// A small network with every kind of state_dict entry, and its file split into header and data.
Sequential<float> tiny_network() {
  return Sequential<float>{Dense<float>(2, 1), BatchNorm<float>(1)};
}
std::string tiny_file_bytes(const TempDir& folder) {
  const auto path = folder / "tiny.safetensors";
  save_safetensors(tiny_network(), path);
  return read_file(path);
}

// A file made of a header (any JSON text) and data bytes.
std::string file_of(const std::string& header_text, const std::string& data) {
  ByteWriter writer;
  writer.u64(header_text.size());
  writer.raw(header_text);
  writer.raw(data);
  return writer.take();
}

// The tiny network's file after `change` edited its parsed header and its data.
std::string edited(const std::string& valid, const std::function<void(json&, std::string&)>& change) {
  std::uint64_t size = 0;
  for (int i = 0; i < 8; ++i) size |= std::uint64_t(static_cast<std::uint8_t>(valid[i])) << (8 * i);
  json header = json::parse(valid.substr(8, size));
  std::string data = valid.substr(8 + size);
  change(header, data);
  return file_of(header.dump(), data);
}

}  // namespace

TEST_CASE_TEMPLATE("PyTorch's state_dicts load with PyTorch's eval outputs", T, float, double) {
  const ReferenceData reference(std::string(BNORM_TEST_DATA_DIR) + "/safetensors.txt");
  const double tolerance = sizeof(T) == 4 ? 2e-5 : 1e-12;
  for (const std::string name : safetensors_model_names) {
    const std::string stem = name + "_" + type_tag<T>();
    CAPTURE(stem);
    Sequential<T> net = safetensors_model<T>(name);
    load_safetensors(net, fixtures / (stem + ".safetensors"));
    const Matrix<T> x = reference.matrix_as<T>(stem + ".x");
    const Matrix<T> expected = reference.matrix_as<T>(stem + ".y");
    const Matrix<T> y = net.forward(x, Mode::eval);
    REQUIRE(y.rows() == expected.rows());
    REQUIRE(y.cols() == expected.cols());
    CHECK(max_relative_difference(y, expected) <= tolerance);
    // Three training steps in PyTorch: the running statistics and counters came along.
    for (auto& buffer : net.buffers())
      if (buffer.kind() == BufferKind::counter) CHECK(buffer.counter() == 3);
  }
}

TEST_CASE("A double file loads into a float network and a float file into a double one") {
  Sequential<float> narrow = safetensors_model<float>("one_input");
  load_safetensors(narrow, fixtures / "one_input_double.safetensors");
  Sequential<double> wide = safetensors_model<double>("one_input");
  load_safetensors(wide, fixtures / "one_input_double.safetensors");
  const std::vector<double> from_double = state_values(wide);
  const std::vector<double> rounded = state_values(narrow);
  REQUIRE(rounded.size() == from_double.size());
  for (std::size_t i = 0; i < rounded.size(); ++i)
    CHECK(rounded[i] == double(static_cast<float>(from_double[i])));
  Sequential<double> widened = safetensors_model<double>("one_input");
  load_safetensors(widened, fixtures / "one_input_float.safetensors");
  Sequential<float> same = safetensors_model<float>("one_input");
  load_safetensors(same, fixtures / "one_input_float.safetensors");
  CHECK(state_values(widened) == state_values(same));
}

TEST_CASE("F16 and BF16 tensors convert exactly") {
  for (const std::string half : {"f16", "bf16"}) {
    CAPTURE(half);
    Sequential<float> from_half = safetensors_model<float>("one_input");
    load_safetensors(from_half, fixtures / ("one_input_float_" + half + ".safetensors"));
    Sequential<float> from_wide = safetensors_model<float>("one_input");
    load_safetensors(from_wide, fixtures / ("one_input_float_" + half + "_as_f32.safetensors"));
    CHECK(state_values(from_half) == state_values(from_wide));
  }
  // Every class of binary16 value: normal, subnormal, the largest, signed zero, infinity, NaN.
  CHECK(detail::half_to_float(0x3C00) == 1.0f);
  CHECK(detail::half_to_float(0xC100) == -2.5f);
  CHECK(detail::half_to_float(0x0001) == std::ldexp(1.0f, -24));
  CHECK(detail::half_to_float(0x03FF) == std::ldexp(1023.0f, -24));
  CHECK(detail::half_to_float(0x7BFF) == 65504.0f);
  CHECK(std::signbit(detail::half_to_float(0x8000)));
  CHECK(detail::half_to_float(0xFC00) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(detail::half_to_float(0x7E00)));
  CHECK(detail::bfloat16_to_float(0x3F80) == 1.0f);
  CHECK(detail::bfloat16_to_float(0xC0A0) == -5.0f);
}

TEST_CASE_TEMPLATE("save_safetensors then load_safetensors restores every value bit for bit", T, float, double) {
  TempDir folder;
  for (const std::string name : safetensors_model_names) {
    CAPTURE(name);
    Sequential<T> original = safetensors_model<T>(name);
    load_safetensors(original, fixtures / (name + "_" + type_tag<T>() + ".safetensors"));
    const auto path = folder / (name + ".safetensors");
    save_safetensors(original, path);
    Sequential<T> reloaded = safetensors_model<T>(name);
    CHECK(state_values(reloaded) != state_values(original));
    load_safetensors(reloaded, path);
    CHECK(state_values(reloaded) == state_values(original));
  }
  CHECK(folder.files().size() == 3);  // no temporary file left behind
}

TEST_CASE("The saved file has PyTorch's keys, shapes, dtypes and row-major data") {
  Sequential<float> net{Dense<float>(3, 2), BatchNorm<float>(2), Dropout<float>(0.5, 1),
                        Sequential<float>{Dense<float>(1, 2, Bias::none)}};
  auto weight = net.parameters()[0].value();
  for (Index r = 0; r < 2; ++r)
    for (Index c = 0; c < 3; ++c) weight(r, c) = float(10 * r + c);
  net.buffers()[2].counter() = 7;
  TempDir folder;
  save_safetensors(net, folder / "net.safetensors");
  const std::string bytes = read_file(folder / "net.safetensors");
  const auto contents = detail::parse_safetensors(bytes, "file");
  CHECK(contents.metadata.at("format") == "pt");
  std::map<std::string, detail::SafetensorsTensor> by_name;
  for (const auto& tensor : contents.tensors) by_name[tensor.name] = tensor;
  const std::map<std::string, std::vector<std::uint64_t>> shapes = {
      {"0.weight", {2, 3}}, {"0.bias", {2}}, {"1.weight", {2}}, {"1.bias", {2}},
      {"1.running_mean", {2}}, {"1.running_var", {2}}, {"1.num_batches_tracked", {}},
      {"3.0.weight", {2, 1}}};
  REQUIRE(by_name.size() == shapes.size());  // no Dropout stream: not in PyTorch's state_dict
  for (const auto& entry : shapes) {
    // Plain variables, not a structured binding: CAPTURE captures them in a lambda, which
    // clang 14 cannot do with bindings.
    const std::string& key = entry.first;
    const std::vector<std::uint64_t>& shape = entry.second;
    CAPTURE(key);
    REQUIRE(by_name.count(key) == 1);
    CHECK(by_name[key].shape == shape);
    CHECK(by_name[key].dtype == (key == "1.num_batches_tracked" ? "I64" : "F32"));
  }
  // Row-major: W(0,0), W(0,1), W(0,2), W(1,0), ...
  const float row_major[] = {0, 1, 2, 10, 11, 12};
  CHECK(std::memcmp(by_name["0.weight"].data.data(), row_major, sizeof row_major) == 0);
  std::int64_t counter = 0;
  std::memcpy(&counter, by_name["1.num_batches_tracked"].data.data(), 8);
  CHECK(counter == 7);
  // The header is padded to a multiple of 8 bytes, so the data starts aligned.
  std::uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  CHECK(header_size % 8 == 0);
  Sequential<double> wide{Dense<double>(3, 2)};
  save_safetensors(wide, folder / "wide.safetensors");
  for (const auto& tensor : detail::parse_safetensors(read_file(folder / "wide.safetensors"), "f").tensors)
    CHECK(tensor.dtype == "F64");
}

// With BNORM_SAFETENSORS_EXPORT=<folder>, also writes the files and bnorm's outputs that
// `make_safetensors.py --check <folder>` loads in PyTorch (its result is committed).
TEST_CASE_TEMPLATE("A network trained by bnorm saves a file that reloads with the same outputs", T, float, double) {
  const ReferenceData reference(std::string(BNORM_TEST_DATA_DIR) + "/safetensors.txt");
  const char* export_folder = std::getenv("BNORM_SAFETENSORS_EXPORT");
  TempDir folder;
  for (const std::string name : safetensors_model_names) {
    const std::string stem = name + "_" + type_tag<T>();
    CAPTURE(stem);
    Sequential<T> net = safetensors_model<T>(name);
    load_safetensors(net, fixtures / (stem + ".safetensors"));
    const Matrix<T> x = reference.matrix_as<T>(stem + ".x");
    SGD<T> optimizer(net.parameters(), {.lr = 0.05});
    MeanSquaredError<T> loss;
    for (int step = 0; step < 2; ++step) {
      const Matrix<T>& y = net.forward(x, Mode::train);
      loss.forward(y, Matrix<T>::Zero(y.rows(), y.cols()));
      net.backward(loss.backward());
      optimizer.step();
    }
    const Matrix<T> trained_output = net.forward(x, Mode::eval);
    const auto path = (export_folder ? std::filesystem::path(export_folder) : folder.path()) /
                      (stem + ".safetensors");
    save_safetensors(net, path);
    Sequential<T> reloaded = safetensors_model<T>(name);
    load_safetensors(reloaded, path);
    CHECK(reloaded.forward(x, Mode::eval) == trained_output);
    for (auto& buffer : reloaded.buffers())
      if (buffer.kind() == BufferKind::counter) CHECK(buffer.counter() == 5);
    if (export_folder) {
      std::ofstream out(std::filesystem::path(export_folder) / (stem + ".txt"));
      out.precision(17);
      const auto block = [&](const char* block_name, const Matrix<T>& m) {
        out << block_name << " " << m.rows() << " " << m.cols() << "\n";
        for (Index i = 0; i < m.size(); ++i) out << double(m.data()[i]) << (i + 1 < m.size() ? " " : "\n");
      };
      block("x", x);
      block("y", trained_output);
    }
  }
}

TEST_CASE("PyTorch loads bnorm's files strictly, with bnorm's outputs (committed check)") {
  // Written by make_safetensors.py --check from the files of the test case above.
  std::ifstream check(std::string(BNORM_TEST_DATA_DIR) + "/safetensors_pytorch_check.txt");
  REQUIRE(check);
  int loaded = 0;
  bool verdict = false;
  for (std::string line; std::getline(check, line);) {
    if (line.find("strict_load=ok") != std::string::npos) ++loaded;
    if (line == "all_within_tolerance=yes") verdict = true;
  }
  CHECK(loaded == 6);  // three models, two dtypes
  CHECK(verdict);
}

TEST_CASE("Loading is strict: missing keys, unexpected keys and shapes are named") {
  const auto file = fixtures / "one_input_float.safetensors";
  SUBCASE("a missing key") {
    Sequential<float> net{Dense<float>(1, 3), BatchNorm<float>(3), ReLU<float>(), Dense<float>(3, 2),
                          BatchNorm<float>(2)};
    const auto before = state_values(net);
    CHECK_ERROR_MENTIONS(load_safetensors(net, file), "one_input_float.safetensors", "missing keys",
                         "4.weight [2]", "4.running_mean [2]", "4.num_batches_tracked []");
    CHECK(state_values(net) == before);
  }
  SUBCASE("an unexpected key") {
    Sequential<float> net{Dense<float>(1, 3), BatchNorm<float>(3), ReLU<float>(), Dense<float>(3, 2, Bias::none)};
    const auto before = state_values(net);
    CHECK_ERROR_MENTIONS(load_safetensors(net, file), "one_input_float.safetensors", "unexpected keys",
                         "3.bias [2]");
    CHECK(state_values(net) == before);
  }
  SUBCASE("a different shape") {
    Sequential<float> net{Dense<float>(1, 3), BatchNorm<float>(3), ReLU<float>(), Dense<float>(3, 4)};
    const auto before = state_values(net);
    CHECK_ERROR_MENTIONS(load_safetensors(net, file), "one_input_float.safetensors", "size mismatch",
                         "3.weight: the file has [2, 3], the network [4, 3]", "3.bias: the file has [2], the network [4]");
    CHECK(state_values(net) == before);
  }
  SUBCASE("a state_dict of another architecture") {
    Sequential<float> net = safetensors_model<float>("one_input");
    const auto before = state_values(net);
    CHECK_ERROR_MENTIONS(load_safetensors(net, fixtures / "bn_after_linear_float.safetensors"),
                         "bn_after_linear_float.safetensors", "does not match the network",
                         "4.running_mean", "0.weight: the file has [5, 4], the network [3, 1]");
    CHECK(state_values(net) == before);
  }
}

// Each class of bad input, checked for the message (the file's name and the fault) and for an
// unchanged network. The count is in bad_input_classes below.
TEST_CASE("Every class of bad input throws bnorm::Error naming the file, the network unchanged") {
  TempDir folder;
  const std::string valid = tiny_file_bytes(folder);
  int classes = 0;
  const auto check_bad = [&](const std::string& bytes, std::initializer_list<std::string_view> words) {
    ++classes;
    const auto path = folder / "bad.safetensors";
    write_file(path, bytes);
    Sequential<float> net = tiny_network();
    const auto before = state_values(net);
    const std::string message = error_message([&] { load_safetensors(net, path); });
    INFO("class ", classes, ": ", message);
    CHECK(message.rfind("<", 0) != 0);
    CHECK(message.find("safetensors file '" + path.string() + "'") != std::string::npos);
    for (const auto word : words) CHECK_MESSAGE(message.find(word) != std::string::npos, "missing: ", word);
    CHECK(state_values(net) == before);
  };
  const auto edit = [&](const std::function<void(json&, std::string&)>& change) { return edited(valid, change); };

  {  // a missing file and a folder are not read at all
    Sequential<float> net = tiny_network();
    CHECK_ERROR_MENTIONS(load_safetensors(net, folder / "absent.safetensors"), "absent.safetensors", "no such file");
    CHECK_ERROR_MENTIONS(load_safetensors(net, folder.path()), "is a directory");
    classes += 2;
  }
  // The length and the header's text.
  check_bad("", {"empty"});
  check_bad(valid.substr(0, 5), {"truncated", "header length"});
  check_bad(valid.substr(0, valid.size() / 2), {"header length", "truncated"});
  check_bad(file_of("{}", "").replace(0, 8, "\xff\xff\xff\xff\xff\xff\xff\xff"), {"18446744073709551615", "truncated"});
  {
    std::string random(300, '\0');
    Generator generator(3);
    // Through unsigned char: a double above 127 converted straight to (signed) char is
    // undefined behaviour (clang's UBSan reports it).
    for (char& byte : random)
      byte = static_cast<char>(static_cast<unsigned char>(generator.uniform(0, 256)));
    check_bad(random, {"header length"});
  }
  check_bad(file_of("{\"0.weight\": {\"dtype\": ", ""), {"not valid JSON"});
  check_bad(file_of("{\"0.w\xff\xfe\": 1}", ""), {"not valid JSON"});  // invalid UTF-8
  check_bad(file_of("[1, 2]", ""), {"must be a JSON object", "array"});
  {  // nested a hundred thousand deep: described, not dumped (that would recurse per level)
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    check_bad(file_of("{\"a\": {\"dtype\": \"F32\", \"shape\": " + deep + ", \"data_offsets\": [0, 4]}}",
                      std::string(4, '\0')),
              {"'a'", "shape must be a non-negative integer, found an array of 1 item"});
  }
  {  // a header length past the format's ceiling, with the bytes there
    ++classes;
    std::string huge(std::size_t{8} + detail::safetensors_max_header_size + 8, ' ');
    const std::uint64_t length = detail::safetensors_max_header_size + 1;
    std::memcpy(huge.data(), &length, 8);
    CHECK_ERROR_MENTIONS(detail::parse_safetensors(huge, "safetensors file 'huge'"), "'huge'",
                         "more than the format's ceiling of 104857600 bytes");
  }
  check_bad(file_of("{\"a\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]},"
                    " \"a\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [4, 8]}}",
                    std::string(8, '\0')),
            {"'a' twice"});
  {  // a field or a metadata key twice: nlohmann::json would keep the last, the reference reader refuses
    std::uint64_t size = 0;
    for (int i = 0; i < 8; ++i) size |= std::uint64_t(static_cast<std::uint8_t>(valid[i])) << (8 * i);
    const auto with_inserted = [&](const std::string& after, const std::string& inserted) {
      std::string header = valid.substr(8, size);
      const std::size_t at = header.find(after);
      REQUIRE(at != std::string::npos);
      return file_of(header.insert(at + after.size(), inserted), valid.substr(8 + size));
    };
    check_bad(with_inserted("\"0.bias\":{", "\"dtype\":\"F64\","), {"tensor '0.bias' has the field 'dtype' twice"});
    check_bad(with_inserted("\"__metadata__\":{", "\"format\":\"np\","), {"__metadata__ has the key 'format' twice"});
  }
  // Entries.
  check_bad(edit([](json& h, std::string&) { h["0.bias"] = 3; }), {"'0.bias' must be an object"});
  check_bad(edit([](json& h, std::string&) { h["0.bias"].erase("dtype"); }), {"'0.bias' has no dtype"});
  check_bad(edit([](json& h, std::string&) { h["0.bias"].erase("shape"); }), {"'0.bias' has no shape"});
  check_bad(edit([](json& h, std::string&) { h["0.bias"].erase("data_offsets"); }), {"'0.bias' has no data_offsets"});
  check_bad(edit([](json& h, std::string&) { h["0.bias"]["dtype"] = 32; }), {"'0.bias'", "dtype must be a string"});
  check_bad(edit([](json& h, std::string&) { h["0.bias"]["shape"] = "[1]"; }), {"'0.bias'", "shape must be a list"});
  check_bad(edit([](json& h, std::string&) { h["0.bias"]["shape"] = {1.0}; }), {"'0.bias'", "shape must be a non-negative integer", "1.0"});
  check_bad(edit([](json& h, std::string&) { h["0.bias"]["data_offsets"] = "x"; }), {"'0.bias'", "data_offsets must be a list"});
  check_bad(edit([](json& h, std::string&) { h["0.bias"]["data_offsets"].push_back(9); }), {"'0.bias'", "data_offsets must be [begin, end]"});
  check_bad(edit([](json& h, std::string&) { h["0.bias"]["dtype"] = "F33"; }), {"'0.bias'", "'F33' is not a safetensors dtype"});
  check_bad(edit([](json& h, std::string&) { h["0.bias"]["device"] = "cpu"; }), {"'0.bias'", "unknown field 'device'"});
  check_bad(edit([](json& h, std::string&) { h["__metadata__"] = {{"format", 1}}; }), {"__metadata__", "'format' must be a string"});
  check_bad(edit([](json& h, std::string&) { h["__metadata__"] = "pt"; }), {"__metadata__ must be an object"});
  // Shapes.
  check_bad(edit([](json& h, std::string&) { h["0.bias"]["shape"] = {-1}; }), {"'0.bias'", "non-negative integer, found -1"});
  check_bad(edit([](json& h, std::string&) {
              h["0.bias"]["shape"] = {std::uint64_t{1} << 32, std::uint64_t{1} << 32};
            }),
            {"'0.bias'", "more bytes than 2^64"});
  check_bad(edit([](json& h, std::string&) { h["0.bias"]["dtype"] = "F64"; }), {"'0.bias'", "shape [1] of F64 needs 8 bytes", "span 4"});
  check_bad(edit([](json& h, std::string&) { h["0.bias"]["shape"] = {2}; }), {"'0.bias'", "needs 8 bytes"});
  // Offsets.
  check_bad(edit([](json& h, std::string& data) {
              data += std::string(4, '\0');
              h["0.bias"]["data_offsets"] = {data.size(), data.size() + 4};
            }),
            {"'0.bias'", "are not a span of the data area"});
  check_bad(edit([](json& h, std::string&) {
              h["0.bias"]["data_offsets"] = {8, 4};
            }),
            {"'0.bias'", "data_offsets [8, 4] are not a span"});
  check_bad(edit([](json& h, std::string&) {  // 0.bias onto 0.weight's bytes
              h["0.bias"]["data_offsets"] = h["0.weight"]["data_offsets"];
              h["0.bias"]["shape"] = {2};
            }),
            {"overlaps", "0.weight", "0.bias"});
  check_bad(edit([](json& h, std::string& data) {  // four bytes nobody owns, before 0.weight
              data.insert(0, 4, '\0');
              for (auto& [key, entry] : h.items())
                if (key != "__metadata__")
                  for (auto& offset : entry["data_offsets"]) offset = offset.get<std::uint64_t>() + 4;
            }),
            {"hole", "bytes [0, 4)"});
  check_bad(valid + std::string(4, '\0'), {"bytes after its last tensor"});
  check_bad(valid.substr(0, valid.size() - 4), {"are not a span of the data area"});
  // Dtypes the network cannot take.
  check_bad(edit([](json& h, std::string&) { h["0.bias"]["dtype"] = "I32"; }), {"'0.bias' has dtype I32", "F32, F64, F16 and BF16"});
  check_bad(edit([](json& h, std::string&) { h["1.num_batches_tracked"]["dtype"] = "F64"; }),
            {"'1.num_batches_tracked' has dtype F64", "must be I64"});
  // Counters out of range: a negative count, and one the next training batch would overflow.
  const auto with_counter = [&](std::int64_t value) {
    return edit([value](json& h, std::string& data) {
      const auto begin = h["1.num_batches_tracked"]["data_offsets"][0].get<std::size_t>();
      for (int i = 0; i < 8; ++i)
        data[begin + i] = static_cast<char>((static_cast<std::uint64_t>(value) >> (8 * i)) & 0xFF);
    });
  };
  CHECK_NOTHROW(detail::parse_safetensors(with_counter(-1), "the parser alone"));
  check_bad(with_counter(-1), {"tensor '1.num_batches_tracked'", "must be >= 0, found -1", "at byte"});
  check_bad(with_counter(std::numeric_limits<std::int64_t>::max()),
            {"tensor '1.num_batches_tracked'", "9223372036854775807", "counting one more would overflow"});
  // A state_dict of another architecture (more in the test case above).
  check_bad(edit([](json& h, std::string&) { h["1.running_mean"]["shape"] = {1, 1}; }),
            {"size mismatch for 1.running_mean: the file has [1, 1], the network [1]"});
  check_bad(edit([](json& h, std::string&) {
              h["0.bias2"] = h["0.bias"];
              h.erase("0.bias");
            }),
            {"missing keys: 0.bias [1]", "unexpected keys: 0.bias2 [1]"});

  constexpr int bad_input_classes = 44;
  CHECK(classes == bad_input_classes);
  // Each edit above leaves a file the parser alone would accept, except the one being tested:
  CHECK_NOTHROW(detail::parse_safetensors(edit([](json&, std::string&) {}), "the unedited file"));
}

TEST_CASE("save_safetensors is atomic: an existing file is replaced whole, a failure leaves it") {
  TempDir folder;
  const auto path = folder / "net.safetensors";
  write_file(path, "old contents");
  Sequential<float> net = tiny_network();
  save_safetensors(net, path);
  Sequential<float> reloaded = tiny_network();
  load_safetensors(reloaded, path);
  CHECK(state_values(reloaded) == state_values(net));
  CHECK(folder.files() == std::vector<std::string>{"net.safetensors"});
  CHECK_ERROR_MENTIONS(save_safetensors(net, folder / "no_such_folder" / "net.safetensors"),
                       "cannot save", "no_such_folder");
  CHECK_ERROR_MENTIONS(save_safetensors(net, folder.path() / ""), "names a folder");
}
