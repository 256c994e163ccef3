// Batch normalization (Ioffe & Szegedy 2015), with the semantics of PyTorch's BatchNorm1d.
// Implements the layer contract of core/layer.hpp.
//
// Training, per feature over the m examples of the batch:
//   mean = sum(x) / m,  var = sum((x - mean)^2) / m       (biased, used to normalize)
//   xhat = (x - mean) / sqrt(var + eps),  y = gamma * xhat + beta
//   running_mean = (1 - momentum) * running_mean + momentum * mean
//   running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1)  (unbiased)
// Eval: y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta; nothing changes.
//
// Frozen statistics (set_frozen_statistics, PyTorch's bn.eval() inside a training model):
// training forwards normalize with the running statistics as eval does and leave them
// unchanged, while gamma and beta still learn; backward then uses dx = gamma * g /
// sqrt(running_var + eps).
//
// The passes over the batch run on the dispatched kernels of core/kernels.hpp: a training
// forward reads x twice (moments, then normalize) and writes xhat and y once; backward reads
// dy and xhat twice (sums, then dx) and writes dx once. Output matrices of 16 MiB or more
// (y, xhat, dx) bypass the caches (batch_norm_kernels.hpp's stream_output), so they cost
// one pass each instead of two. Why not fewer passes: bench/bnpasses-2026-12-02/README.md.
//
// Beyond PyTorch, selected by BatchNormOptions: batch renormalization, ghost batches,
// a cumulative running average, and a policy for training batches too small to normalize.
// A StatisticsSync (layers/statistics_sync.hpp) makes the batch statistics those of a batch
// spread over several processes (SyncBatchNorm).
#pragma once

#include "../core/buffer.hpp"
#include "../core/error.hpp"
#include "../core/inference_scratch.hpp"
#include "../core/onnx_node.hpp"
#include "../core/parameter.hpp"
#include "../core/threads.hpp"
#include "../core/types.hpp"
#include "batch_norm_kernels.hpp"
#include "moments.hpp"
#include "saved_forward.hpp"
#include "statistics_sync.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace bnorm {

// How the running statistics average the batch statistics.
enum class RunningAverage {
  exponential,  // running = (1 - momentum) * running + momentum * batch   (PyTorch default)
  cumulative,   // the plain mean of every batch so far (PyTorch's momentum=None)
};

// What a training forward does with a batch (or ghost batch) of a single example, which has
// no variance to normalize with.
enum class SmallBatch {
  error,                   // throw bnorm::Error (PyTorch's behaviour)
  use_running_statistics,  // normalize with the running statistics, as in eval, and learn
                           // gamma and beta; the running statistics do not change
};

template <class T>
struct BatchNormOptions {
  // Hyperparameters are doubles, as PyTorch's, so {.momentum = 0.1, .eps = 1e-5} compiles
  // for float layers too; they are rounded to T where they meet the data.
  double momentum = 0.1;  // weight of the newest batch in the running statistics
  double eps = 1e-5;      // added to the variance inside the square root
  bool affine = true;   // learn gamma and beta; false fixes them at 1 and 0
  // false: no running statistics; eval mode normalizes with the batch statistics too.
  bool track_running_stats = true;
  RunningAverage running_average = RunningAverage::exponential;
  // Ghost batch normalization (Hoffer et al. 2017): statistics over consecutive sub-batches
  // of this many examples (the last one takes any remainder); 0 uses the whole batch.
  Index virtual_batch_size = 0;
  // Batch renormalization (Ioffe 2017); limits settable per step with set_renormalization.
  bool renormalize = false;
  double rmax = 1.0;
  double dmax = 0.0;
  SmallBatch small_batch = SmallBatch::error;
};

