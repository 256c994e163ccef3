// Per-feature moments of a group of examples, the one type in which every normalization tool
// keeps them (BatchNorm, its synchronization across processes, recalibrate), with the stable
// arithmetic that makes and merges them, written once.
#pragma once

#include "../core/kernels.hpp"
#include "../core/threads.hpp"
#include "../core/types.hpp"

#include <Eigen/Core>
#include <type_traits>

namespace bnorm::detail {

// The mean and the centred sum of squares M2 = sum((x - mean)^2) per feature. M2 stays a sum,
// never divided in place: the variance is M2 / count (biased) or M2 / (count - 1) (unbiased),
// and groups merge from their M2 exactly (merge_group_moments). Storage is a parameter so that
// moments held elsewhere are moments too: Vector<S>& (a caller's vectors), Eigen::Map (a
// gathered message).
template <class S, class Storage = Eigen::Matrix<S, Eigen::Dynamic, 1>>
struct Moments {
  Storage mean;
  Storage m2;

  void resize(Index features) {
    mean.resize(features);
    m2.resize(features);
  }
};

// The centred sum of squares from sums taken about a reference point c:
//   M2 = sum (x - c)^2 - (sum (x - c))^2 / n,
// clamped at 0 against rounding.
template <class Squares, class Offsets, class S>
void centre_sum_of_squares(Squares& sum_squares, const Offsets& sum_offsets, S count) {
  sum_squares.array() = (sum_squares.array() - sum_offsets.array().square() / count).max(S(0));
}

// The moments of columns [first, first + count) of x, per feature (row), in one pass over the
// columns into feature-length vectors (contiguous, vectorized). The sums are of d = x - x0,
// shifted by the group's first example, and M2 = sum(d^2) - sum(d)^2 / m: a large common
// offset cancels exactly in d, so it cannot swamp the spread as in E[x^2] - E[x]^2; what
// remains to cancel is (mean - x0)^2 / var, of order 1 for a typical first example. The sums
// are kept in the scalar S of the moments (recalibrate accumulates a float network's data in
// double); they must have x's row count, and hold sum(d) and sum(d^2) until the last lines.
// When S is x's own scalar and x a matrix or an Eigen::Ref of one (BatchNorm's case), the
// sums run on the dispatched kernel of core/kernels.hpp; otherwise on Eigen.
template <class X, class S, class Storage>
void batch_moments(const Eigen::MatrixBase<X>& x, Index first, Index count,
                   Moments<S, Storage>& moments) {
  const Index features = x.rows();
  auto& mean = moments.mean;
  auto& m2 = moments.m2;
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

// The moments of the union of `groups` groups of examples from each group's own, merged in
// group order with one formula (Chan, Golub & LeVeque), so that whoever merges the same groups
// gets the same bits:
//   N    = sum n_k
//   mean = mean_0 + sum n_k (mean_k - mean_0) / N           (offsets, not sums of large x)
//   M2   = sum M2_k + sum n_k d_k^2 - (sum n_k d_k)^2 / N,   d_k = mean_k - mean
// where the last term removes the rounding error left in mean, as in batch_moments. Shared by
// synchronized BatchNorm across processes (distributed/mpi_statistics_sync.hpp) and by
// recalibrate across the chunks of a data set (model/recalibrate.hpp). count_of(k) and
// moments_of(k) give group k's count and Moments; `merged` receives the union's and must not
// alias any group's; offset is scratch of the features' length. Returns N.
template <class CountOf, class MomentsOf, class Merged, class Offset>
auto merge_group_moments(Index groups, const CountOf& count_of, const MomentsOf& moments_of,
                         Merged& merged, Offset& offset) {
  auto total = count_of(0);
  for (Index k = 1; k < groups; ++k) total += count_of(k);
  offset.setZero();
  for (Index k = 1; k < groups; ++k)
    offset += count_of(k) * (moments_of(k).mean - moments_of(0).mean);
  merged.mean = moments_of(0).mean + offset / total;
  offset.setZero();
  merged.m2.setZero();
  for (Index k = 0; k < groups; ++k) {
    const auto& group = moments_of(k);
    merged.m2 += group.m2;
    offset += count_of(k) * (group.mean - merged.mean);
    merged.m2.array() += count_of(k) * (group.mean - merged.mean).array().square();
  }
  centre_sum_of_squares(merged.m2, offset, total);
  return total;
}

}  // namespace bnorm::detail
