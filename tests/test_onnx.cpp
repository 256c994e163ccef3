// bnorm-test-needs: bnorm::onnx
// Tests of bnorm/onnx.hpp (io/onnx_import.hpp, io/onnx_export.hpp, io/onnx_values.hpp):
// PyTorch's exports (tests/reference/make_onnx.py) for every operator, opset 9..17, float
// and double; the export checked by ONNX's checker and an evaluation of the operator specs
// (tests/reference/check_onnx_export.py); round trips; every class of bad input.
#include <bnorm/bnorm.hpp>
#include <bnorm/onnx.hpp>

#include "support/errors.hpp"
#include "support/model_files.hpp"
#include "support/reference.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

using namespace bnorm;
using bnorm_test::ReferenceData;
using bnorm_test::TempDir;

namespace {

const std::filesystem::path fixtures = std::filesystem::path(BNORM_TEST_DATA_DIR) / "onnx";

const ReferenceData& outputs() {
  static const ReferenceData data((fixtures / "outputs.txt").string());
  return data;
}

std::string stem(const std::string& model, const std::string& dtype, int opset) {
  return model + "." + dtype + ".opset" + std::to_string(opset);
}

// max |a - b| / max(|b|, 1): relative for large values, absolute near zero.
template <class A, class B>
double relative_difference(const A& a, const B& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  const Eigen::MatrixXd x = a.template cast<double>(), y = b.template cast<double>();
  return ((x - y).array().abs() / y.array().abs().max(1.0)).maxCoeff();
}

template <class T>
double worst_difference_against_pytorch(const std::string& model, const std::string& dtype,
                                        int opset) {
  const std::string name = stem(model, dtype, opset);
  INFO("fixture ", name);
  Sequential<T> net = load_onnx<T>(fixtures / (name + ".onnx"));
  const Matrix<T> x = outputs().matrix_as<T>(name + ".input");
  return relative_difference(net.forward(x, Mode::eval), outputs().matrix(name + ".output"));
}

onnx::ModelProto parse(const std::filesystem::path& path) {
  return detail::parse_onnx_model(bnorm_test::read_file(path), path.string());
}

void write_model(const onnx::ModelProto& model, const std::filesystem::path& path) {
  std::string bytes;
  REQUIRE(model.SerializeToString(&bytes));
  bnorm_test::write_file(path, bytes);
}

onnx::NodeProto* find_node(onnx::ModelProto& model, const std::string& op, int skip = 0) {
  for (auto& node : *model.mutable_graph()->mutable_node())
    if (node.op_type() == op && skip-- == 0) return &node;
  FAIL("no ", op, " node");
  return nullptr;
}

void set_float_attribute(onnx::NodeProto& node, const char* name, float value) {
  for (auto& attribute : *node.mutable_attribute())
    if (attribute.name() == name) {
      attribute.set_f(value);
      return;
    }
  auto* attribute = node.add_attribute();
  attribute->set_name(name);
  attribute->set_type(onnx::AttributeProto_AttributeType_FLOAT);
  attribute->set_f(value);
}

// Every layer type save_onnx writes, with running statistics away from their defaults.
template <class T>
Sequential<T> every_layer_network() {
  Generator generator(42);
  Sequential<T> net;
  net.add(Dense<T>(4, 5, Bias::learned, Init::pytorch_default(), generator))
      .add(BatchNorm<T>(5, {.momentum = 0.2, .eps = 1e-3}))
      .add(ReLU<T>())
      .add(Dense<T>(5, 3, Bias::none, Init::pytorch_default(), generator))
      .add(LeakyReLU<T>(T(0.1)))
      .add(Dropout<T>(0.3, 7))
      .add(Sequential<T>{Dense<T>(3, 3, Bias::learned, Init::pytorch_default(), generator),
                         Sigmoid<T>(), Identity<T>()})
      .add(BatchNorm<T>(3))
      .add(Tanh<T>())
      .add(Dense<T>(3, 2, Bias::learned, Init::pytorch_default(), generator));
  for (int step = 0; step < 3; ++step) {
    Matrix<T> batch(4, 8);
    for (Index j = 0; j < batch.cols(); ++j)
      for (Index i = 0; i < batch.rows(); ++i)
        batch(i, j) = static_cast<T>(std::sin(0.7 * double(i + 4 * j + 9 * step)) * 2 + 0.5);
    net.forward(batch, Mode::train);
  }
  return net;
}

template <class T>
Matrix<T> export_input() {
  Matrix<T> x(4, 6);
  for (Index j = 0; j < x.cols(); ++j)
    for (Index i = 0; i < x.rows(); ++i)
      x(i, j) = static_cast<T>(std::cos(1.3 * double(i + 4 * j)) * 1.5);
  return x;
}

struct NotExportable {
  const Matrix<float>& forward(const Eigen::Ref<const Matrix<float>>& x, Mode) { return y = x; }
  const Matrix<float>& backward(const Eigen::Ref<const Matrix<float>>& dy) { return y = dy; }
  std::string name() const { return "MyLayer"; }
  Matrix<float> y;
};

}  // namespace

