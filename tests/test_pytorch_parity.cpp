// Parity with PyTorch 1.13: every layer, loss and optimizer of bnorm against numbers computed
// by torch itself. The numbers come from tests/reference/make_reference.py (committed with
// its output, so running these tests needs no Python); see that script for what each case
// is and how tensors are laid out.
//
// Error measure, everywhere: max |bnorm - torch| / max |torch| over a whole matrix, i.e. the
// largest error relative to the matrix's own scale. Run with -s to see the largest error of
// every case.

// bnorm-test-variant: isa_baseline BNORM_ISA=baseline  (also run on the baseline kernels)
#include <bnorm/bnorm.hpp>

#include <doctest/doctest.h>

#include "support/reference.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using bnorm::Bias;
using bnorm::Matrix;
using bnorm::Mode;
using bnorm_test::ReferenceData;

// ---- Tolerances ------------------------------------------------------------------------

// double against float64 torch: rounding differences only (different summation orders,
// FMA, libm). Observed errors are at most 3e-13 (BatchNorm's dx for a batch of two, where
// its terms cancel) and around 1e-15 elsewhere, including six training steps; 1e-9 leaves a
// wide margin yet catches any formula difference.
constexpr double double_tolerance = 1e-9;

// float against the float64 reference: the inputs are rounded to float (relative 6e-8) and
// all arithmetic is float. The reference is exact in comparison, so the error is float
// rounding alone, amplified by the conditioning of the case (BatchNorm's dx is a difference
// of nearly equal terms for small batches). Observed errors are at most 3e-6 (50 float
// ulps), most below 5e-7; 2e-5 leaves room for other compilers and instruction sets.
constexpr double float_layer_tolerance = 2e-5;

// float trajectories against float64 torch: rounding amplified over six steps of training
// through two BatchNorms, and options that float cannot hold exactly (RMSprop's alpha 0.99
// becomes 0.99000001: torch in float64 with that alpha moves centered RMSprop's weights by
// 1.5e-5 relative). Observed errors are at most 2e-5, most below 2e-6.
constexpr double float_trajectory_tolerance = 1e-4;

// float against a float32 torch run of the same trajectory: both sides round to float, in
// different orders. The script measures how far float32 rounding moves torch's own run from
// float64 (@f32.drift_vs_f64.*, about 3e-7); bnorm's float run can differ from torch's by
// about twice that. 2e-5 is some 30 times the drift, far below the 1e-3-or-larger change a
// wrong formula or option would make.
constexpr double float32_run_tolerance = 2e-5;

template <class T>
constexpr double layer_tolerance() {
  return std::is_same_v<T, double> ? double_tolerance : float_layer_tolerance;
}
template <class T>
constexpr double trajectory_tolerance() {
  return std::is_same_v<T, double> ? double_tolerance : float_trajectory_tolerance;
}
template <class T>
std::string type_label() {
  return std::is_same_v<T, double> ? "double" : "float";
}

// ---- Reference data ----------------------------------------------------------------------

const ReferenceData& layer_data() { return bnorm_test::reference_file("layers.txt"); }
const ReferenceData& trajectory_data() { return bnorm_test::reference_file("trajectories.txt"); }

// ---- Comparing ---------------------------------------------------------------------------

double relative_error(const Eigen::MatrixXd& actual, const Eigen::MatrixXd& expected) {
  const double scale = expected.cwiseAbs().maxCoeff();
  const double error = (actual - expected).cwiseAbs().maxCoeff();
  return scale > 0.0 ? error / scale : error;  // all-zero reference: absolute error
}

// Checks bnorm results against reference blocks with one tolerance, and remembers the worst
// relative error so that report() can print it (visible with -s).
class Comparison {
 public:
  Comparison(std::string label, double tolerance)
      : label_(std::move(label)), tolerance_(tolerance) {}

  // `tolerance` < 0: the comparison's own.
  template <class Derived>
  void check(const std::string& what, const Eigen::MatrixBase<Derived>& actual,
             const Eigen::MatrixXd& expected, double tolerance = -1.0) {
    if (tolerance < 0.0) tolerance = tolerance_;
    if (actual.rows() != expected.rows() || actual.cols() != expected.cols())
      FAIL(label_, ": ", what, " is ", actual.rows(), " x ", actual.cols(), " but torch's is ",
           expected.rows(), " x ", expected.cols());
    const double error = relative_error(actual.template cast<double>(), expected);
    CHECK_MESSAGE(error <= tolerance, label_, ": ", what, ": relative error ", error,
                  ", tolerance ", tolerance);
    if (!(error <= largest_)) {  // also records a NaN
      largest_ = error;
      worst_ = what;
      worst_tolerance_ = tolerance;
    }
  }

