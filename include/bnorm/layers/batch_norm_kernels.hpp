// The arithmetic of batch normalization that more than one tool needs, written once:
// the per-feature moments of a batch (BatchNorm, recalibrate), the merge of several groups'
// moments (synchronized BatchNorm across processes, recalibrate across chunks) and the
// eval-mode affine map (BatchNorm's eval path, fold_batchnorm).
#pragma once

#include "../core/kernels.hpp"
#include "../core/threads.hpp"
#include "../core/types.hpp"

#include <Eigen/Core>
#include <type_traits>

namespace bnorm::detail {

// Mean and centred sum of squares M2 = sum((x - mean)^2) of columns [first, first + count)
// of x, per feature (row), in one pass over the columns into feature-length vectors
// (contiguous, vectorized). The sums are of d = x - x0, shifted by the group's first
// example, and M2 = sum(d^2) - sum(d)^2 / m: a large common offset cancels exactly in d, so
// it cannot swamp the spread as in E[x^2] - E[x]^2; what remains to cancel is
// (mean - x0)^2 / var, of order 1 for a typical first example. The sums are kept in the
// scalar S of mean and m2 (recalibrate accumulates a float network's data in double); mean
// and m2 must have x's row count, and hold sum(d) and sum(d^2) until the last lines.
// When S is x's own scalar and x a matrix or an Eigen::Ref of one (BatchNorm's case), the
// sums run on the dispatched kernel of core/kernels.hpp; otherwise on Eigen.
// The centred sum of squares from sums taken about a reference point c:
//   M2 = sum (x - c)^2 - (sum (x - c))^2 / n,
// clamped at 0 against rounding. Shared by the moments below and by the MPI merge of
// several processes' moments (where the sums are weighted by each process's count).
template <class Squares, class Offsets, class S>
void centre_sum_of_squares(Squares& sum_squares, const Offsets& sum_offsets, S count) {
  sum_squares.array() = (sum_squares.array() - sum_offsets.array().square() / count).max(S(0));
}

// The moments (count, mean, M2) of the union of `groups` groups of examples from each
// group's own, merged in group order with one formula (Chan, Golub & LeVeque), so that
// whoever merges the same groups gets the same bits:
//   N    = sum n_k
//   mean = mean_0 + sum n_k (mean_k - mean_0) / N           (offsets, not sums of large x)
//   M2   = sum M2_k + sum n_k d_k^2 - (sum n_k d_k)^2 / N,   d_k = mean_k - mean
// where the last term removes the rounding error left in mean, as in batch_moments. Shared by
// synchronized BatchNorm across processes (distributed/mpi_statistics_sync.hpp) and by
// recalibrate across the chunks of a data set (model/recalibrate.hpp). count_of(k),
// mean_of(k) and m2_of(k) give group k's moments; mean and m2 receive the union's and must
// not alias any group's; offset is scratch of the features' length. Returns N.
template <class CountOf, class MeanOf, class M2Of, class Mean, class M2, class Offset>
auto merge_group_moments(Index groups, const CountOf& count_of, const MeanOf& mean_of,
                         const M2Of& m2_of, Mean& mean, M2& m2, Offset& offset) {
  auto total = count_of(0);
  for (Index k = 1; k < groups; ++k) total += count_of(k);
  offset.setZero();
  for (Index k = 1; k < groups; ++k) offset += count_of(k) * (mean_of(k) - mean_of(0));
  mean = mean_of(0) + offset / total;
  offset.setZero();
  m2.setZero();
  for (Index k = 0; k < groups; ++k) {
    m2 += m2_of(k);
    offset += count_of(k) * (mean_of(k) - mean);
    m2.array() += count_of(k) * (mean_of(k) - mean).array().square();
  }
  centre_sum_of_squares(m2, offset, total);
  return total;
}

template <class X, class S>
void batch_moments(const Eigen::MatrixBase<X>& x, Index first, Index count,
                   Eigen::Matrix<S, Eigen::Dynamic, 1>& mean,
                   Eigen::Matrix<S, Eigen::Dynamic, 1>& m2) {
  const Index features = x.rows();
  if constexpr (std::is_same_v<X, Eigen::Ref<const Matrix<S>>> || std::is_same_v<X, Matrix<S>>) {
    const S* data = x.derived().data() + first * x.derived().outerStride();
    const Index stride = x.derived().outerStride();
    parallel_ranges(features, features * count, [&](Index row, Index rows) {
      kernels::shifted_sums(data + row, stride, rows, count, mean.data() + row, m2.data() + row);
    });
  } else {
    parallel_ranges(features, features * count, [&](Index row, Index rows) {
      const auto x0 = x.col(first).segment(row, rows).template cast<S>();
      auto sum_d = mean.segment(row, rows);
      auto sum_d2 = m2.segment(row, rows).array();
      sum_d.setZero();
      sum_d2.setZero();
      for (Index j = first + 1; j < first + count; ++j) {
        const auto d = x.col(j).segment(row, rows).template cast<S>() - x0;
        sum_d += d;
        sum_d2 += d.array().square();
      }
    });
  }
  centre_sum_of_squares(m2, mean, static_cast<S>(count));
  mean = x.col(first).template cast<S>() + mean / static_cast<S>(count);
}

// Output of at least this many bytes is written past the caches (the kernels' `stream`
// flag, core/kernels/vector.hpp's store_streaming): a matrix that large has left a
// core's share of the caches before anyone reads it back, so reading each of its lines
// before writing it (write-allocate) would spend half of the write traffic for nothing.
// Smaller output stays in cache for the next layer. Measured on bn_large and bn_eval's
// 32 MiB matrices: bench/bnpasses-2026-12-02/.
inline constexpr Index streaming_store_bytes = Index{16} << 20;
template <class T>
bool stream_output(Index elements) {
  return elements * Index(sizeof(T)) >= streaming_store_bytes;
}

// Eval-mode BatchNorm as one affine map per feature, y = scale * x + shift:
//   scale = gamma / sqrt(var + eps),  shift = beta - scale * mean.
// Generic over the scalar so that fold_batchnorm can evaluate it in extended precision.
template <class Gamma, class Beta, class Mean, class Var, class Scalar, class Scale, class Shift>
void eval_affine_map(const Gamma& gamma, const Beta& beta, const Mean& mean, const Var& var,
                     Scalar eps, Scale& scale, Shift& shift) {
  scale.array() = gamma.array() / (var.array() + eps).sqrt();
  shift.array() = beta.array() - scale.array() * mean.array();
}

// y = scale * x + shift per feature (row): the map above applied to a batch, in ranges of
// features on the threads of core/threads.hpp, on the dispatched kernel of core/kernels.hpp.
// y must have x's shape; scale and shift are vectors with x's row count.
template <class T>
void apply_affine_map(const Eigen::Ref<const Matrix<T>>& x, const Vector<T>& scale,
                      const Vector<T>& shift, Matrix<T>& y) {
  parallel_ranges(x.rows(), x.size(), [&](Index row, Index rows) {
    kernels::affine(x.data() + row, x.outerStride(), rows, x.cols(), scale.data() + row,
                    shift.data() + row, y.data() + row, y.rows(), stream_output<T>(y.size()));
  });
}

}  // namespace bnorm::detail
