// Weight initializers for Dense layers.
#pragma once

#include "../core/error.hpp"
#include "../core/generator.hpp"
#include "../core/types.hpp"

#include <cmath>

namespace bnorm {

class Init {
 public:
  enum class Kind { pytorch_default, he, xavier, gaussian };

  // PyTorch's nn.Linear: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (its
  // kaiming_uniform_ with a = sqrt(5) reduces to this bound).
  static Init pytorch_default() { return Init(Kind::pytorch_default, 0.0); }
  // He et al. 2015 for ReLU: weight ~ N(0, 2 / fan_in), bias 0.
  static Init he() { return Init(Kind::he, 0.0); }
  // Glorot & Bengio 2010: weight ~ U(-sqrt(6 / (fan_in + fan_out)), +...), bias 0.
  static Init xavier() { return Init(Kind::xavier, 0.0); }
  // weight ~ N(0, sigma^2), bias 0: the N(0, 0.01^2) of Ioffe & Szegedy's Figure 1.
  static Init gaussian(double sigma) {
    detail::require(std::isfinite(sigma) && sigma >= 0.0,
                    "Init::gaussian: sigma must be finite and >= 0, got ", sigma);
    return Init(Kind::gaussian, sigma);
  }

  Kind kind() const { return kind_; }
  double sigma() const { return sigma_; }

  // Fills weight (fan_out x fan_in) and, if it is non-empty, bias, drawing row-major
  // (PyTorch's element order) so that the draw order does not depend on the storage.
  template <class T>
  void apply(Matrix<T>& weight, Vector<T>& bias, Generator& generator) const {
    const Index fan_out = weight.rows(), fan_in = weight.cols();
    const double uniform_bound = kind_ == Kind::xavier
                                     ? std::sqrt(6.0 / static_cast<double>(fan_in + fan_out))
                                     : 1.0 / std::sqrt(static_cast<double>(fan_in));
    const double stddev = kind_ == Kind::he ? std::sqrt(2.0 / static_cast<double>(fan_in)) : sigma_;
    for (Index row = 0; row < fan_out; ++row)
      for (Index col = 0; col < fan_in; ++col)
        weight(row, col) = static_cast<T>(
            kind_ == Kind::pytorch_default || kind_ == Kind::xavier
                ? generator.uniform(-uniform_bound, uniform_bound)
                : generator.normal(0.0, stddev));
    for (Index i = 0; i < bias.size(); ++i)
      bias(i) = kind_ == Kind::pytorch_default
                    ? static_cast<T>(generator.uniform(-uniform_bound, uniform_bound))
                    : T(0);
  }

 private:
  Init(Kind kind, double sigma) : kind_(kind), sigma_(sigma) {}
  Kind kind_;
  double sigma_;
};

}  // namespace bnorm
