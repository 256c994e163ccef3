// The hook through which BatchNorm shares its batch statistics with other processes, so
// that each normalizes with the statistics of the global batch (SyncBatchNorm). The MPI
// implementation is in distributed/; a single process needs none.
#pragma once

#include "../core/types.hpp"

namespace bnorm {

template <class T>
class StatisticsSync {
 public:
  virtual ~StatisticsSync() = default;

  // Forward: given this process's example count, per-feature mean and centred sum of
  // squares M2 = sum((x - mean)^2), replaces mean and m2 by those of all processes'
  // examples together and returns the total count. Implementations must merge stably
  // (Chan et al.: M2 = sum M2_k + sum n_k (mean_k - mean)^2), never via E[x^2] - E[x]^2.
  virtual T merge_moments(T count, Vector<T>& mean, Vector<T>& m2) = 0;

  // Backward: replaces each vector by its element-wise sum over all processes.
  virtual void sum(Vector<T>& sum_dy, Vector<T>& sum_dy_xhat) = 0;
};

}  // namespace bnorm
