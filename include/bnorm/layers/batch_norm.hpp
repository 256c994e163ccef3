// Batch normalization (Ioffe & Szegedy 2015), with the semantics of PyTorch's BatchNorm1d.
// Implements the layer contract of core/layer.hpp.
//
// Training, per feature over the m examples of the batch:
//   mean = sum(x) / m,  var = sum((x - mean)^2) / m       (biased, used to normalize)
//   xhat = (x - mean) / sqrt(var + eps),  y = gamma * xhat + beta
//   running_mean = (1 - momentum) * running_mean + momentum * mean
//   running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1)  (unbiased)
// Eval: y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta; nothing changes.
#pragma once

#include "../core/error.hpp"
#include "../core/parameter.hpp"
#include "../core/types.hpp"

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

namespace bnorm {

template <class T>
struct BatchNormOptions {
  T momentum = T(0.1);  // weight of the newest batch in the running statistics
  T eps = T(1e-5);      // added to the variance inside the square root
};

template <class T>
class BatchNorm {
 public:
  explicit BatchNorm(Index features, BatchNormOptions<T> options = {}) : options_(options) {
    detail::check_positive_size("BatchNorm", "features", features);
    detail::require(std::isfinite(static_cast<double>(options.momentum)) &&
                        options.momentum >= T(0) && options.momentum <= T(1),
                    "BatchNorm: momentum must be in [0, 1], got ", options.momentum);
    detail::require(std::isfinite(static_cast<double>(options.eps)) && options.eps > T(0),
                    "BatchNorm: eps must be finite and > 0, got ", options.eps);
    gamma_ = Vector<T>::Ones(features);
    beta_ = Vector<T>::Zero(features);
    gamma_grad_ = Vector<T>::Zero(features);
    beta_grad_ = Vector<T>::Zero(features);
    running_mean_ = Vector<T>::Zero(features);
    running_var_ = Vector<T>::Ones(features);
    mean_.resize(features);
    inv_std_.resize(features);
    scale_.resize(features);
    sum_a_.resize(features);
    sum_b_.resize(features);
  }

  const Matrix<T>& forward(const Eigen::Ref<const Matrix<T>>& x, Mode mode) {
    detail::check_shape(*this, "input", features(), -1, x.rows(), x.cols());
    if (mode == Mode::train && x.cols() < 2)
      detail::fail(name(), ": a training batch of one example has no variance to normalize "
                           "with (PyTorch raises the same error); use a batch of at least 2, "
                           "or Mode::eval to use the running statistics");
    output_.resize(x.rows(), x.cols());
    has_training_forward_ = mode == Mode::train;
    if (mode == Mode::train)
      forward_train(x);
    else
      forward_eval(x);
    return output_;
  }

  // With g = dLoss/dy: dbeta = sum(g), dgamma = sum(g * xhat), and, since mean and var
  // depend on every x of the batch,
  //   dx = gamma / sqrt(var + eps) * (g - mean(g) - xhat * mean(g * xhat)).
  const Matrix<T>& backward(const Eigen::Ref<const Matrix<T>>& dy) {
    if (!has_training_forward_)
      detail::fail(name(), ": backward needs a preceding forward in Mode::train");
    detail::check_shape(*this, "output gradient", features(), normalized_.cols(), dy.rows(),
                        dy.cols());
    const Index batch = dy.cols();
    sum_a_.setZero();  // sum(g)
    sum_b_.setZero();  // sum(g * xhat)
    for (Index j = 0; j < batch; ++j) {
      sum_a_ += dy.col(j);
      sum_b_.array() += dy.col(j).array() * normalized_.col(j).array();
    }
    beta_grad_ = sum_a_;
    gamma_grad_ = sum_b_;
    const T inv_batch = T(1) / static_cast<T>(batch);
    scale_.array() = gamma_.array() * inv_std_.array();
    sum_a_ *= inv_batch;
    sum_b_ *= inv_batch;
    input_grad_.resize(dy.rows(), batch);
    for (Index j = 0; j < batch; ++j)
      input_grad_.col(j).array() =
          scale_.array() *
          (dy.col(j).array() - sum_a_.array() - normalized_.col(j).array() * sum_b_.array());
    return input_grad_;
  }