  void check(const std::string& what, double actual, double expected) {
    check(what, Eigen::MatrixXd::Constant(1, 1, actual), Eigen::MatrixXd::Constant(1, 1, expected));
  }

  void report() const {
    MESSAGE(label_, ": largest relative error ", largest_, " (", worst_, ", tolerance ",
            worst_tolerance_, ")");
  }

 private:
  std::string label_;
  double tolerance_;
  double largest_ = 0.0;
  std::string worst_ = "-";
  double worst_tolerance_ = tolerance_;
};

// ---- Single layers -------------------------------------------------------------------------

// Forward in training mode and backward of an element-wise layer, against case `name`.
template <class T, class L>
void check_elementwise_layer(const std::string& name, L layer) {
  const auto& data = layer_data();
  Comparison comparison(name + " (" + type_label<T>() + ")", layer_tolerance<T>());
  comparison.check("y", layer.forward(data.matrix_as<T>(name + ".x"), Mode::train),
                   data.matrix(name + ".y"));
  comparison.check("dx", layer.backward(data.matrix_as<T>(name + ".dy")),
                   data.matrix(name + ".dx"));
  comparison.check("eval y", layer.forward(data.matrix_as<T>(name + ".x"), Mode::eval),
                   data.matrix(name + ".y"));
  comparison.report();
}

// ---- Networks ----------------------------------------------------------------------------

// The MLP of make_reference.py's make_mlp(), layer for layer (indices match PyTorch's).
template <class T>
bnorm::Sequential<T> make_mlp() {
  return bnorm::Sequential<T>{bnorm::Dense<T>(20, 16, Bias::none),
                              bnorm::BatchNorm<T>(16),
                              bnorm::ReLU<T>(),
                              bnorm::Dense<T>(16, 16, Bias::none),
                              bnorm::BatchNorm<T>(16),
                              bnorm::Tanh<T>(),
                              bnorm::Dense<T>(16, 5)};
}

// make_reference.py's make_regression_net(): every remaining layer type appears.
template <class T>
bnorm::Sequential<T> make_regression_net() {
  return bnorm::Sequential<T>{
      bnorm::Dense<T>(12, 10),
      bnorm::LeakyReLU<T>(T(0.1)),
      bnorm::Dense<T>(10, 10, Bias::none),
      bnorm::BatchNorm<T>(10, {.momentum = T(0.3), .eps = T(1e-3)}),
      bnorm::Sigmoid<T>(),
      bnorm::Dropout<T>(0.0, /*seed=*/1),  // p = 0: the identity, as in torch
      bnorm::Dense<T>(10, 3),
      bnorm::Identity<T>()};
}

// "3.running_mean" -> (3, "running_mean").
std::pair<std::size_t, std::string> split_state_key(const std::string& key) {
  const auto dot = key.find('.');
  if (dot == std::string::npos) FAIL("'", key, "' is not a state_dict key like '3.weight'");
  return {std::stoul(key.substr(0, dot)), key.substr(dot + 1)};
}

bool is_running_statistic(const std::string& field) {
  return field == "running_mean" || field == "running_var";
}

template <class T>
bnorm::Vector<T>& running_statistic(bnorm::Sequential<T>& net, std::size_t layer,
                                    const std::string& field) {
  auto& batch_norm = net.template layer<bnorm::BatchNorm<T>>(layer);
  return field == "running_mean" ? batch_norm.running_mean() : batch_norm.running_var();
}

