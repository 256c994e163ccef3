// The one finite-difference gradient checker, shared by every layer's tests.
//
// For a layer f and a fixed random probe P, the scalar L(x, theta) = sum(P .* f(x, theta))
// has dL/dy = P, so backward(P) must return dL/dx and leave dL/dtheta in the parameter
// gradients. Each is compared with the central difference (L(v + h) - L(v - h)) / 2h, whose
// error is O(h^2) from truncation plus O(eps / h) from rounding: about 1e-10 in double
// with h = 1e-5, far below the tolerance.
#pragma once

#include <bnorm/core/generator.hpp>
#include <bnorm/core/layer.hpp>
#include <bnorm/core/types.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>
#include <string>

namespace bnorm_test {

using bnorm::Index;
using bnorm::Matrix;

struct GradientCheck {
  double max_error = 0.0;  // max over entries of |analytic - numeric| / (1 + |numeric|)
  std::string worst;       // where max_error was seen
  Index entries_checked = 0;
};

struct GradientCheckOptions {
  double step = 1e-5;
  bnorm::Mode mode = bnorm::Mode::train;
  std::uint64_t seed = 7;
  // Called before every forward: lets a stochastic layer (Dropout) replay the same mask.
  std::function<void()> before_forward = [] {};
};

// Keeps the worst relative error seen so far, and where it was. (In bnorm_test itself, not in
// a nested `detail`: a test with `using namespace bnorm; using namespace bnorm_test;` would
// find two namespaces of that name.)
inline void record_gradient_error(GradientCheck& check, double analytic, double numeric,
                                  const std::string& where, Index index) {
  const double error = std::abs(analytic - numeric) / (1.0 + std::abs(numeric));
  ++check.entries_checked;
  if (error > check.max_error || !std::isfinite(error)) {
    check.max_error = std::isfinite(error) ? error : INFINITY;
    std::ostringstream text;
    text << where << "[" << index << "]: analytic " << analytic << ", numeric " << numeric;
    check.worst = text.str();
  }
}

template <class L>
GradientCheck check_gradients(L& layer, const Matrix<double>& x, GradientCheckOptions options = {}) {
  bnorm::Generator generator(options.seed);
  options.before_forward();
  const Matrix<double> y = layer.forward(x, options.mode);
  Matrix<double> probe(y.rows(), y.cols());
  for (Index i = 0; i < probe.size(); ++i) probe(i) = generator.normal();

  auto loss_at = [&](const Matrix<double>& input) {
    options.before_forward();
    return layer.forward(input, options.mode).cwiseProduct(probe).sum();
  };

  // Analytic gradients, from one forward at the unperturbed point.
  options.before_forward();
  layer.forward(x, options.mode);
  const Matrix<double> input_grad = layer.backward(probe);
  std::vector<Matrix<double>> parameter_grads;
  if constexpr (bnorm::HasParameters<L, double>)
    for (auto& parameter : layer.parameters()) parameter_grads.emplace_back(parameter.grad());

  GradientCheck check;
  Matrix<double> perturbed = x;
  for (Index i = 0; i < x.size(); ++i) {
    perturbed(i) = x(i) + options.step;
    const double plus = loss_at(perturbed);
    perturbed(i) = x(i) - options.step;
    const double minus = loss_at(perturbed);
    perturbed(i) = x(i);
    record_gradient_error(check, input_grad(i), (plus - minus) / (2 * options.step), "input", i);
  }
  if constexpr (bnorm::HasParameters<L, double>) {
    auto parameters = layer.parameters();
    for (std::size_t p = 0; p < parameters.size(); ++p) {
      auto& value = parameters[p].value();
      for (Index i = 0; i < value.size(); ++i) {
        const double original = value(i);
        value(i) = original + options.step;
        const double plus = loss_at(x);
        value(i) = original - options.step;
        const double minus = loss_at(x);
        value(i) = original;
        record_gradient_error(check, parameter_grads[p](i), (plus - minus) / (2 * options.step),
                              parameters[p].name(), i);
      }
    }
  }
  return check;
}

// A features x batch matrix of standard normal draws, shifted away from 0 by at least
// `margin` so that kinks (ReLU at 0) are never within a finite-difference step.
inline Matrix<double> random_input(Index features, Index batch, std::uint64_t seed,
                                   double margin = 0.0) {
  bnorm::Generator generator(seed);
  Matrix<double> x(features, batch);
  for (Index i = 0; i < x.size(); ++i) {
    double value = generator.normal();
    if (std::abs(value) < margin) value = value < 0 ? value - margin : value + margin;
    x(i) = value;
  }
  return x;
}

}  // namespace bnorm_test