TEST_CASE("load_onnx: PyTorch's eval exports of every operator, opsets 9 to 17, float and double") {
  // The largest difference per opset and dtype, for the closing note.
  for (const char* model : {"chain", "bn_first", "matmul_add"})
    for (int opset = 9; opset <= 17; ++opset) {
      const double float_difference = worst_difference_against_pytorch<float>(model, "float", opset);
      const double double_difference = worst_difference_against_pytorch<double>(model, "double", opset);
      // A double model read as float rounds each value once: float accuracy.
      const double narrowed = worst_difference_against_pytorch<float>(model, "double", opset);
      MESSAGE(std::string(model), " opset ", opset, ": float ", float_difference, ", double ",
              double_difference, ", double as float ", narrowed);
      CHECK(float_difference <= 2e-5);
      CHECK(double_difference <= 1e-12);
      CHECK(narrowed <= 2e-5);
    }
}

TEST_CASE("load_onnx: the layers, running statistics, eps and momentum of PyTorch's model") {
  for (int opset : {9, 13, 14, 15, 17}) {
    INFO("opset ", opset);
    auto net = load_onnx<double>(fixtures / (stem("chain", "double", opset) + ".onnx"));
    // Dropout and Identity are gone from an eval export: 10 of the 12 layers remain.
    REQUIRE(net.size() == 10);
    CHECK(net.holds<Dense<double>>(0));
    CHECK(net.layer<Dense<double>>(0).has_bias());
    CHECK(net.holds<ReLU<double>>(2));
    CHECK_FALSE(net.layer<Dense<double>>(3).has_bias());  // MatMul
    CHECK(net.layer<LeakyReLU<double>>(5).slope() == 0.2);
    CHECK(net.holds<Sigmoid<double>>(7));
    CHECK(net.holds<Tanh<double>>(9));
    const auto& first = net.layer<BatchNorm<double>>(1);
    const auto& second = net.layer<BatchNorm<double>>(4);
    CHECK(first.options().momentum == 0.2);  // PyTorch's doubles exactly, through floats
    CHECK(first.options().eps == 1e-3);
    CHECK(second.options().momentum == 0.1);
    CHECK(second.options().eps == 1e-5);
    CHECK(first.num_batches_tracked() == 0);
    for (const auto& [index, layer] : {std::pair{1, &first}, std::pair{4, &second}}) {
      const std::string key = "chain.double." + std::to_string(index) + ".";
      CHECK(layer->running_mean() == outputs().matrix(key + "running_mean"));
      CHECK(layer->running_var() == outputs().matrix(key + "running_var"));
    }
  }
  // An untouched BatchNorm's statistics come through Identity nodes of shared initializers.
  auto bn_first = load_onnx<float>(fixtures / (stem("bn_first", "float", 12) + ".onnx"));
  REQUIRE(bn_first.size() == 3);  // Flatten of 2-D activations is a no-op
  CHECK(bn_first.layer<BatchNorm<float>>(0).running_var() == Vector<float>::Ones(4));
  CHECK(bn_first.layer<BatchNorm<float>>(0).running_mean() == Vector<float>::Zero(4));
  auto matmul_add = load_onnx<float>(fixtures / (stem("matmul_add", "float", 9) + ".onnx"));
  REQUIRE(matmul_add.size() == 3);
  CHECK(matmul_add.layer<Dense<float>>(0).has_bias());
}

