// The learning-rate schedulers (optim/scheduler.hpp, optim/schedulers.hpp) against the
// sequences torch.optim.lr_scheduler 1.13 gives for the same options
// (tests/reference/make_schedulers.py writes schedulers.txt; each case's options are
// repeated here).
#include <bnorm/optim/adam.hpp>
#include <bnorm/optim/adamw.hpp>
#include <bnorm/optim/rmsprop.hpp>
#include <bnorm/optim/schedulers.hpp>
#include <bnorm/optim/sgd.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/reference.hpp"

#include <algorithm>
#include <cmath>
#include <string>

using namespace bnorm;

namespace {

const bnorm_test::ReferenceData& data() { return bnorm_test::reference_file("schedulers.txt"); }

// One scalar parameter per group, group i with learning rate lrs[i], as the script's.
struct Model {
  explicit Model(std::vector<double> lrs) : lrs_(std::move(lrs)) {
    values.resize(lrs_.size(), Matrix<double>::Zero(1, 1));
    grads.resize(lrs_.size(), Matrix<double>::Zero(1, 1));
  }
  std::vector<ParameterGroup<double>> groups() {
    std::vector<ParameterGroup<double>> result;
    for (std::size_t i = 0; i < lrs_.size(); ++i)
      result.push_back({{Parameter<double>("p" + std::to_string(i), values[i], grads[i])},
                        lrs_[i],
                        std::nullopt});
    return result;
  }
  std::vector<double> lrs_;
  std::vector<Matrix<double>> values, grads;
};

double relative_error(double actual, double expected) {
  return std::abs(actual - expected) / std::max(std::abs(expected), 1e-300);
}

// Compares every group's lr (and momentum) after the constructor and each step to `name`.
template <class Optimizer, class Scheduler, class Step>
void check_sequence(const std::string& name, Optimizer& optimizer, Scheduler& scheduler,
                    Step&& step, bool momentum = false) {
  const Eigen::MatrixXd& lr = data().matrix(name + ".lr");
  REQUIRE(lr.cols() == static_cast<Eigen::Index>(optimizer.group_count()));
  double worst = 0;
  auto compare = [&](Eigen::Index row) {
    for (std::size_t g = 0; g < optimizer.group_count(); ++g) {
      const Eigen::Index col = static_cast<Eigen::Index>(g);
      worst = std::max(worst, relative_error(optimizer.group_options(g).lr, lr(row, col)));
      CHECK(scheduler.last_lrs()[g] == optimizer.group_options(g).lr);
      if (momentum) {
        const auto& o = optimizer.group_options(g);
        double m;
        if constexpr (requires { o.beta1; })
          m = o.beta1;
        else
          m = o.momentum;
        worst = std::max(worst, relative_error(m, data().matrix(name + ".momentum")(row, col)));
      }
    }
  };
  compare(0);
  for (Eigen::Index row = 1; row < lr.rows(); ++row) {
    step(row - 1);
    compare(row);
  }
  INFO(name, ": largest relative difference ", worst);
  MESSAGE(name, ": largest relative difference from PyTorch ", worst);
  CHECK(worst <= 1e-12);
  CHECK(scheduler.last_lr() == optimizer.lr());
}

template <class Optimizer, class Scheduler>
void check_sequence(const std::string& name, Optimizer& optimizer, Scheduler& scheduler,
                    bool momentum = false) {
  check_sequence(
      name, optimizer, scheduler, [&](Eigen::Index) { scheduler.step(); }, momentum);
}

}  // namespace

TEST_CASE("StepLR, MultiStepLR, ExponentialLR match torch for two groups") {
  Model model({0.1, 0.02});
  SGD<double> sgd(model.groups());
  SUBCASE("StepLR") {
    StepLR schedule(sgd, {.step_size = 3, .gamma = 0.5});
    check_sequence("step", sgd, schedule);
  }
  SUBCASE("MultiStepLR, a repeated milestone decaying twice") {
    MultiStepLR schedule(sgd, {.milestones = {2, 5, 5, 9}, .gamma = 0.3});
    check_sequence("multistep", sgd, schedule);
  }
  SUBCASE("ExponentialLR") {
    ExponentialLR schedule(sgd, {.gamma = 0.9});
    check_sequence("exponential", sgd, schedule);
  }
}