// Loads a PyTorch state_dict stored under `prefix` ("mlp.init"): parameters through
// net.parameters(), matched by their state_dict names, and BatchNorm running statistics.
template <class T>
void load_state(bnorm::Sequential<T>& net, const ReferenceData& data, const std::string& prefix) {
  std::size_t reference_parameters = 0;
  for (const auto& name : data.names_with_prefix(prefix + "."))
    if (!is_running_statistic(split_state_key(name.substr(prefix.size() + 1)).second))
      ++reference_parameters;
  auto parameters = net.parameters();
  REQUIRE_MESSAGE(parameters.size() == reference_parameters, "bnorm's network has ",
                  parameters.size(), " parameters, PyTorch's ", reference_parameters);
  for (auto& parameter : parameters) {
    const Eigen::MatrixXd& value = data.matrix(prefix + "." + parameter.name());
    if (parameter.rows() != value.rows() || parameter.cols() != value.cols())
      FAIL("parameter ", parameter.name(), " is ", parameter.rows(), " x ", parameter.cols(),
           " in bnorm but ", value.rows(), " x ", value.cols(), " in ", prefix);
    parameter.value() = value.cast<T>();
  }
  for (const auto& name : data.names_with_prefix(prefix + ".")) {
    const auto [layer, field] = split_state_key(name.substr(prefix.size() + 1));
    if (is_running_statistic(field)) running_statistic(net, layer, field) = data.matrix_as<T>(name);
  }
}

// Compares every parameter and running statistic with the state_dict stored under `prefix`.
template <class T>
void compare_state(Comparison& comparison, bnorm::Sequential<T>& net, const ReferenceData& data,
                   const std::string& prefix) {
  auto parameters = net.parameters();
  std::size_t compared_parameters = 0;
  for (const auto& name : data.names_with_prefix(prefix + ".")) {
    const std::string key = name.substr(prefix.size() + 1);
    const auto [layer, field] = split_state_key(key);
    if (is_running_statistic(field)) {
      comparison.check(key, running_statistic(net, layer, field), data.matrix(name));
      continue;
    }
    const auto parameter = std::find_if(parameters.begin(), parameters.end(),
                                        [&](const auto& p) { return p.name() == key; });
    if (parameter == parameters.end()) FAIL("bnorm's network has no parameter ", key);
    comparison.check(key, parameter->value(), data.matrix(name));
    ++compared_parameters;
  }
  CHECK(compared_parameters == parameters.size());
}

template <class T, class Target>
using Batches = std::vector<std::pair<Matrix<T>, Target>>;

// The training batches "<prefix>.batch.<k>.x" with labels or regression targets.
template <class T>
Batches<T, bnorm::Labels> labelled_batches(const ReferenceData& data, const std::string& prefix) {
  Batches<T, bnorm::Labels> batches;
  for (int k = 0; data.contains(prefix + ".batch." + std::to_string(k) + ".x"); ++k) {
    const std::string batch = prefix + ".batch." + std::to_string(k);
    batches.emplace_back(data.matrix_as<T>(batch + ".x"), data.labels(batch + ".labels"));
  }
  REQUIRE(!batches.empty());
  return batches;
}

template <class T>
Batches<T, Matrix<T>> regression_batches(const ReferenceData& data, const std::string& prefix) {
  Batches<T, Matrix<T>> batches;
  for (int k = 0; data.contains(prefix + ".batch." + std::to_string(k) + ".x"); ++k) {
    const std::string batch = prefix + ".batch." + std::to_string(k);
    batches.emplace_back(data.matrix_as<T>(batch + ".x"), data.matrix_as<T>(batch + ".target"));
  }
  REQUIRE(!batches.empty());
  return batches;
}

// One optimizer step per batch, as the script's train(); returns the loss of every step
// (computed before that step's update).
template <class T, class Loss, class Target, class Optimizer>
Eigen::VectorXd train(bnorm::Sequential<T>& net, Loss& loss, Optimizer& optimizer,
                      const Batches<T, Target>& batches) {
  Eigen::VectorXd losses(static_cast<Eigen::Index>(batches.size()));
  for (std::size_t k = 0; k < batches.size(); ++k) {
    const auto& [x, target] = batches[k];
    losses(static_cast<Eigen::Index>(k)) = loss.forward(net.forward(x, Mode::train), target);
    net.backward(loss.backward());
    optimizer.step();
  }
  return losses;
}

// Losses, final state and an eval-mode forward against the run stored under `run`.
template <class T>
void compare_trajectory(Comparison& comparison, bnorm::Sequential<T>& net,
                        const Eigen::VectorXd& losses, const ReferenceData& data,
                        const std::string& run, const Matrix<T>& eval_x) {
  comparison.check("losses", losses, data.matrix(run + ".losses"));
  compare_state(comparison, net, data, run + ".final");
  comparison.check("eval output", net.forward(eval_x, Mode::eval),
                   data.matrix(run + ".eval_output"));
}