template <class T>
class BatchNorm {
 public:
  // Its kind (core/layer_ref.hpp): tools find a subclass as a BatchNorm.
  using layer_kind = BatchNorm;
  explicit BatchNorm(Index features, BatchNormOptions<T> options = {}) : options_(options) {
    detail::check_positive_size("BatchNorm", "features", features);
    detail::require(options.momentum >= 0.0 && options.momentum <= 1.0,
                    "BatchNorm: momentum must be in [0, 1], got ", options.momentum);
    detail::require(std::isfinite(options.eps) && options.eps > 0.0,
                    "BatchNorm: eps must be finite and > 0, got ", options.eps);
    detail::require(options.virtual_batch_size == 0 || options.virtual_batch_size >= 2,
                    "BatchNorm: virtual_batch_size must be 0 (off) or at least 2, got ",
                    options.virtual_batch_size);
    detail::require(!options.renormalize || options.track_running_stats,
                    "BatchNorm: renormalization corrects towards the running statistics, so it "
                    "needs track_running_stats");
    set_renormalization(options.rmax, options.dmax);
    gamma_ = Vector<T>::Ones(features);
    beta_ = Vector<T>::Zero(features);
    gamma_grad_ = Vector<T>::Zero(features);
    beta_grad_ = Vector<T>::Zero(features);
    if (options.track_running_stats) {
      running_mean_ = Vector<T>::Zero(features);
      running_var_ = Vector<T>::Ones(features);
    }
    moments_.resize(features);
    for (Vector<T>* scratch : {&batch_var_, &shift_, &eval_scale_, &eval_shift_, &eval_inv_std_,
                               &sum_dy_, &sum_dy_xhat_, &renormalized_gamma_grad_})
      scratch->resize(features);
  }

  const Matrix<T>& forward(const Eigen::Ref<const Matrix<T>>& x, Mode mode) {
    detail::check_shape(*this, "input", features(), -1, x.rows(), x.cols());
    const bool train = mode == Mode::train;
    const bool batch_statistics = !tracking() || (train && !freeze_statistics_);
    // A synchronized batch is judged by its global size, known after the merge.
    const bool too_small = batch_statistics && x.cols() < 2 && !(sync_ && train);
    if (too_small && (!train || !tracking() || options_.small_batch == SmallBatch::error))
      detail::fail(name(), ": a ", train ? "training " : "",
                   "batch of one example has no variance to normalize with (PyTorch raises the "
                   "same error); use a batch of at least 2",
                   tracking() ? ", Mode::eval to use the running statistics, or "
                                "SmallBatch::use_running_statistics"
                              : "");
    output_.resize(x.rows(), x.cols());
    // An eval forward that saves nothing leaves what a pending backward needs untouched.
    if (!train && !keep_for_backward_) {
      forward_without_saving(x);
      return output_;
    }
    saved_.statistics = detail::SavedStatistics::none;  // until this forward succeeds
    saved_.statistics = batch_statistics && !too_small ? forward_with_batch_statistics(x, mode)
                                                       : forward_with_running_statistics(x);
    saved_.mode = mode;
    return output_;
  }

  // The const inference path of core/layer.hpp: the eval forward's kernel, on the caller's
  // output and scratch vectors.
  void infer(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y,
             InferenceScratch<T>& scratch) const {
    detail::check_shape(*this, "input", features(), -1, x.rows(), x.cols());
    if (!tracking() && x.cols() < 2)
      detail::fail(name(), ": a batch of one example has no variance to normalize with "
                           "(PyTorch raises the same error); use a batch of at least 2");
    y.resize(x.rows(), x.cols());
    if (tracking()) {
      eval_with_running_statistics(x, y, scratch.vector(), scratch.vector());
    } else {
      detail::Moments<T, Vector<T>&> moments{scratch.vector(), scratch.vector()};
      eval_with_batch_statistics(x, y, moments, scratch.vector());
    }
  }