TEST_CASE("CosineAnnealingLR matches torch, past t_max too") {
  SUBCASE("two groups, eta_min") {
    Model model({0.1, 0.02});
    SGD<double> sgd(model.groups());
    CosineAnnealingLR schedule(sgd, {.t_max = 10, .eta_min = 0.001});
    check_sequence("cosine", sgd, schedule);
  }
  SUBCASE("odd t_max") {
    Model model({0.3});
    SGD<double> sgd(model.groups());
    CosineAnnealingLR schedule(sgd, {.t_max = 7});
    check_sequence("cosine7", sgd, schedule);
  }
}

TEST_CASE("LinearLR matches torch, warming up and decaying") {
  SUBCASE("defaults") {
    Model model({0.1, 0.02});
    SGD<double> sgd(model.groups());
    LinearLR schedule(sgd, {});
    CHECK(schedule.options().start_factor == 1.0 / 3);
    CHECK(schedule.options().total_iters == 5);
    check_sequence("linear", sgd, schedule);
  }
  SUBCASE("decay") {
    Model model({0.2});
    SGD<double> sgd(model.groups());
    LinearLR schedule(sgd, {.start_factor = 1.0, .end_factor = 0.1, .total_iters = 6});
    check_sequence("linear_decay", sgd, schedule);
  }
}

TEST_CASE("OneCycleLR matches torch and cycles SGD's momentum or Adam's beta1") {
  SUBCASE("SGD, two groups, cosine annealing") {
    Model model({0.1, 0.02});
    SGD<double> sgd(model.groups(), {.momentum = 0.9});
    OneCycleLR schedule(sgd, {.max_lr = 0.5, .total_steps = 20});
    check_sequence("onecycle", sgd, schedule, true);
    CHECK_ERROR_MENTIONS(schedule.step(), "OneCycleLR", "total_steps is 20");
    CHECK(sgd.lr() == schedule.last_lr());
  }
  SUBCASE("Adam, three phases, linear annealing, epochs x steps_per_epoch") {
    Model model({0.001});
    Adam<double> adam(model.groups());
    OneCycleLR schedule(adam, {.max_lr = 0.01,
                               .epochs = 3,
                               .steps_per_epoch = 7,
                               .pct_start = 0.25,
                               .anneal_strategy = Anneal::linear,
                               .base_momentum = 0.8,
                               .max_momentum = 0.9,
                               .div_factor = 10,
                               .final_div_factor = 100,
                               .three_phase = true});
    CHECK(schedule.total_steps() == 21);
    check_sequence("onecycle_adam", adam, schedule, true);
    CHECK(adam.options().beta2 == 0.999);
  }
  SUBCASE("no momentum cycling, pct_start 0") {
    Model model({0.1});
    SGD<double> sgd(model.groups(), {.momentum = 0.5});
    OneCycleLR schedule(
        sgd, {.max_lr = 1.0, .total_steps = 9, .pct_start = 0.0, .cycle_momentum = false});
    check_sequence("onecycle_fixed", sgd, schedule, true);
  }
  SUBCASE("AdamW's beta1 and RMSprop's momentum are what it cycles") {
    Model model({0.1});
    AdamW<double> adamw(model.groups());
    OneCycleLR a(adamw, {.max_lr = 1.0, .total_steps = 10});
    CHECK(adamw.options().beta1 == 0.95);
    RMSprop<double> rmsprop(model.groups());
    OneCycleLR b(rmsprop, {.max_lr = 1.0, .total_steps = 10});
    CHECK(rmsprop.options().momentum == 0.95);
  }
}