TEST_CASE("load_onnx: the other forms of a graph: Gemm without transB, Constant weights, initializers as inputs") {
  const std::string name = stem("chain", "float", 15);
  const Matrix<float> x = outputs().matrix_as<float>(name + ".input");
  const Eigen::MatrixXd& expected = outputs().matrix(name + ".output");
  TempDir folder;
  const auto path = folder / "variant.onnx";
  const auto check_variant = [&](auto&& edit) {
    auto model = parse(fixtures / (name + ".onnx"));
    edit(model);
    write_model(model, path);
    auto net = load_onnx<float>(path);
    CHECK(relative_difference(net.forward(x, Mode::eval), expected) <= 2e-5);
  };
  SUBCASE("Gemm with B as [in, out] and transB = 0") {
    check_variant([](onnx::ModelProto& model) {
      auto& weight = *model.mutable_graph()->mutable_initializer(0);
      REQUIRE(weight.name() == "0.weight");
      const auto values = detail::read_onnx_tensor(weight, "0.weight");
      const auto out = weight.dims(0), in = weight.dims(1);
      weight.clear_raw_data();
      weight.set_dims(0, in);
      weight.set_dims(1, out);
      for (std::int64_t i = 0; i < in; ++i)
        for (std::int64_t o = 0; o < out; ++o)
          weight.add_float_data(static_cast<float>(values.values[std::size_t(o * in + i)]));
      for (auto& attribute : *find_node(model, "Gemm")->mutable_attribute())
        if (attribute.name() == "transB") attribute.set_i(0);
    });
  }
  SUBCASE("a bias stored as [1, out], Flatten with axis -1") {
    check_variant([](onnx::ModelProto& model) {
      auto& bias = *model.mutable_graph()->mutable_initializer(1);
      REQUIRE(bias.name() == "0.bias");
      const auto out = bias.dims(0);
      bias.set_dims(0, 1);
      bias.add_dims(out);
      auto* flatten = model.mutable_graph()->add_node();
      flatten->set_op_type("Flatten");
      flatten->add_input("flatten_input");
      flatten->add_output(model.graph().input(0).name());
      auto* axis = flatten->add_attribute();
      axis->set_name("axis");
      axis->set_type(onnx::AttributeProto_AttributeType_INT);
      axis->set_i(-1);
      model.mutable_graph()->mutable_input(0)->set_name("flatten_input");
    });
  }
  SUBCASE("a float model read as double: every value widened exactly") {
    auto as_double = load_onnx<double>(fixtures / (name + ".onnx"));
    auto as_float = load_onnx<float>(fixtures / (name + ".onnx"));
    const auto doubles = as_double.parameters();
    const auto floats = as_float.parameters();
    REQUIRE(doubles.size() == floats.size());
    for (std::size_t i = 0; i < doubles.size(); ++i)
      CHECK(doubles[i].value() == floats[i].value().cast<double>());
  }
  SUBCASE("weights in Constant nodes") {
    check_variant([](onnx::ModelProto& model) {
      auto* graph = model.mutable_graph();
      onnx::GraphProto rebuilt = *graph;
      rebuilt.clear_node();
      rebuilt.clear_initializer();
      for (const auto& initializer : graph->initializer()) {
        auto* constant = rebuilt.add_node();
        constant->set_op_type("Constant");
        constant->add_output(initializer.name());
        auto* value = constant->add_attribute();
        value->set_name("value");
        value->set_type(onnx::AttributeProto_AttributeType_TENSOR);
        *value->mutable_t() = initializer;
      }
      for (const auto& node : graph->node()) *rebuilt.add_node() = node;
      *graph = rebuilt;
    });
  }
  SUBCASE("initializers listed as graph inputs too (keep_initializers_as_inputs)") {
    check_variant([](onnx::ModelProto& model) {
      auto* graph = model.mutable_graph();
      for (const auto& initializer : graph->initializer()) {
        auto* input = graph->add_input();
        input->set_name(initializer.name());
        input->mutable_type()->mutable_tensor_type()->set_elem_type(initializer.data_type());
      }
    });
  }
}