// Trains the MLP from the stored initial state with the optimizer `make_optimizer` builds,
// and compares with the torch run "mlp.<run>".
template <class T, class MakeOptimizer>
void check_mlp_trajectory(const std::string& run, MakeOptimizer make_optimizer) {
  const auto& data = trajectory_data();
  auto net = make_mlp<T>();
  load_state(net, data, "mlp.init");
  auto optimizer = make_optimizer(net.parameters());
  bnorm::SoftmaxCrossEntropy<T> loss;
  const auto losses = train(net, loss, optimizer, labelled_batches<T>(data, "mlp"));
  Comparison comparison("MLP with " + run + " (" + type_label<T>() + ")",
                        trajectory_tolerance<T>());
  compare_trajectory(comparison, net, losses, data, "mlp." + run, data.matrix_as<T>("mlp.eval_x"));
  comparison.report();
}

}  // namespace

// ==== The data itself ==========================================================================

TEST_CASE("Reference data loads and names the PyTorch version that made it") {
  for (const auto* data : {&layer_data(), &trajectory_data()}) {
    const auto& version = data->metadata("torch_version");
    MESSAGE(data->path(), ": torch ", version);
    CHECK(!version.empty());
  }
  CHECK_THROWS_WITH_AS(layer_data().matrix("no.such.block"),
                       doctest::Contains("no block named 'no.such.block'"), std::runtime_error);
}

TEST_CASE("ReferenceData reads blocks column-major and rejects malformed files") {
  const auto path = std::filesystem::temp_directory_path() / "bnorm_reference_reader_test.txt";
  auto write = [&](const std::string& text) { std::ofstream(path) << text; };
  write("# comment\n@torch_version 9.9 beta\nm 2 3\n1 2 3\n4 5 6\nv 2 1\n-inf 4.9e-324\n");
  {
    const ReferenceData data(path.string());
    CHECK(data.metadata("torch_version") == "9.9 beta");
    const auto& m = data.matrix("m");
    CHECK(m.rows() == 2);
    CHECK(m.cols() == 3);
    CHECK(m(1, 0) == 2.0);  // the second number is the second row of the first column
    CHECK(m(0, 2) == 5.0);
    CHECK(std::isinf(data.matrix("v")(0, 0)));
    CHECK(data.matrix("v")(1, 0) == 4.9e-324);  // denormals survive
  }
  write("m 2 2\n1 2 3\n");
  CHECK_THROWS_WITH_AS(ReferenceData(path.string()), doctest::Contains("file ends inside block m"),
                       std::runtime_error);
  write("m 1 1 2\n");
  CHECK_THROWS_WITH_AS(ReferenceData(path.string()), doctest::Contains("alone on its line"),
                       std::runtime_error);
  write("m 1 1\n1x\n");
  CHECK_THROWS_WITH_AS(ReferenceData(path.string()), doctest::Contains("'1x' is not a number"),
                       std::runtime_error);
  std::filesystem::remove(path);
}

// ==== a. Each layer alone =======================================================================

TEST_CASE_TEMPLATE("Dense forward and backward match torch.nn.Linear, with and without bias", T,
                   float, double) {
  const auto& data = layer_data();
  for (const std::string name : {"dense.bias", "dense.nobias"}) {
    const bool has_bias = data.contains(name + ".bias");
    const auto& weight = data.matrix(name + ".weight");
    bnorm::Dense<T> dense(weight.cols(), weight.rows(), has_bias ? Bias::learned : Bias::none);
    dense.weight() = weight.cast<T>();
    if (has_bias) dense.bias() = data.matrix_as<T>(name + ".bias");
    Comparison comparison(name + " (" + type_label<T>() + ")", layer_tolerance<T>());
    comparison.check("y", dense.forward(data.matrix_as<T>(name + ".x"), Mode::train),
                     data.matrix(name + ".y"));
    comparison.check("dx", dense.backward(data.matrix_as<T>(name + ".dy")),
                     data.matrix(name + ".dx"));
    comparison.check("dweight", dense.weight_grad(), data.matrix(name + ".dweight"));
    if (has_bias) comparison.check("dbias", dense.bias_grad(), data.matrix(name + ".dbias"));
    comparison.report();
  }
}