  // With g = dLoss/dy, for each group of examples normalized together (the batch, or a
  // ghost batch): dbeta = sum(g), dgamma = sum(g * xhat), and, since the mean and the
  // variance depend on every x of the group,
  //   dx = gamma * r / sqrt(var + eps) * (g - mean(g) - xhat_B * mean(g * xhat_B))
  // where xhat_B is normalized with the batch statistics and xhat = r * xhat_B + d
  // (r = 1, d = 0 without renormalization; both are constants, as the paper prescribes).
  // With frozen (running) statistics, dx = gamma / sqrt(running_var + eps) * g.
  const Matrix<T>& backward(const Eigen::Ref<const Matrix<T>>& dy) {
    if (!saved_.saved())
      detail::fail(name(), ": backward needs a preceding forward in Mode::train (or in "
                           "Mode::eval with set_keep_for_backward(true))");
    detail::check_shape(*this, "output gradient", features(), saved_.normalized.cols(),
                        dy.rows(), dy.cols());
    input_grad_.resize(dy.rows(), dy.cols());
    if (!accumulate_gradients_) {  // the groups' sums are added below
      if (beta_trainable_) beta_grad_.setZero();
      if (gamma_trainable_) gamma_grad_.setZero();
    }
    if (saved_.statistics == detail::SavedStatistics::running) {
      // One pass: the two sums and dx = dx_scale * g.
      detail::parallel_ranges(features(), dy.size(), [&](Index row, Index rows) {
        detail::kernels::gradient_sums<T>(dy.data() + row, dy.outerStride(),
                                          saved_.normalized.data() + row,
                                          saved_.normalized.rows(), rows, dy.cols(),
                                          sum_dy_.data() + row, sum_dy_xhat_.data() + row,
                                          saved_.dx_scale.data() + row,
                                          input_grad_.data() + row, input_grad_.rows());
      });
      add_parameter_gradients(sum_dy_xhat_, sum_dy_);
    } else {
      for (Index g = 0; g < group_count(); ++g) backward_group(dy, g);
    }
    return input_grad_;
  }

  std::vector<Parameter<T>> parameters() {
    std::vector<Parameter<T>> list;
    if (!options_.affine) return list;
    // PyTorch's names for gamma and beta.
    list.emplace_back("weight", gamma_, gamma_grad_, &gamma_trainable_);
    list.emplace_back("bias", beta_, beta_grad_, &beta_trainable_);
    return list;
  }

  // PyTorch's buffers, present only with track_running_stats.
  std::vector<Buffer<T>> buffers() {
    std::vector<Buffer<T>> list;
    if (!tracking()) return list;
    list.emplace_back("running_mean", running_mean_);
    list.emplace_back("running_var", running_var_);
    list.emplace_back("num_batches_tracked", num_batches_tracked_);
    return list;
  }

  std::string name() const {
    std::ostringstream text;
    text << "BatchNorm(" << features() << ")";
    return text.str();
  }

  // ONNX (core/onnx_node.hpp): BatchNormalization (training_mode 0), epsilon = float(eps),
  // momentum = float(1 - momentum) (ONNX weighs the old value), the running statistics as
  // inputs. Lost: num_batches_tracked and the options beyond eps and momentum
  // (renormalization, ghost batches, the cumulative average: all alike in eval mode).
  std::vector<OnnxNode> onnx_nodes() const {
    if (!tracking())
      return {{.refusal = "keeps no running statistics, so it normalizes with the batch's in eval "
                          "mode too, which ONNX's BatchNormalization cannot"}};
    const auto values = [&](const char* suffix, const Vector<T>& vector) {
      return OnnxInitializer{suffix, {features()}, {vector.data(), vector.data() + vector.size()}};
    };
    return {{.op = "BatchNormalization",
             .inputs = {values(".weight", gamma_), values(".bias", beta_),
                        values(".running_mean", running_mean_), values(".running_var", running_var_)},
             .attributes = {{"epsilon", OnnxAttribute::Type::real, options_.eps},
                            {"momentum", OnnxAttribute::Type::real, 1.0 - options_.momentum}},
             .in_features = features(),
             .out_features = features()}};
  }

  Index features() const { return gamma_.size(); }
  const BatchNormOptions<T>& options() const { return options_; }
  bool tracking() const { return options_.track_running_stats; }
  T eps() const { return static_cast<T>(options_.eps); }