  std::vector<Parameter<T>> parameters() {
    std::vector<Parameter<T>> list;
    list.emplace_back("weight", gamma_, gamma_grad_);  // PyTorch's names for gamma, beta
    list.emplace_back("bias", beta_, beta_grad_);
    return list;
  }

  std::string name() const {
    std::ostringstream text;
    text << "BatchNorm(" << features() << ")";
    return text.str();
  }

  Index features() const { return gamma_.size(); }
  const BatchNormOptions<T>& options() const { return options_; }

  Vector<T>& gamma() { return gamma_; }
  const Vector<T>& gamma() const { return gamma_; }
  Vector<T>& beta() { return beta_; }
  const Vector<T>& beta() const { return beta_; }
  const Vector<T>& gamma_grad() const { return gamma_grad_; }
  Vector<T>& gamma_grad() { return gamma_grad_; }
  const Vector<T>& beta_grad() const { return beta_grad_; }
  Vector<T>& beta_grad() { return beta_grad_; }
  Vector<T>& running_mean() { return running_mean_; }
  const Vector<T>& running_mean() const { return running_mean_; }
  Vector<T>& running_var() { return running_var_; }
  const Vector<T>& running_var() const { return running_var_; }
  // Training batches seen, as PyTorch's num_batches_tracked.
  long long num_batches_tracked() const { return num_batches_tracked_; }
  void set_num_batches_tracked(long long count) { num_batches_tracked_ = count; }

 private:
  // Two passes, both shifted so that a large offset cannot cancel the spread: the mean is
  // accumulated relative to the first example, and the variance uses the corrected
  // two-pass formula sum(d^2) - sum(d)^2 / m with d = x - mean (Chan, Golub & LeVeque),
  // whose second term removes the rounding error left in the mean. Never E[x^2] - E[x]^2.
  void forward_train(const Eigen::Ref<const Matrix<T>>& x) {
    const Index batch = x.cols();
    const T inv_batch = T(1) / static_cast<T>(batch);
    sum_a_.setZero();
    for (Index j = 1; j < batch; ++j) sum_a_ += x.col(j) - x.col(0);
    mean_ = x.col(0) + sum_a_ * inv_batch;
    sum_a_.setZero();  // sum(d)
    sum_b_.setZero();  // sum(d^2)
    for (Index j = 0; j < batch; ++j) {
      sum_a_ += x.col(j) - mean_;
      sum_b_.array() += (x.col(j) - mean_).array().square();
    }
    // sum_b_ becomes the biased variance.
    sum_b_ = ((sum_b_.array() - sum_a_.array().square() * inv_batch) * inv_batch).max(T(0)).matrix();
    inv_std_.array() = (sum_b_.array() + options_.eps).sqrt().inverse();
    normalized_.resize(x.rows(), batch);
    for (Index j = 0; j < batch; ++j) {
      normalized_.col(j).array() = (x.col(j) - mean_).array() * inv_std_.array();
      output_.col(j).array() = normalized_.col(j).array() * gamma_.array() + beta_.array();
    }
    const T momentum = options_.momentum;
    const T unbiased = static_cast<T>(batch) / static_cast<T>(batch - 1);
    running_mean_ = (T(1) - momentum) * running_mean_ + momentum * mean_;
    running_var_ = (T(1) - momentum) * running_var_ + (momentum * unbiased) * sum_b_;
    ++num_batches_tracked_;
  }

  void forward_eval(const Eigen::Ref<const Matrix<T>>& x) {
    scale_.array() = gamma_.array() * (running_var_.array() + options_.eps).sqrt().inverse();
    for (Index j = 0; j < x.cols(); ++j)
      output_.col(j).array() =
          (x.col(j) - running_mean_).array() * scale_.array() + beta_.array();
  }

  BatchNormOptions<T> options_;
  Vector<T> gamma_, beta_, gamma_grad_, beta_grad_, running_mean_, running_var_;
  long long num_batches_tracked_ = 0;
  // Saved by a training forward for backward.
  Vector<T> mean_, inv_std_;
  Matrix<T> normalized_;
  // Scratch, sized at construction.
  Vector<T> scale_, sum_a_, sum_b_;
  Matrix<T> output_, input_grad_;
  bool has_training_forward_ = false;
};

}  // namespace bnorm