TEST_CASE_TEMPLATE(
    "BatchNorm matches torch.nn.BatchNorm1d over three training batches (outputs, gradients, "
    "running statistics) and then in eval mode",
    T, float, double) {
  const auto& data = layer_data();
  for (const std::string name : {"batchnorm.m01", "batchnorm.m03"}) {
    const auto gamma = data.matrix_as<T>(name + ".gamma");
    bnorm::BatchNorm<T> batch_norm(gamma.rows(),
                                   {.momentum = static_cast<T>(data.scalar(name + ".momentum")),
                                    .eps = static_cast<T>(data.scalar(name + ".eps"))});
    batch_norm.gamma() = gamma;
    batch_norm.beta() = data.matrix_as<T>(name + ".beta");
    Comparison comparison(name + " (" + type_label<T>() + ")", layer_tolerance<T>());
    const int batches = static_cast<int>(data.scalar(name + ".batches"));
    for (int k = 0; k < batches; ++k) {
      const std::string batch = name + "." + std::to_string(k);
      const std::string step = "batch " + std::to_string(k) + " ";
      comparison.check(step + "y", batch_norm.forward(data.matrix_as<T>(batch + ".x"), Mode::train),
                       data.matrix(batch + ".y"));
      // With two examples xhat is +-1 (up to eps) and the three terms of dx cancel to about
      // 1e-3 of their size, which float cannot resolve: torch's own float32 dx is off by
      // 1.8e-4 relative on this batch.
      const bool cancels = std::is_same_v<T, float> && data.matrix(batch + ".x").cols() == 2;
      comparison.check(step + "dx", batch_norm.backward(data.matrix_as<T>(batch + ".dy")),
                       data.matrix(batch + ".dx"), cancels ? 1e-3 : layer_tolerance<T>());
      comparison.check(step + "dgamma", batch_norm.gamma_grad(), data.matrix(batch + ".dgamma"));
      comparison.check(step + "dbeta", batch_norm.beta_grad(), data.matrix(batch + ".dbeta"));
      comparison.check(step + "running_mean", batch_norm.running_mean(),
                       data.matrix(batch + ".running_mean"));
      comparison.check(step + "running_var", batch_norm.running_var(),
                       data.matrix(batch + ".running_var"));
    }
    CHECK(batch_norm.num_batches_tracked() == batches);
    comparison.check("eval y", batch_norm.forward(data.matrix_as<T>(name + ".eval.x"), Mode::eval),
                     data.matrix(name + ".eval.y"));
    comparison.report();
  }
}

TEST_CASE("BatchNorm matches BatchNorm1d when the mean (1e4) dwarfs the spread (1), in double") {
  // Only double: in float, 1e4 + N(0, 1) keeps just 10 bits of the spread in the input itself.
  const auto& data = layer_data();
  const std::string name = "batchnorm.offset";
  bnorm::BatchNorm<double> batch_norm(3);
  Comparison comparison(name + " (double)", double_tolerance);
  comparison.check("y", batch_norm.forward(data.matrix(name + ".x"), Mode::train),
                   data.matrix(name + ".y"));
  comparison.check("dx", batch_norm.backward(data.matrix(name + ".dy")), data.matrix(name + ".dx"));
  comparison.check("dgamma", batch_norm.gamma_grad(), data.matrix(name + ".dgamma"));
  comparison.check("dbeta", batch_norm.beta_grad(), data.matrix(name + ".dbeta"));
  comparison.check("running_mean", batch_norm.running_mean(), data.matrix(name + ".running_mean"));
  comparison.check("running_var", batch_norm.running_var(), data.matrix(name + ".running_var"));
  comparison.report();
}

TEST_CASE_TEMPLATE("ReLU matches torch.nn.ReLU, gradient 0 at x = 0", T, float, double) {
  check_elementwise_layer<T>("relu", bnorm::ReLU<T>());
}

TEST_CASE_TEMPLATE("LeakyReLU(0.1) matches torch.nn.LeakyReLU(0.1)", T, float, double) {
  check_elementwise_layer<T>("leaky_relu_0.1", bnorm::LeakyReLU<T>(T(0.1)));
}

