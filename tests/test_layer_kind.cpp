// The proof that every layer kind is open (issue 26): a layer kind defined here, outside
// include/, gets every tool of the library with no edit to it, as the built-in kinds do:
// naming of its state, summaries, the const walk, model files (registered), checkpoints,
// recalibrate, synchronized BatchNorm, fold_batchnorm, the ONNX export it describes (and the
// clear refusal of one it does not), and a subclass of it found as its kind everywhere.
#include <bnorm/bnorm.hpp>
#include <bnorm/distributed/for_each_batch_norm.hpp>

#include <doctest/doctest.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "support/errors.hpp"
#include "support/model_files.hpp"
#include "support/temp_dir.hpp"

using namespace bnorm;

namespace {

// y = scale * bn(x) per feature: a BatchNorm child, a learned scale of its own and a counter
// of training forwards of its own, so that it has state of every sort.
template <class T>
class ScaledNorm {
 public:
  using layer_kind = ScaledNorm;  // a subclass is a ScaledNorm to every tool

  explicit ScaledNorm(Index features)
      : norm_(features), scale_(Vector<T>::Constant(features, T(2))),
        scale_grad_(Vector<T>::Zero(features)) {}

  const Matrix<T>& forward(const Eigen::Ref<const Matrix<T>>& x, Mode mode) {
    if (mode == Mode::train) ++calls_;
    output_ = scale_.asDiagonal() * norm_.forward(x, mode);
    return output_;
  }
  const Matrix<T>& backward(const Eigen::Ref<const Matrix<T>>& dy) {
    scale_grad_ = (dy.array() * (output_.array().colwise() / scale_.array())).rowwise().sum();
    return norm_.backward(scale_.asDiagonal() * dy);
  }
  std::vector<Parameter<T>> parameters() { return {Parameter<T>("scale", scale_, scale_grad_)}; }
  std::vector<Buffer<T>> buffers() { return {Buffer<T>("calls", calls_)}; }
  std::vector<Child<T>> children() { return {{"norm", LayerRef<T>(norm_)}}; }
  std::string name() const { return "ScaledNorm(" + std::to_string(features()) + ")"; }

  // ONNX: its BatchNorm's node, then a Mul by the scale.
  std::vector<OnnxNode> onnx_nodes() const {
    std::vector<OnnxNode> nodes = norm_.onnx_nodes();
    for (OnnxNode& node : nodes) node.path = "norm";
    nodes.push_back({.op = "Mul",
                     .inputs = {{".scale", {features()}, {scale_.data(), scale_.data() + features()}}}});
    return nodes;
  }

  Index features() const { return norm_.features(); }
  BatchNorm<T>& norm() { return norm_; }
  Vector<T>& scale() { return scale_; }
  long long calls() const { return calls_; }

 private:
  BatchNorm<T> norm_;
  Vector<T> scale_, scale_grad_;
  long long calls_ = 0;
  Matrix<T> output_;
};

// A subclass: every tool finds it as a ScaledNorm (and saves it as one).
template <class T>
class LoudScaledNorm : public ScaledNorm<T> {
 public:
  using ScaledNorm<T>::ScaledNorm;
  std::string name() const { return "Loud" + ScaledNorm<T>::name(); }
};

// A kind with no ONNX export.
template <class T>
class Doubled {
 public:
  const Matrix<T>& forward(const Eigen::Ref<const Matrix<T>>& x, Mode) {
    output_ = 2 * x;
    return output_;
  }
  const Matrix<T>& backward(const Eigen::Ref<const Matrix<T>>& dy) {
    grad_ = 2 * dy;
    return grad_;
  }
  std::string name() const { return "Doubled"; }

 private:
  Matrix<T> output_, grad_;
};

void register_scaled_norm() {
  register_layer<ScaledNorm<double>>(
      "ScaledNorm", 1, [](const ScaledNorm<double>& layer) { return std::vector<double>{double(layer.features())}; },
      [](const std::vector<double>& arguments, std::uint32_t) {
        detail::require(arguments.size() == 1 && arguments[0] >= 1 && arguments[0] <= 4096,
                        "ScaledNorm: expected one feature count in [1, 4096]");
        return ScaledNorm<double>(static_cast<Index>(arguments[0]));
      });
}

Sequential<double> network() {
  manual_seed(21);
  return Sequential<double>{Dense<double>(3, 4), ScaledNorm<double>(4), LoudScaledNorm<double>(4),
                            Dense<double>(4, 2)};
}

void train(Sequential<double>& net, int steps) {
  SGD<double> sgd(net.parameters(), {.lr = 0.05});
  SoftmaxCrossEntropy<double> loss;
  manual_seed(22);
  const Matrix<double> x = Matrix<double>::Random(3, 16);
  const Labels labels = Labels::LinSpaced(16, 0, 1);
  for (int step = 0; step < steps; ++step) {
    loss.forward(net.forward(x, Mode::train), labels);
    net.backward(loss.backward());
    sgd.step();
  }
}

std::vector<std::string> names(const auto& views) {
  std::vector<std::string> list;
  for (const auto& view : views) list.push_back(view.name());
  return list;
}

}  // namespace

