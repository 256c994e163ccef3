// Parameter groups (optim/parameter_group.hpp, and the group constructors of every optimizer):
// the split by shape, per-group options, and two-group training against torch.optim
// (tests/reference/make_training.py writes training.txt).
#include <bnorm/bnorm.hpp>
#include <bnorm/optim/parameter_group.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/reference.hpp"

#include <algorithm>
#include <cmath>
#include <string>

using namespace bnorm;

namespace {

const bnorm_test::ReferenceData& data() { return bnorm_test::reference_file("training.txt"); }

// make_reference.py's make_mlp().
Sequential<double> make_mlp() {
  return Sequential<double>{Dense<double>(20, 16, Bias::none),
                            BatchNorm<double>(16),
                            ReLU<double>(),
                            Dense<double>(16, 16, Bias::none),
                            BatchNorm<double>(16),
                            Tanh<double>(),
                            Dense<double>(16, 5)};
}

double relative_error(const Eigen::MatrixXd& actual, const Eigen::MatrixXd& expected) {
  const double scale = expected.cwiseAbs().maxCoeff();
  return (actual - expected).cwiseAbs().maxCoeff() / (scale > 0 ? scale : 1.0);
}

// Loads the parameters and running statistics stored under `prefix`, by state_dict key.
void load_state(Sequential<double>& net, const std::string& prefix) {
  for (auto& parameter : net.parameters())
    parameter.value() = data().matrix(prefix + "." + parameter.name());
  for (auto& buffer : net.buffers())
    if (buffer.kind() == BufferKind::values)
      buffer.values() = data().matrix(prefix + "." + buffer.name());
}

// The largest relative difference of the run `run` from torch's: losses, final state, eval.
template <class Optimizer>
double train_and_compare(Sequential<double>& net, Optimizer& optimizer, const std::string& run) {
  SoftmaxCrossEntropy<double> loss;
  Eigen::VectorXd losses(6);
  for (int k = 0; k < 6; ++k) {
    const std::string batch = "groups.batch." + std::to_string(k);
    losses(k) = loss.forward(net.forward(data().matrix(batch + ".x"), Mode::train),
                             data().labels(batch + ".labels"));
    net.backward(loss.backward());
    optimizer.step();
  }
  const std::string prefix = "groups." + run;
  double worst = relative_error(losses, data().matrix(prefix + ".losses"));
  for (auto& parameter : net.parameters())
    worst = std::max(worst, relative_error(parameter.value(),
                                           data().matrix(prefix + ".final." + parameter.name())));
  for (auto& buffer : net.buffers())
    if (buffer.kind() == BufferKind::values)
      worst = std::max(worst, relative_error(buffer.values(),
                                             data().matrix(prefix + ".final." + buffer.name())));
  worst = std::max(worst, relative_error(net.forward(data().matrix("groups.eval_x"), Mode::eval),
                                         data().matrix(prefix + ".eval_output")));
  MESSAGE(run, " with two parameter groups: largest relative difference from PyTorch ", worst);
  return worst;
}

}  // namespace

TEST_CASE("split_weight_decay: matrices decay, vectors (biases, gamma, beta) do not") {
  auto net = make_mlp();
  const auto groups = split_weight_decay(net.parameters());
  REQUIRE(groups.size() == 2);
  std::vector<std::string> decay, no_decay;
  for (const auto& p : groups[0].parameters) decay.push_back(p.name());
  for (const auto& p : groups[1].parameters) no_decay.push_back(p.name());
  CHECK(decay == std::vector<std::string>{"0.weight", "3.weight", "6.weight"});
  CHECK(no_decay == std::vector<std::string>{"1.weight", "1.bias", "4.weight", "4.bias", "6.bias"});
  CHECK(!groups[0].weight_decay.has_value());
  CHECK(groups[1].weight_decay == 0.0);
  CHECK(!groups[0].lr.has_value());
  CHECK(!groups[1].lr.has_value());

  const auto by_name = split_weight_decay(
      net.parameters(), [](const Parameter<double>& p) { return p.name() != "6.bias"; });
  CHECK(by_name[0].parameters.size() == 7);
  CHECK(by_name[1].parameters.front().name() == "6.bias");
}

TEST_CASE("Training with two parameter groups matches torch.optim") {
  auto net = make_mlp();
  load_state(net, "groups.init");
  auto groups = split_weight_decay(net.parameters());
  groups[1].lr = 0.05;
  SUBCASE("SGD with momentum") {
    SGD<double> sgd(groups, {.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-2});
    CHECK(sgd.group_count() == 2);
    CHECK(sgd.group_options(1).lr == 0.05);
    CHECK(sgd.group_options(1).weight_decay == 0.0);
    CHECK(sgd.group_options(1).momentum == 0.9);
    CHECK(train_and_compare(net, sgd, "sgd") <= 1e-9);
  }
  SUBCASE("AdamW") {
    AdamW<double> adamw(groups, {.lr = 0.1, .weight_decay = 1e-2});
    CHECK(train_and_compare(net, adamw, "adamw") <= 1e-9);
  }
}

TEST_CASE("lr() and set_lr() are group 0's learning rate; schedulers scale every group") {
  auto net = make_mlp();
  auto groups = split_weight_decay(net.parameters());
  groups[1].lr = 0.05;
  Adam<double> adam(groups, {.lr = 0.1});
  CHECK(adam.lr() == 0.1);
  adam.set_lr(0.2);
  CHECK(adam.options().lr == 0.2);
  CHECK(adam.group_options(1).lr == 0.05);
  StepLR schedule(adam, {.step_size = 1, .gamma = 0.5});
  schedule.step();
  CHECK(adam.lr() == 0.1);
  CHECK(adam.group_options(1).lr == 0.025);
  CHECK(schedule.last_lrs() == std::vector<double>{0.1, 0.025});
}

TEST_CASE("Group constructors reject shared parameters, no parameters and bad overrides") {
  auto net = make_mlp();
  auto parameters = net.parameters();
  std::vector<ParameterGroup<double>> twice{{{parameters[0]}}, {{parameters[1], parameters[0]}}};
  CHECK_ERROR_MENTIONS(SGD<double>(twice), "SGD", "0.weight", "more than one parameter group");
  CHECK_ERROR_MENTIONS(RMSprop<double>(std::vector<ParameterGroup<double>>{}), "RMSprop", "empty");
  CHECK_ERROR_MENTIONS(Adam<double>(std::vector<ParameterGroup<double>>(2)), "Adam",
                       "hold no parameter");
  std::vector<ParameterGroup<double>> negative{{parameters, -0.1, std::nullopt}};
  CHECK_ERROR_MENTIONS(AdamW<double>(negative), "AdamW", "lr", "-0.1");
  SGD<double> sgd(parameters);
  CHECK_ERROR_MENTIONS(sgd.set_lr(-1.0), "SGD", "lr", "-1");
  CHECK(sgd.lr() == 0.01);
}