TEST_CASE_TEMPLATE("LeakyReLU(-0.2), a negative slope, matches torch.nn.LeakyReLU(-0.2)", T, float,
                   double) {
  check_elementwise_layer<T>("leaky_relu_-0.2", bnorm::LeakyReLU<T>(T(-0.2)));
}

TEST_CASE_TEMPLATE("Sigmoid matches torch.nn.Sigmoid, including saturation at +-40 and +-100", T,
                   float, double) {
  check_elementwise_layer<T>("sigmoid", bnorm::Sigmoid<T>());
}

TEST_CASE_TEMPLATE("Tanh matches torch.nn.Tanh, including saturation at +-40 and +-100", T, float,
                   double) {
  check_elementwise_layer<T>("tanh", bnorm::Tanh<T>());
}

TEST_CASE_TEMPLATE("Identity matches torch.nn.Identity", T, float, double) {
  check_elementwise_layer<T>("identity", bnorm::Identity<T>());
}

TEST_CASE_TEMPLATE(
    "SoftmaxCrossEntropy matches torch.nn.CrossEntropyLoss (mean), including logits of +-1000", T,
    float, double) {
  const auto& data = layer_data();
  bnorm::SoftmaxCrossEntropy<T> loss;
  Comparison comparison("cross_entropy (" + type_label<T>() + ")", layer_tolerance<T>());
  const T value =
      loss.forward(data.matrix_as<T>("cross_entropy.logits"), data.labels("cross_entropy.labels"));
  comparison.check("loss", value, data.scalar("cross_entropy.loss"));
  comparison.check("dlogits", loss.backward(), data.matrix("cross_entropy.dlogits"));
  comparison.report();
}

TEST_CASE_TEMPLATE("MeanSquaredError matches torch.nn.MSELoss (mean over every element)", T, float,
                   double) {
  const auto& data = layer_data();
  bnorm::MeanSquaredError<T> loss;
  Comparison comparison("mse (" + type_label<T>() + ")", layer_tolerance<T>());
  const T value =
      loss.forward(data.matrix_as<T>("mse.prediction"), data.matrix_as<T>("mse.target"));
  comparison.check("loss", value, data.scalar("mse.loss"));
  comparison.check("dprediction", loss.backward(), data.matrix("mse.dprediction"));
  comparison.report();
}

// ==== b. Training trajectories ===================================================================

TEST_CASE_TEMPLATE("MLP backward through Dense, BatchNorm, ReLU and Tanh matches torch autograd", T,
                   float, double) {
  const auto& data = trajectory_data();
  auto net = make_mlp<T>();
  load_state(net, data, "mlp.init");
  const auto batches = labelled_batches<T>(data, "mlp");
  bnorm::SoftmaxCrossEntropy<T> loss;
  loss.forward(net.forward(batches[0].first, Mode::train), batches[0].second);
  net.backward(loss.backward());
  Comparison comparison("MLP first-step gradients (" + type_label<T>() + ")",
                        trajectory_tolerance<T>());
  for (auto& parameter : net.parameters())
    comparison.check("d" + parameter.name(), parameter.grad(),
                     data.matrix("mlp.grad0." + parameter.name()));
  comparison.report();
}

TEST_CASE_TEMPLATE("MLP training with SGD(lr 0.1, momentum 0.9, weight_decay 1e-3) matches torch",
                   T, float, double) {
  check_mlp_trajectory<T>("sgd_momentum", [](std::vector<bnorm::Parameter<T>> parameters) {
    return bnorm::SGD<T>(std::move(parameters),
                         {.lr = T(0.1), .momentum = T(0.9), .weight_decay = T(1e-3)});
  });
}

TEST_CASE_TEMPLATE(
    "MLP training with SGD(lr 0.1, Nesterov momentum 0.9, weight_decay 1e-4) matches torch", T,
    float, double) {
  check_mlp_trajectory<T>("sgd_nesterov", [](std::vector<bnorm::Parameter<T>> parameters) {
    return bnorm::SGD<T>(
        std::move(parameters),
        {.lr = T(0.1), .momentum = T(0.9), .weight_decay = T(1e-4), .nesterov = true});
  });
}

