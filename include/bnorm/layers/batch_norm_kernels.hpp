// The arithmetic of batch normalization that more than one tool needs, written once: when
// BatchNorm's output streams past the caches, and the eval-mode affine map (BatchNorm's eval
// path, fold_batchnorm). The moments are layers/moments.hpp's.
#pragma once

#include "../core/kernels.hpp"
#include "../core/threads.hpp"
#include "../core/types.hpp"

#include <Eigen/Core>

namespace bnorm::detail {

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