TEST_CASE("A layer kind of the tests' own: state names, summary, the const walk") {
  Sequential<double> net = network();
  CHECK(names(net.parameters()) ==
        std::vector<std::string>{"0.weight", "0.bias", "1.scale", "1.norm.weight", "1.norm.bias",
                                 "2.scale", "2.norm.weight", "2.norm.bias", "3.weight", "3.bias"});
  CHECK(names(net.buffers()) ==
        std::vector<std::string>{"1.calls", "1.norm.running_mean", "1.norm.running_var",
                                 "1.norm.num_batches_tracked", "2.calls", "2.norm.running_mean",
                                 "2.norm.running_var", "2.norm.num_batches_tracked"});
  const Sequential<double>& read_only = net;
  CHECK(names(read_only.parameters()) == names(net.parameters()));
  std::vector<std::string> kinds;
  for_each_layer(read_only, [&](const std::string& path, const ConstLayerRef<double>& layer) {
    if (layer.as<ScaledNorm<double>>()) kinds.push_back(path);
  });
  CHECK(kinds == std::vector<std::string>{"1", "2"});  // the subclass too
  const std::string table = summary(net);
  INFO(table);
  CHECK(table.find("2.norm  BatchNorm(4)") != std::string::npos);
  CHECK(table.find("LoudScaledNorm(4)") != std::string::npos);
}

TEST_CASE("A layer kind of the tests' own: model files and checkpoints") {
  Sequential<double> net = network();
  train(net, 3);
  CHECK(net.layer<ScaledNorm<double>>(1).calls() == 3);
  CHECK_ERROR_MENTIONS(bnorm_test::save_bytes(net), "layer 1 (ScaledNorm(4))", "register_layer");
  register_scaled_norm();
  const std::string bytes = bnorm_test::save_bytes(net);
  Sequential<double> loaded = bnorm_test::load_bytes<double>(bytes);
  CHECK(loaded.layer_name(2) == "ScaledNorm(4)");  // the subclass was saved as its kind
  const Matrix<double> x = Matrix<double>::Random(3, 5);
  CHECK(loaded.forward(x, Mode::eval) == net.forward(x, Mode::eval));
  CHECK(loaded.layer<ScaledNorm<double>>(2).calls() == 3);

  bnorm_test::TempDir folder;
  Sequential<double> resumed = network();
  save_checkpoint(folder / "run.ckpt", net);
  load_checkpoint(folder / "run.ckpt", resumed);
  CHECK(resumed.forward(x, Mode::eval) == net.forward(x, Mode::eval));
  CHECK(resumed.layer<LoudScaledNorm<double>>(2).calls() == 3);
}

TEST_CASE("A layer kind of the tests' own: recalibrate, synchronized BatchNorm, fold") {
  Sequential<double> net = network();
  train(net, 3);
  const Matrix<double> data = Matrix<double>::Random(3, 40);
  recalibrate(net, data);
  // Its BatchNorm now holds the statistics of its eval-mode input.
  const Matrix<double> input = net.layer<Dense<double>>(0).forward(data, Mode::eval);
  const Vector<double> mean = input.rowwise().mean();
  CHECK((net.layer<ScaledNorm<double>>(1).norm().running_mean() - mean).cwiseAbs().maxCoeff() < 1e-12);
  CHECK(net.layer<ScaledNorm<double>>(1).calls() == 3);  // its own state restored

  CHECK(distributed::for_each_batch_norm(net, [](BatchNorm<double>&) {}) == 2);

  Sequential<double> folded = fold_batchnorm(net);
  CHECK(folded.size() == 4);  // kept whole: its dataflow is its own
  CHECK((folded.forward(data, Mode::eval) - net.forward(data, Mode::eval)).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("A layer kind of the tests' own: its ONNX export, and the refusal of a kind without one") {
  Sequential<double> net = network();
  const std::vector<OnnxNode> nodes = net.onnx_nodes();
  std::vector<std::string> described;
  for (const OnnxNode& node : nodes) described.push_back(node.path + " " + node.op);
  CHECK(described == std::vector<std::string>{"0 Gemm", "1.norm BatchNormalization", "1 Mul",
                                              "2.norm BatchNormalization", "2 Mul", "3 Gemm"});
  CHECK(nodes[2].layer == "ScaledNorm(4)");
  CHECK(nodes[4].layer == "LoudScaledNorm(4)");

  Sequential<double> other{Dense<double>(3, 3), Sequential<double>{ReLU<double>(), Doubled<double>()}};
  const std::vector<OnnxNode> refused = other.onnx_nodes();
  REQUIRE(refused.size() == 3);
  CHECK(refused[2].path == "1.1");
  CHECK(refused[2].layer == "Doubled");
  CHECK(refused[2].refusal.find("no ONNX operator") != std::string::npos);
}

namespace {
template <class T>
class LoggedNorm : public BatchNorm<T> {
 public:
  using BatchNorm<T>::BatchNorm;
  std::string name() const { return "LoggedNorm(" + std::to_string(this->features()) + ")"; }
};
}  // namespace

TEST_CASE("A subclass of a built-in layer is saved, loaded and exported as its kind") {
  manual_seed(23);
  Sequential<double> net{Dense<double>(3, 4), LoggedNorm<double>(4)};
  net.layer<LoggedNorm<double>>(1).running_mean() << 1, 2, 3, 4;
  const std::string bytes = bnorm_test::save_bytes(net);
  Sequential<double> loaded = bnorm_test::load_bytes<double>(bytes);
  CHECK(loaded.layer<BatchNorm<double>>(1).running_mean() == net.layer<LoggedNorm<double>>(1).running_mean());
  CHECK(bnorm_test::save_bytes(loaded) == bytes);  // the record of a BatchNorm, byte for byte
  std::istringstream again(bytes);
  load_into(net, again);  // a LoggedNorm matches the file's BatchNorm
  const std::vector<OnnxNode> nodes = net.onnx_nodes();
  REQUIRE(nodes.size() == 2);
  CHECK(nodes[1].op == "BatchNormalization");
  CHECK(nodes[1].layer == "LoggedNorm(4)");
}