TEST_CASE_TEMPLATE("MLP training with plain SGD(lr 0.1) matches torch", T, float, double) {
  check_mlp_trajectory<T>("sgd_plain", [](std::vector<bnorm::Parameter<T>> parameters) {
    return bnorm::SGD<T>(std::move(parameters), {.lr = T(0.1)});
  });
}

TEST_CASE_TEMPLATE("MLP training with SGD(lr 0.1, momentum 0.9, dampening 0.5) matches torch", T,
                   float, double) {
  check_mlp_trajectory<T>("sgd_dampening", [](std::vector<bnorm::Parameter<T>> parameters) {
    return bnorm::SGD<T>(std::move(parameters),
                         {.lr = T(0.1), .momentum = T(0.9), .dampening = T(0.5)});
  });
}

TEST_CASE_TEMPLATE("MLP training with Adam(lr 1e-2, weight_decay 1e-3) matches torch", T, float,
                   double) {
  check_mlp_trajectory<T>("adam", [](std::vector<bnorm::Parameter<T>> parameters) {
    return bnorm::Adam<T>(std::move(parameters), {.lr = T(1e-2), .weight_decay = T(1e-3)});
  });
}

TEST_CASE_TEMPLATE("MLP training with Adam(lr 1e-2, betas (0.8, 0.9), amsgrad) matches torch", T,
                   float, double) {
  check_mlp_trajectory<T>("adam_amsgrad", [](std::vector<bnorm::Parameter<T>> parameters) {
    return bnorm::Adam<T>(std::move(parameters),
                          {.lr = T(1e-2), .beta1 = T(0.8), .beta2 = T(0.9), .amsgrad = true});
  });
}

TEST_CASE_TEMPLATE("MLP training with AdamW(lr 1e-2, weight_decay 1e-2) matches torch", T, float,
                   double) {
  check_mlp_trajectory<T>("adamw", [](std::vector<bnorm::Parameter<T>> parameters) {
    return bnorm::AdamW<T>(std::move(parameters), {.lr = T(1e-2), .weight_decay = T(1e-2)});
  });
}

TEST_CASE_TEMPLATE("MLP training with RMSprop(lr 1e-2) matches torch", T, float, double) {
  check_mlp_trajectory<T>("rmsprop", [](std::vector<bnorm::Parameter<T>> parameters) {
    return bnorm::RMSprop<T>(std::move(parameters), {.lr = T(1e-2)});
  });
}

TEST_CASE_TEMPLATE(
    "MLP training with RMSprop(lr 1e-2, centered, momentum 0.9, weight_decay 1e-3) matches torch",
    T, float, double) {
  check_mlp_trajectory<T>("rmsprop_centered", [](std::vector<bnorm::Parameter<T>> parameters) {
    return bnorm::RMSprop<T>(
        std::move(parameters),
        {.lr = T(1e-2), .weight_decay = T(1e-3), .momentum = T(0.9), .centered = true});
  });
}

TEST_CASE_TEMPLATE(
    "Regression training (LeakyReLU, BatchNorm(0.3, 1e-3), Sigmoid, Dropout(0), Identity, "
    "MSELoss, SGD momentum) matches torch",
    T, float, double) {
  const auto& data = trajectory_data();
  auto net = make_regression_net<T>();
  load_state(net, data, "mse.init");
  bnorm::SGD<T> optimizer(net.parameters(), {.lr = T(0.05), .momentum = T(0.9)});
  bnorm::MeanSquaredError<T> loss;
  const auto losses = train(net, loss, optimizer, regression_batches<T>(data, "mse"));
  Comparison comparison("regression net with SGD momentum (" + type_label<T>() + ")",
                        trajectory_tolerance<T>());
  compare_trajectory(comparison, net, losses, data, "mse", data.matrix_as<T>("mse.eval_x"));
  comparison.report();
}

// ==== c. A float32 run against float32 PyTorch
// ====================================================