  // Renormalization limits, for schedules (the paper raises rmax from 1 to 3 and dmax from
  // 0 to 5 during training). rmax >= 1, dmax >= 0.
  void set_renormalization(double rmax, double dmax) {
    detail::require(std::isfinite(rmax) && rmax >= 1.0, name(),
                    ": rmax must be finite and >= 1, got ", rmax);
    detail::require(std::isfinite(dmax) && dmax >= 0.0, name(),
                    ": dmax must be finite and >= 0, got ", dmax);
    options_.rmax = rmax;
    options_.dmax = dmax;
  }

  // Fine-tuning with frozen statistics (see the top of this file). Needs running statistics.
  void set_frozen_statistics(bool frozen) {
    detail::require(!frozen || tracking(), name(),
                    ": frozen statistics are the running statistics, so they need "
                    "track_running_stats");
    freeze_statistics_ = frozen;
  }
  bool frozen_statistics() const { return freeze_statistics_; }

  // The training settings of core/layer.hpp.
  void set_accumulate_gradients(bool accumulate) { accumulate_gradients_ = accumulate; }
  bool accumulates_gradients() const { return accumulate_gradients_; }
  void set_keep_for_backward(bool keep) { keep_for_backward_ = keep; }
  bool keeps_for_backward() const { return keep_for_backward_; }
  void zero_grad() {
    gamma_grad_.setZero();
    beta_grad_.setZero();
  }

  // Data-parallel training: in Mode::train, the batch statistics and the backward sums
  // are merged across processes through `sync` (nullptr: this process only), and a local
  // batch of one example is fine as long as the global batch has two. Not with ghost
  // batches.
  void set_statistics_sync(std::shared_ptr<StatisticsSync<T>> sync) {
    detail::require(!sync || options_.virtual_batch_size == 0, name(),
                    ": ghost batches are normalized locally; they cannot be synchronized");
    sync_ = std::move(sync);
  }
  const std::shared_ptr<StatisticsSync<T>>& statistics_sync() const { return sync_; }

  Vector<T>& gamma() { return gamma_; }
  const Vector<T>& gamma() const { return gamma_; }
  Vector<T>& beta() { return beta_; }
  const Vector<T>& beta() const { return beta_; }
  const Vector<T>& gamma_grad() const { return gamma_grad_; }
  Vector<T>& gamma_grad() { return gamma_grad_; }
  const Vector<T>& beta_grad() const { return beta_grad_; }
  Vector<T>& beta_grad() { return beta_grad_; }
  // Empty when track_running_stats is off.
  Vector<T>& running_mean() { return running_mean_; }
  const Vector<T>& running_mean() const { return running_mean_; }
  Vector<T>& running_var() { return running_var_; }
  const Vector<T>& running_var() const { return running_var_; }
  // Training batches seen, as PyTorch's num_batches_tracked.
  long long num_batches_tracked() const { return num_batches_tracked_; }
  void set_num_batches_tracked(long long count) { num_batches_tracked_ = count; }

 private:
  // Examples [first, first + count) are normalized together: the whole batch, or a ghost
  // batch. Ghost batches have virtual_batch_size examples; the last takes the remainder.
  Index group_count_for(Index batch) const {
    const Index size = options_.virtual_batch_size;
    return size == 0 || size >= batch ? 1 : batch / size;
  }
  Index group_count() const { return saved_.dx_scale.cols(); }
  std::pair<Index, Index> group_columns(Index group, Index batch, Index groups) const {
    if (groups == 1) return {0, batch};
    const Index first = group * options_.virtual_batch_size;
    return {first, group + 1 == groups ? batch - first : options_.virtual_batch_size};
  }

  // Renormalization corrects training batches only, towards the running statistics that
  // eval mode uses.
  bool renormalizes(Mode mode) const { return options_.renormalize && mode == Mode::train; }

  // Frozen parameters keep their gradients (core/parameter.hpp).
  void add_parameter_gradients(const Vector<T>& gamma_grad, const Vector<T>& beta_grad) {
    if (!options_.affine) return;  // fixed gamma and beta have no gradient
    if (gamma_trainable_) gamma_grad_ += gamma_grad;
    if (beta_trainable_) beta_grad_ += beta_grad;
  }