TEST_CASE("load_onnx: the imported network goes on training") {
  auto net = load_onnx<float>(fixtures / (stem("chain", "float", 17) + ".onnx"));
  const Matrix<float> x = outputs().matrix_as<float>(stem("chain", "float", 17) + ".input");
  auto& norm = net.layer<BatchNorm<float>>(1);
  const Vector<float> old_mean = norm.running_mean();
  net.forward(x, Mode::train);
  // The BatchNorm's batch mean is that of the first Dense's output; momentum 0.2.
  const Vector<float> batch_mean = net.layer_output(0).rowwise().mean();
  CHECK(relative_difference(norm.running_mean(), (0.8f * old_mean + 0.2f * batch_mean).eval()) < 1e-6);
  CHECK(norm.num_batches_tracked() == 1);
  net.backward(Matrix<float>::Ones(2, x.cols()));
  const auto& dense = net.layer<Dense<float>>(0);
  CHECK(dense.weight_grad().allFinite());
  CHECK(dense.weight_grad().norm() > 0);
}

TEST_CASE("load_onnx: training-mode exports: Dropout reads as Dropout(ratio), BatchNorm is refused") {
  for (int opset : {9, 12, 14, 15, 17})
    for (const char* mode : {"training", "preserve"}) {
      INFO("opset ", opset, ", ", mode);
      const std::string suffix = std::string(".") + mode + ".opset" + std::to_string(opset) + ".onnx";
      auto dropout = load_onnx<float>(fixtures / ("dropout_training" + suffix));
      REQUIRE(dropout.size() == 2);
      CHECK(dropout.layer<Dropout<float>>(1).p() == 0.25);
      const auto path = fixtures / ("bn_training" + suffix);
      const std::string file = path.string();
      CHECK_ERROR_MENTIONS(load_onnx<float>(path), file.c_str(), "node 0", "(BatchNormalization)",
                           "training mode", "eval mode");
    }
}

TEST_CASE("load_onnx draws nothing from bnorm::default_generator()") {
  default_generator().seed_with(5);
  const auto before = default_generator().next();
  default_generator().seed_with(5);
  load_onnx<float>(fixtures / "dropout_training.training.opset12.onnx");
  CHECK(default_generator().next() == before);
}

TEST_CASE("save_onnx: the ONNX checker accepts the file and the operators' definitions give bnorm's outputs") {
  // check_onnx_export.py ran onnx.checker.check_model(full_check=True) on these files and
  // evaluated their graphs with numpy as the operator specs define them. The files are what
  // save_onnx writes today: byte for byte.
  const bool rewrite = std::getenv("BNORM_WRITE_ONNX_FIXTURES") != nullptr;
  const ReferenceData* evaluated = nullptr;
  static std::unique_ptr<ReferenceData> check;
  if (!rewrite) {
    check = std::make_unique<ReferenceData>((fixtures / "bnorm_export_check.txt").string());
    evaluated = check.get();
    CHECK(evaluated->metadata("checker") == "full_check passed");
  }
  TempDir folder;
  const auto run = [&](auto scalar, const std::string& dtype, double tolerance) {
    using T = decltype(scalar);
    auto net = every_layer_network<T>();
    const auto committed = fixtures / ("bnorm_export." + dtype + ".onnx");
    const auto written = folder / "export.onnx";
    save_onnx(net, written);
    const Matrix<T> x = export_input<T>();
    const Matrix<T> y = net.forward(x, Mode::eval);
    if (rewrite) {
      std::filesystem::copy_file(written, committed, std::filesystem::copy_options::overwrite_existing);
      std::ofstream text(fixtures / ("bnorm_export." + dtype + ".txt"));
      text.precision(17);
      text << "# save_onnx's input and bnorm's eval output; written by test_onnx with "
              "BNORM_WRITE_ONNX_FIXTURES=1\ninput " << x.rows() << " " << x.cols() << "\n";
      for (Index i = 0; i < x.size(); ++i) text << double(x.data()[i]) << (i + 1 < x.size() ? " " : "\n");
      text << "output " << y.rows() << " " << y.cols() << "\n";
      for (Index i = 0; i < y.size(); ++i) text << double(y.data()[i]) << (i + 1 < y.size() ? " " : "\n");
      return;
    }
    CHECK(bnorm_test::read_file(written) == bnorm_test::read_file(committed));
    const double difference = relative_difference(y, evaluated->matrix(dtype + ".output"));
    MESSAGE(dtype, ": bnorm vs the ONNX operator definitions: ", difference);
    CHECK(difference <= tolerance);
  };
  run(float{}, "float", 1e-6);
  // ONNX's epsilon attribute is a float: an ONNX engine adds float(1e-3) to a double
  // variance where bnorm adds 1e-3, a relative change of 5e-11 in the output.
  run(double{}, "double", 1e-10);
}