TEST_CASE("Float MLP training with SGD(lr 0.1, momentum 0.9) matches a float32 torch run") {
  const auto& data = trajectory_data();
  auto net = make_mlp<float>();
  load_state(net, data, "f32.init");
  bnorm::SGD<float> optimizer(net.parameters(), {.lr = 0.1f, .momentum = 0.9f});
  bnorm::SoftmaxCrossEntropy<float> loss;
  const auto losses = train(net, loss, optimizer, labelled_batches<float>(data, "f32"));
  Comparison comparison("float32 MLP with SGD momentum (float)", float32_run_tolerance);
  compare_trajectory(comparison, net, losses, data, "f32", data.matrix_as<float>("f32.eval_x"));
  MESSAGE("for scale, torch's own float32 run differs from float64 by ",
          data.metadata("f32.drift_vs_f64.loss"), " (losses), ",
          data.metadata("f32.drift_vs_f64.state"), " (state), ",
          data.metadata("f32.drift_vs_f64.eval_output"), " (eval output)");
  comparison.report();
}

// ==== Freezing (tests/reference/make_freezing_reference.py) ===================================

namespace {
const ReferenceData& freezing_data() { return bnorm_test::reference_file("freezing.txt"); }

template <class T>
bnorm::SGD<T> freezing_sgd(std::vector<bnorm::Parameter<T>> parameters) {
  return bnorm::SGD<T>(std::move(parameters),
                       {.lr = T(0.1), .momentum = T(0.9), .weight_decay = T(1e-3)});
}
}  // namespace

TEST_CASE_TEMPLATE("Frozen parameters (requires_grad False) train as in torch", T, float, double) {
  const auto& data = freezing_data();
  auto net = make_mlp<T>();
  load_state(net, data, "freeze.init");
  auto parameters = net.parameters();
  int frozen = 0;
  for (auto& parameter : parameters)
    if (parameter.name() == "0.weight" || parameter.name() == "4.bias") {
      parameter.set_trainable(false);
      ++frozen;
    }
  REQUIRE(frozen == 2);
  const Matrix<T> initial_weight = net.template layer<bnorm::Dense<T>>(0).weight();
  auto optimizer = freezing_sgd<T>(std::move(parameters));
  bnorm::SoftmaxCrossEntropy<T> loss;
  const auto losses = train(net, loss, optimizer, labelled_batches<T>(data, "freeze"));
  CHECK(net.template layer<bnorm::Dense<T>>(0).weight() == initial_weight);  // bit for bit
  Comparison comparison("frozen parameters (" + type_label<T>() + ")", trajectory_tolerance<T>());
  compare_trajectory(comparison, net, losses, data, "freeze.params",
                     data.matrix_as<T>("freeze.eval_x"));
  comparison.report();
}

TEST_CASE_TEMPLATE("BatchNorm with frozen statistics trains as bn.eval() in a training torch model",
                   T, float, double) {
  const auto& data = freezing_data();
  auto net = make_mlp<T>();
  load_state(net, data, "freeze.init");
  auto& frozen = net.template layer<bnorm::BatchNorm<T>>(1);
  frozen.set_frozen_statistics(true);
  const bnorm::Vector<T> running_mean = frozen.running_mean();
  auto optimizer = freezing_sgd<T>(net.parameters());
  bnorm::SoftmaxCrossEntropy<T> loss;
  const auto losses = train(net, loss, optimizer, labelled_batches<T>(data, "freeze"));
  CHECK(frozen.running_mean() == running_mean);
  CHECK(frozen.num_batches_tracked() == 0);
  Comparison comparison("frozen BatchNorm statistics (" + type_label<T>() + ")",
                        trajectory_tolerance<T>());
  compare_trajectory(comparison, net, losses, data, "freeze.stats",
                     data.matrix_as<T>("freeze.eval_x"));
  comparison.report();
}

TEST_CASE_TEMPLATE("Input gradients of the eval-mode network (keep_for_backward) match torch", T,
                   float, double) {
  const auto& data = freezing_data();
  auto net = make_mlp<T>();
  load_state(net, data, "freeze.init");
  net.set_keep_for_backward(true);
  const auto batches = labelled_batches<T>(data, "freeze");
  bnorm::SoftmaxCrossEntropy<T> loss;
  loss.forward(net.forward(batches[0].first, Mode::eval), batches[0].second);
  Comparison comparison("eval-mode input gradient (" + type_label<T>() + ")",
                        trajectory_tolerance<T>());
  comparison.check("dx", net.backward(loss.backward()), data.matrix("saliency.dx"));
  for (auto& parameter : net.parameters())
    comparison.check("d" + parameter.name(), parameter.grad(),
                     data.matrix("saliency.grad." + parameter.name()));
  comparison.report();
}