  // Eval mode without keep_for_backward: nothing saved, nothing changed. With running
  // statistics, the affine map; without, each group's own statistics, normalized as a
  // training forward does.
  void forward_without_saving(const Eigen::Ref<const Matrix<T>>& x) {
    if (tracking())
      eval_with_running_statistics(x, output_, eval_scale_, eval_shift_);
    else
      eval_with_batch_statistics(x, output_, moments_, eval_inv_std_);
  }

  // The eval kernels, shared by forward and infer: const, writing only their arguments.
  // y has x's shape; the vectors are scratch of any size.
  void eval_with_running_statistics(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y,
                                    Vector<T>& scale, Vector<T>& shift) const {
    scale.resize(features());
    shift.resize(features());
    detail::eval_affine_map(gamma_, beta_, running_mean_, running_var_, eps(), scale, shift);
    detail::apply_affine_map<T>(x, scale, shift, y);
  }
  template <class Storage>
  void eval_with_batch_statistics(const Eigen::Ref<const Matrix<T>>& x, Matrix<T>& y,
                                  detail::Moments<T, Storage>& moments,
                                  Vector<T>& inv_std) const {
    moments.resize(features());
    inv_std.resize(features());
    const Index groups = group_count_for(x.cols());
    for (Index g = 0; g < groups; ++g) {
      const auto columns = group_columns(g, x.cols(), groups);
      const Index first = columns.first, count = columns.second;
      detail::batch_moments(x, first, count, moments);
      inv_std.array() = (moments.m2.array() / static_cast<T>(count) + eps()).sqrt().inverse();
      // The training forward's kernel without saving xhat: the same y, bit for bit (in float
      // with ghost batches, not always: group_inv_std_ says why).
      detail::parallel_ranges(features(), features() * count, [&](Index row, Index rows) {
        detail::kernels::normalize<T>(x.data() + first * x.outerStride() + row,
                                      x.outerStride(), rows, count, moments.mean.data() + row,
                                      inv_std.data() + row, gamma_.data() + row,
                                      beta_.data() + row, nullptr, 0,
                                      y.data() + first * y.rows() + row, y.rows(),
                                      detail::stream_output<T>(y.size()));
      });
    }
  }