TEST_CASE("save_onnx then load_onnx gives bit-identical eval outputs") {
  TempDir folder;
  const auto round_trip = [&](auto scalar) {
    using T = decltype(scalar);
    auto net = every_layer_network<T>();
    save_onnx(net, folder / "net.onnx");
    auto loaded = load_onnx<T>(folder / "net.onnx");
    const Matrix<T> x = export_input<T>();
    CHECK(loaded.forward(x, Mode::eval) == net.forward(x, Mode::eval));
    CHECK(loaded.size() == 12);  // the nested Sequential's 3 layers in place
    CHECK(loaded.template layer<BatchNorm<T>>(1).options().momentum == 0.2);
    CHECK(loaded.template layer<BatchNorm<T>>(1).options().eps == 1e-3);
    CHECK(loaded.template layer<Dropout<T>>(5).p() == 0.3);
    CHECK(loaded.template layer<LeakyReLU<T>>(4).slope() == T(0.1));
  };
  round_trip(float{});
  round_trip(double{});
}

TEST_CASE("save_onnx: a layer with no ONNX operator is refused, and the file stays as it was") {
  TempDir folder;
  const auto path = folder / "net.onnx";
  bnorm_test::write_file(path, "old");
  Sequential<float> net{Dense<float>(3, 3), NotExportable{}};
  CHECK_ERROR_MENTIONS(save_onnx(net, path), "net.onnx", "layer 1", "MyLayer", "no ONNX operator");
  CHECK(bnorm_test::read_file(path) == "old");
  CHECK(folder.files() == std::vector<std::string>{"net.onnx"});
  Sequential<float> no_statistics{BatchNorm<float>(3, {.track_running_stats = false})};
  CHECK_ERROR_MENTIONS(save_onnx(no_statistics, path), "layer 0", "running statistics");
  CHECK_ERROR_MENTIONS(save_onnx(Sequential<float>(), path), "no layers");
  CHECK_ERROR_MENTIONS(save_onnx(Sequential<float>{Dense<float>(3, 3)}, folder / "missing" / "x.onnx"),
                       "x.onnx");
}

