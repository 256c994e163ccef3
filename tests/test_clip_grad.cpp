// Gradient clipping (optim/clip_grad.hpp) against torch.nn.utils.clip_grad_norm_ and
// clip_grad_value_ (tests/reference/make_training.py writes training.txt).
#include <bnorm/layers/dense.hpp>
#include <bnorm/optim/clip_grad.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/reference.hpp"

#include <cmath>
#include <limits>
#include <string>

using namespace bnorm;

namespace {

const bnorm_test::ReferenceData& data() { return bnorm_test::reference_file("training.txt"); }

// The three reference gradients, on zero-valued parameters.
template <class T>
struct Gradients {
  Gradients() {
    for (int i = 0; i < 3; ++i) {
      grads[i] = data().matrix_as<T>("clip.grad." + std::to_string(i));
      values[i] = Matrix<T>::Zero(grads[i].rows(), grads[i].cols());
    }
  }
  std::vector<Parameter<T>> parameters() {
    std::vector<Parameter<T>> result;
    for (int i = 0; i < 3; ++i) result.emplace_back("p" + std::to_string(i), values[i], grads[i]);
    return result;
  }
  Matrix<T> values[3], grads[3];
};

double relative_error(double actual, double expected) {
  return std::abs(actual - expected) / std::abs(expected);
}

}  // namespace

TEST_CASE("clip_grad_norm matches torch for 2-, 1-, 3- and infinity norms, clipping or not") {
  const double infinity = std::numeric_limits<double>::infinity();
  const struct {
    const char* name;
    double max_norm, norm_type;
  } cases[] = {{"l2", 1.0, 2.0},
               {"l2_loose", 100.0, 2.0},
               {"l1", 2.0, 1.0},
               {"linf", 0.5, infinity},
               {"l3", 0.7, 3.0}};
  double worst = 0;
  for (const auto& c : cases) {
    CAPTURE(c.name);
    Gradients<double> gradients;
    auto parameters = gradients.parameters();
    const double norm = clip_grad_norm(parameters, c.max_norm, c.norm_type);
    const std::string prefix = std::string("clip.") + c.name;
    worst = std::max(worst, relative_error(norm, data().scalar(prefix + ".total_norm")));
    for (int i = 0; i < 3; ++i) {
      const Eigen::MatrixXd& expected = data().matrix(prefix + ".grad." + std::to_string(i));
      worst = std::max(worst, (gradients.grads[i] - expected).cwiseAbs().maxCoeff() /
                                  expected.cwiseAbs().maxCoeff());
    }
  }
  MESSAGE("clip_grad_norm: largest relative difference from PyTorch ", worst);
  CHECK(worst <= 1e-12);
}

TEST_CASE("clip_grad_norm: the clipped norm is max_norm, and a loose bound changes nothing") {
  Gradients<double> gradients;
  const Matrix<double> before = gradients.grads[0];
  const double norm = clip_grad_norm(gradients.parameters(), 100.0);  // a temporary vector
  CHECK(norm > 1.0);
  CHECK(gradients.grads[0] == before);
  CHECK(clip_grad_norm(gradients.parameters(), 1.0) == doctest::Approx(norm));
  CHECK(clip_grad_norm(gradients.parameters(), 1.0) == doctest::Approx(1.0).epsilon(1e-5));
  Gradients<float> single;
  CHECK(clip_grad_norm(single.parameters(), 1.0, 1.0) ==
        doctest::Approx(data().scalar("clip.l1.total_norm")));
  std::vector<Parameter<double>> none;
  CHECK(clip_grad_norm(none, 1.0) == 0.0);
}

TEST_CASE("clip_grad_value matches torch") {
  Gradients<double> gradients;
  clip_grad_value(gradients.parameters(), 0.3);
  for (int i = 0; i < 3; ++i)
    CHECK(gradients.grads[i] == data().matrix("clip.value.grad." + std::to_string(i)));
}

TEST_CASE("Clipping rejects a bad norm type or bound, changing nothing") {
  Gradients<double> gradients;
  const Matrix<double> before = gradients.grads[1];
  CHECK_ERROR_MENTIONS(clip_grad_norm(gradients.parameters(), 1.0, 0.0), "clip_grad_norm",
                       "norm_type", "0");
  CHECK_ERROR_MENTIONS(clip_grad_norm(gradients.parameters(), std::nan(""), 2.0), "clip_grad_norm",
                       "max_norm");
  CHECK_ERROR_MENTIONS(clip_grad_value(gradients.parameters(), -1.0), "clip_grad_value", "-1");
  CHECK(gradients.grads[1] == before);
}

TEST_CASE("Clipping leaves frozen parameters out, as PyTorch leaves out those without a gradient") {
  Dense<double> frozen(3, 2), trained(3, 2);
  frozen.weight_grad().setConstant(100.0);
  trained.weight_grad().setConstant(2.0);
  trained.bias_grad().setConstant(2.0);
  frozen.bias_grad().setConstant(100.0);
  std::vector<Parameter<double>> parameters = frozen.parameters();
  for (auto& parameter : parameters) parameter.set_trainable(false);
  for (auto& parameter : trained.parameters()) parameters.push_back(parameter);
  // Only the trained layer's 8 gradients of 2 count: norm sqrt(8 * 4).
  CHECK(clip_grad_norm(parameters, 1.0) == doctest::Approx(std::sqrt(32.0)).epsilon(1e-15));
  CHECK(frozen.weight_grad().isConstant(100.0));
  CHECK(trained.weight_grad().cwiseAbs().maxCoeff() < 1.0);
  clip_grad_value(parameters, 0.01);
  CHECK(frozen.bias_grad().isConstant(100.0));
  CHECK(trained.bias_grad().isConstant(0.01));
}