  // A training forward, or an eval forward kept for backward (no running statistics then,
  // so eval normalizes with the batch's): saves xhat_B and each group's dx_scale and count.
  detail::SavedStatistics forward_with_batch_statistics(const Eigen::Ref<const Matrix<T>>& x,
                                                        Mode mode) {
    const Index batch = x.cols(), groups = group_count_for(batch);
    const bool update = mode == Mode::train && tracking();
    // Only training batches are synchronized (as PyTorch's SyncBatchNorm): eval batches,
    // which processes may see in different numbers, never enter a collective call.
    const bool synchronized = sync_ && mode == Mode::train;
    const bool renormalized = renormalizes(mode);
    group_inv_std_.resize(features(), groups);
    group_scale_.resize(features(), groups);
    saved_.dx_scale.resize(features(), groups);
    saved_.normalized.resize(x.rows(), batch);
    saved_.counts.resize(groups);
    if (renormalized) {  // kept for dgamma (scale / gamma would fail for gamma = 0)
      saved_.renorm_r.resize(features(), groups);
      saved_.renorm_d.resize(features(), groups);
    }
    if (update) {  // running statistics average over the groups
      batch_mean_sum_.setZero(features());
      batch_var_sum_.setZero(features());
    }
    for (Index g = 0; g < groups; ++g) {
      // Plain variables, not a structured binding: the lambdas below capture them, which
      // clang 14 (the fuzzer's compiler) cannot do with bindings.
      const auto columns = group_columns(g, batch, groups);
      const Index first = columns.first, count = columns.second;
      detail::batch_moments(x, first, count, moments_);
      T total = static_cast<T>(count);
      if (synchronized) {
        total = sync_->merge_moments(total, moments_.mean, moments_.m2);
        if (total < T(2))  // the same total on every process: all of them throw
          detail::fail(name(), ": the synchronized training batch has ", total,
                       " example over all processes; normalizing needs at least 2");
      }
      saved_.counts(g) = total;
      batch_var_ = moments_.m2 / total;  // biased, used to normalize
      auto inv_std = group_inv_std_.col(g).array();
      inv_std = (batch_var_.array() + eps()).sqrt().inverse();
      // Renormalization: y = gamma * (r * xhat_B + d) + beta = scale * xhat_B + shift.
      auto scale = group_scale_.col(g).array();
      scale = gamma_.array();
      shift_ = beta_;
      if (renormalized) {
        const auto running_std = (running_var_.array() + eps()).sqrt();
        const T rmax = static_cast<T>(options_.rmax), dmax = static_cast<T>(options_.dmax);
        const auto r = ((batch_var_.array() + eps()).sqrt() / running_std)
                           .cwiseMax(T(1) / rmax).cwiseMin(rmax);
        const auto d = ((moments_.mean - running_mean_).array() / running_std)
                           .cwiseMax(-dmax).cwiseMin(dmax);
        shift_.array() += gamma_.array() * d;
        scale *= r;
        saved_.renorm_r.col(g) = r.matrix();
        saved_.renorm_d.col(g) = d.matrix();
      }
      saved_.dx_scale.col(g) = (scale * inv_std).matrix();
      // One pass: xhat_B saved for backward, y = scale * xhat_B + shift.
      detail::parallel_ranges(features(), features() * count, [&](Index row, Index rows) {
        const Index column = first * x.rows() + row;  // normalized and output_: x's rows
        detail::kernels::normalize<T>(
            x.data() + first * x.outerStride() + row, x.outerStride(), rows, count,
            moments_.mean.data() + row, group_inv_std_.col(g).data() + row,
            group_scale_.col(g).data() + row, shift_.data() + row,
            saved_.normalized.data() + column, saved_.normalized.rows(), output_.data() + column,
            output_.rows(), detail::stream_output<T>(output_.size()));
      });
      if (update) {
        batch_mean_sum_ += moments_.mean * (static_cast<T>(count) / static_cast<T>(batch));
        batch_var_sum_ += batch_var_ * (total / (total - T(1)) * static_cast<T>(count) /
                                        static_cast<T>(batch));
      }
    }
    if (update) {
      ++num_batches_tracked_;
      update_running_statistics(batch_mean_sum_, batch_var_sum_);
    }
    return synchronized ? detail::SavedStatistics::synchronized_input
                        : detail::SavedStatistics::input;
  }

  void update_running_statistics(const Vector<T>& mean, const Vector<T>& unbiased_var) {
    const double factor = options_.running_average == RunningAverage::cumulative
                              ? 1.0 / static_cast<double>(num_batches_tracked_)
                              : options_.momentum;
    const T keep = static_cast<T>(1.0 - factor), take = static_cast<T>(factor);
    running_mean_ = keep * running_mean_ + take * mean;
    running_var_ = keep * running_var_ + take * unbiased_var;
  }

  // Normalizes with the running statistics and saves xhat for backward: frozen statistics,
  // a training batch too small for statistics under SmallBatch::use_running_statistics, or
  // an eval forward kept for backward.
  detail::SavedStatistics forward_with_running_statistics(const Eigen::Ref<const Matrix<T>>& x) {
    group_inv_std_.resize(features(), 1);
    group_inv_std_.col(0).array() = (running_var_.array() + eps()).sqrt().inverse();
    saved_.dx_scale.resize(features(), 1);
    saved_.dx_scale.col(0).array() = gamma_.array() * group_inv_std_.col(0).array();
    saved_.normalized.resize(x.rows(), x.cols());  // for dgamma
    detail::parallel_ranges(features(), x.size(), [&](Index row, Index rows) {
      detail::kernels::normalize<T>(x.data() + row, x.outerStride(), rows, x.cols(),
                                    running_mean_.data() + row, group_inv_std_.data() + row,
                                    gamma_.data() + row, beta_.data() + row,
                                    saved_.normalized.data() + row, saved_.normalized.rows(),
                                    output_.data() + row, output_.rows(),
                                    detail::stream_output<T>(output_.size()));
    });
    return detail::SavedStatistics::running;
  }