TEST_CASE("ReduceLROnPlateau matches torch") {
  SUBCASE("min, relative threshold, cooldown, min_lr, two groups") {
    Model model({0.1, 0.02});
    SGD<double> sgd(model.groups());
    ReduceLROnPlateau schedule(sgd, {.factor = 0.5, .patience = 2, .cooldown = 1, .min_lr = 0.01});
    const Eigen::MatrixXd& metrics = data().matrix("plateau.metrics");
    check_sequence("plateau", sgd, schedule, [&](Eigen::Index k) { schedule.step(metrics(k, 0)); });
  }
  SUBCASE("max, absolute threshold") {
    Model model({0.1});
    SGD<double> sgd(model.groups());
    ReduceLROnPlateau schedule(sgd, {.mode = PlateauMode::max,
                                     .patience = 1,
                                     .threshold = 0.02,
                                     .threshold_mode = ThresholdMode::abs});
    const Eigen::MatrixXd& metrics = data().matrix("plateau_max_abs.metrics");
    check_sequence("plateau_max_abs", sgd, schedule,
                   [&](Eigen::Index k) { schedule.step(metrics(k, 0)); });
  }
  SUBCASE("the constructor changes nothing") {
    Model model({0.1});
    SGD<double> sgd(model.groups());
    ReduceLROnPlateau schedule(sgd);
    CHECK(sgd.lr() == 0.1);
    CHECK(schedule.last_lr() == 0.1);
    CHECK(schedule.options().patience == 10);
    CHECK(schedule.options().eps == 1e-8);
  }
}

TEST_CASE("Schedulers carry on from a learning rate set by hand, as PyTorch's chainable forms") {
  Matrix<double> value = Matrix<double>::Zero(1, 1), grad = value;
  SGD<double> sgd({Parameter<double>("p", value, grad)}, {.lr = 1.0});
  ExponentialLR schedule(sgd, {.gamma = 0.5});
  CHECK(sgd.lr() == 1.0);  // the constructor's step leaves e = 0 as it is
  schedule.step();
  CHECK(sgd.lr() == 0.5);
  sgd.set_lr(0.25);
  schedule.step();
  CHECK(sgd.lr() == 0.125);
  CHECK(schedule.last_lr() == 0.125);
  CHECK(schedule.last_epoch() == 2);
}

TEST_CASE("Schedulers reject options PyTorch would fail on, changing nothing") {
  Matrix<double> value = Matrix<double>::Zero(1, 1), grad = value;
  SGD<double> sgd({Parameter<double>("p", value, grad)}, {.lr = 0.1, .momentum = 0.9});
  CHECK_ERROR_MENTIONS(StepLR(sgd, {}), "StepLR", "step_size", "0");
  CHECK_ERROR_MENTIONS(ExponentialLR(sgd, {}), "ExponentialLR", "gamma");
  CHECK_ERROR_MENTIONS(CosineAnnealingLR(sgd, {}), "CosineAnnealingLR", "t_max");
  CHECK_ERROR_MENTIONS(LinearLR(sgd, {.start_factor = 0.0}), "LinearLR", "start_factor");
  CHECK_ERROR_MENTIONS(OneCycleLR(sgd, {.total_steps = 10}), "OneCycleLR", "max_lr");
  CHECK_ERROR_MENTIONS(OneCycleLR(sgd, {.max_lr = 1.0}), "OneCycleLR", "total_steps");
  CHECK_ERROR_MENTIONS(OneCycleLR(sgd, {.max_lr = 1.0, .total_steps = 10, .pct_start = 1.5}),
                       "pct_start", "1.5");
  // pct_start * total_steps = 1 leaves the first phase empty: PyTorch divides 0 by 0.
  CHECK_ERROR_MENTIONS(OneCycleLR(sgd, {.max_lr = 1.0, .total_steps = 10, .pct_start = 0.1}),
                       "OneCycleLR", "phase 1", "empty");
  CHECK_ERROR_MENTIONS(ReduceLROnPlateau(sgd, {.factor = 1.0}), "ReduceLROnPlateau", "factor");
  CHECK(sgd.lr() == 0.1);
  CHECK(sgd.options().momentum == 0.9);
}