TEST_CASE("load_onnx: every class of bad input throws bnorm::Error naming the file, node and operator") {
  TempDir folder;
  const auto path = folder / "bad.onnx";
  const auto good = fixtures / (stem("chain", "float", 15) + ".onnx");
  const std::string good_bytes = bnorm_test::read_file(good);
  int classes = 0;
  const auto edited = [&](auto&& edit) {
    auto model = parse(good);
    edit(model);
    write_model(model, path);
  };

  SUBCASE("the file itself") {
    CHECK_ERROR_MENTIONS(load_onnx<float>(folder / "missing.onnx"), "missing.onnx", "no such file");
    CHECK_ERROR_MENTIONS(load_onnx<float>(folder.path()), "directory");
    bnorm_test::write_file(path, "");
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "is empty");
    // Every truncation throws, wherever the file is cut.
    for (std::size_t size = 1; size < good_bytes.size(); size += 7) {
      bnorm_test::write_file(path, good_bytes.substr(0, size));
      CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx");
    }
    std::string random(4096, '\0');
    Generator generator(3);
    for (auto& byte : random) byte = static_cast<char>(generator.next());
    bnorm_test::write_file(path, random);
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx");
    bnorm_test::write_file(path, "this is not a model\n");
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx");
    classes = 5;  // missing, directory, empty, truncated, random
  }
  SUBCASE("an unsupported operator") {
    edited([](auto& model) { find_node(model, "Relu")->set_op_type("Conv"); });
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "node 2", "/2/Relu", "(Conv)",
                         "unsupported operator");
    classes = 1;
  }
  SUBCASE("a graph that is not a chain") {
    // A second reader of the first Gemm's output (a branch).
    edited([](auto& model) {
      find_node(model, "Sigmoid")->set_input(0, find_node(model, "Gemm")->output(0));
    });
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "read by 2 nodes", "(BatchNormalization)",
                         "(Sigmoid)");
    // A node off the chain, reading a value nobody else reads.
    edited([](auto& model) {
      auto* extra = model.mutable_graph()->add_node();
      extra->set_op_type("Relu");
      extra->set_name("stray");
      extra->add_input("nowhere");
      extra->add_output("stray_output");
    });
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "'stray' (Relu)", "not on the chain");
    // The chain breaks: the output is never computed.
    edited([](auto& model) { model.mutable_graph()->mutable_output(0)->set_name("elsewhere"); });
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "chain of layers breaks");
    // Two data inputs.
    edited([](auto& model) { *model.mutable_graph()->add_input() = model.graph().input(0); });
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "2 data inputs");
    classes = 1;
  }
  SUBCASE("weights that are not initializers or Constants") {
    edited([](auto& model) {
      // The first Gemm's weight computed by a node from the initializer.
      auto* gemm = find_node(model, "Gemm");
      auto* make = model.mutable_graph()->add_node();
      make->set_op_type("Relu");
      make->add_input(gemm->input(1));
      make->add_output("computed_weight");
      gemm->set_input(1, "computed_weight");
    });
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "node 0", "(Gemm)", "computed_weight",
                         "not an initializer or a Constant");
    edited([](auto& model) { model.mutable_graph()->mutable_initializer()->RemoveLast(); });
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "not an initializer");
    classes = 1;
  }
  SUBCASE("a required input given as the empty name (ONNX's absent optional input)") {
    // Found by the ONNX fuzzer (fuzz/regressions/onnx/): Gemm ["x", "", "b"] and MatMul
    // ["x", ""] were dereferenced as null weights.
    edited([](auto& model) { find_node(model, "Gemm")->set_input(1, ""); });
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "node 0", "(Gemm)", "no weight B",
                         "the empty name");
    const auto matmul = fixtures / (stem("matmul_add", "float", 15) + ".onnx");
    auto model = parse(matmul);
    find_node(model, "MatMul")->set_input(1, "");
    write_model(model, path);
    CHECK_ERROR_MENTIONS(load_onnx<double>(path), "bad.onnx", "(MatMul)", "no weight",
                         "the empty name");
    edited([](auto& model) { find_node(model, "BatchNormalization")->set_input(3, ""); });
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "(BatchNormalization)",
                         "no input_mean", "the empty name");
    edited([](auto& model) {
      auto* node = find_node(model, "BatchNormalization");
      node->mutable_input()->RemoveLast();
      node->mutable_input()->RemoveLast();
    });
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "(BatchNormalization)", "has 3 inputs");
    // The optional bias C given as "" is a Dense without bias, as ONNX says.
    edited([](auto& model) { find_node(model, "Gemm")->set_input(2, ""); });
    CHECK_FALSE(load_onnx<float>(path).layer<Dense<float>>(0).has_bias());
    classes = 1;
  }
  SUBCASE("an Add in another operator domain is not read as a MatMul's bias") {
    const auto matmul = fixtures / (stem("matmul_add", "float", 15) + ".onnx");
    auto model = parse(matmul);
    find_node(model, "Add")->set_domain("com.example");
    write_model(model, path);
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "(Add)", "com.example");
    classes = 1;
  }
  SUBCASE("Gemm attributes a Dense cannot express") {
    edited([](auto& model) { set_float_attribute(*find_node(model, "Gemm"), "alpha", 2.0f); });
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "(Gemm)", "alpha 2");
    edited([](auto& model) { set_float_attribute(*find_node(model, "Gemm"), "beta", 0.5f); });
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "(Gemm)", "beta 0.5");
    edited([](auto& model) {
      auto* attribute = find_node(model, "Gemm")->add_attribute();
      attribute->set_name("transA");
      attribute->set_type(onnx::AttributeProto_AttributeType_INT);
      attribute->set_i(1);
    });
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "(Gemm)", "transA 1");
    classes = 1;
  }
  SUBCASE("BatchNormalization in training mode") {
    edited([](auto& model) {
      for (auto& attribute : *find_node(model, "BatchNormalization")->mutable_attribute())
        if (attribute.name() == "training_mode") attribute.set_i(1);
    });
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "(BatchNormalization)", "training mode");
    classes = 1;  // and the torch exports in the training-mode test case
  }
  SUBCASE("inconsistent shapes between consecutive nodes") {
    // The second BatchNorm (3 features) after the first Dense (5): remove the Relu and the
    // MatMul between them.
    const auto chain = fixtures / (stem("bn_first", "float", 15) + ".onnx");
    auto model = parse(chain);
    auto* gemm = find_node(model, "Gemm");
    auto& weight = *model.mutable_graph()->mutable_initializer(2);  // 2.weight [3, 4]
    REQUIRE(weight.name() == "2.weight");
    weight.set_dims(1, 3);
    weight.mutable_raw_data()->resize(3 * 3 * 4);
    write_model(model, path);
    const std::string gemm_name = gemm->name();
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", gemm_name.c_str(), "(Gemm)",
                         "expects 3 input features", "has 4");
    // A bias of the wrong length.
    model = parse(chain);
    model.mutable_graph()->mutable_initializer(3)->set_dims(0, 2);
    model.mutable_graph()->mutable_initializer(3)->mutable_raw_data()->resize(8);
    write_model(model, path);
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "(Gemm)", "bias of shape [2]");
    // A tensor whose data does not fill its shape.
    model = parse(chain);
    model.mutable_graph()->mutable_initializer(0)->set_dims(0, 5);
    write_model(model, path);
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "1.weight", "shape [5]");
    // The declared input width against the first layer's.
    model = parse(chain);
    model.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()
        ->mutable_shape()->mutable_dim(1)->set_dim_value(7);
    write_model(model, path);
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "(BatchNormalization)",
                         "expects 4 input features", "has 7");
    classes = 1;
  }
  SUBCASE("other refusals: opset, Flatten axis, element type") {
    edited([](auto& model) { model.mutable_opset_import(0)->set_version(18); });
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "opset 18", "9 to 17");
    const auto flatten = fixtures / (stem("bn_first", "float", 11) + ".onnx");
    auto model = parse(flatten);
    find_node(model, "Flatten")->mutable_attribute(0)->set_i(0);
    write_model(model, path);
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "(Flatten)", "axis 0");
    edited([](auto& model) {
      model.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
          onnx::TensorProto_DataType_INT64);
    });
    CHECK_ERROR_MENTIONS(load_onnx<float>(path), "bad.onnx", "int64");
    classes = 1;
  }
  CHECK(classes >= 1);
}

TEST_CASE("load_onnx: many Identity nodes of one weight share it instead of copying it") {
  // 20,000 Identity nodes of a 512 x 512 weight: a copy per node would ask for 40 GB
  // (bad_alloc or the machine's memory), sharing costs nothing. The file is 1.6 MB.
  TempDir folder;
  const auto path = folder / "identities.onnx";
  auto model = parse(fixtures / (stem("chain", "float", 15) + ".onnx"));
  auto* graph = model.mutable_graph();
  auto* big = graph->add_initializer();
  big->set_name("big");
  big->set_data_type(onnx::TensorProto_DataType_FLOAT);
  big->add_dims(512);
  big->add_dims(512);
  big->mutable_raw_data()->assign(std::size_t(512 * 512 * 4), '\0');
  std::string previous = "big";
  for (int i = 0; i < 20000; ++i) {
    auto* identity = graph->add_node();
    identity->set_op_type("Identity");
    identity->add_input(previous);
    previous = "big_copy_" + std::to_string(i);
    identity->add_output(previous);
  }
  write_model(model, path);
  CHECK(load_onnx<float>(path).size() ==
        load_onnx<float>(fixtures / (stem("chain", "float", 15) + ".onnx")).size());
}