  void backward_group(const Eigen::Ref<const Matrix<T>>& dy, Index g) {
    const auto columns = group_columns(g, dy.cols(), group_count());
    const Index first = columns.first, count = columns.second;
    const Matrix<T>& normalized = saved_.normalized;
    // sum(g) and sum(g * xhat_B) in one pass.
    detail::parallel_ranges(features(), features() * count, [&](Index row, Index rows) {
      detail::kernels::gradient_sums<T>(dy.data() + first * dy.outerStride() + row,
                                        dy.outerStride(),
                                        normalized.data() + first * normalized.rows() + row,
                                        normalized.rows(), rows, count, sum_dy_.data() + row,
                                        sum_dy_xhat_.data() + row);
    });
    if (renormalizes(saved_.mode)) {  // dgamma = sum(g * (r xhat_B + d))
      renormalized_gamma_grad_.array() = saved_.renorm_r.col(g).array() * sum_dy_xhat_.array() +
                                         saved_.renorm_d.col(g).array() * sum_dy_.array();
      add_parameter_gradients(renormalized_gamma_grad_, sum_dy_);
    } else {
      add_parameter_gradients(sum_dy_xhat_, sum_dy_);
    }
    if (saved_.statistics == detail::SavedStatistics::synchronized_input)
      sync_->sum(sum_dy_, sum_dy_xhat_);
    // From here on the two sums are means over the (global) group.
    const T inv_total = T(1) / saved_.counts(g);
    sum_dy_ *= inv_total;
    sum_dy_xhat_ *= inv_total;
    detail::parallel_ranges(features(), features() * count, [&](Index row, Index rows) {
      const Index column = first * dy.rows() + row;  // normalized and input_grad_: dy's rows
      detail::kernels::normalized_input_gradient<T>(
          dy.data() + first * dy.outerStride() + row, dy.outerStride(),
          normalized.data() + column, normalized.rows(), rows, count,
          saved_.dx_scale.col(g).data() + row, sum_dy_.data() + row, sum_dy_xhat_.data() + row,
          input_grad_.data() + column, input_grad_.rows(),
          detail::stream_output<T>(input_grad_.size()));
    });
  }

  // What the last forward saved for backward (layers/saved_forward.hpp), with BatchNorm's own
  // part: each group's example count (over all processes when synchronized) and, when
  // renormalized (renormalizes(mode)), each group's r and d. dx_scale is features x groups.
  struct Saved : detail::SavedForward<T> {
    Vector<T> counts;
    Matrix<T> renorm_r, renorm_d;
  };

  BatchNormOptions<T> options_;
  Vector<T> gamma_, beta_, gamma_grad_, beta_grad_, running_mean_, running_var_;
  long long num_batches_tracked_ = 0;
  std::shared_ptr<StatisticsSync<T>> sync_;
  // Settings.
  bool gamma_trainable_ = true, beta_trainable_ = true, freeze_statistics_ = false;
  bool accumulate_gradients_ = false, keep_for_backward_ = false;
  // An eval forward that is not kept for backward never writes it.
  Saved saved_;
  // Forward scratch: one group's moments, its biased variance and renormalized shift, the
  // running-statistics update's sums, the eval-mode maps.
  detail::Moments<T> moments_;
  Vector<T> batch_var_, shift_, batch_mean_sum_, batch_var_sum_, eval_scale_, eval_shift_,
      eval_inv_std_;
  // And each group's 1 / sqrt(var + eps) and y's scale gamma * r, one column per group as
  // before the saved state had a type: Eigen's vectorized float sqrt is approximate
  // (EIGEN_FAST_MATH) and its scalar one exact, so where a value is computed decides its last
  // bit, and these columns keep the ghost batches' bits as they were.
  Matrix<T> group_inv_std_, group_scale_;
  // Backward scratch: one group's sum(g) and sum(g * xhat_B) (their means after the
  // synchronization) and its dgamma under renormalization.
  Vector<T> sum_dy_, sum_dy_xhat_, renormalized_gamma_grad_;
  Matrix<T> output_, input_grad_;
};

}  // namespace bnorm
