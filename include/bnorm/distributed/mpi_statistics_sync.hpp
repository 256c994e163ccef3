// SyncBatchNorm over MPI: the StatisticsSync (layers/statistics_sync.hpp) with which every
// process of a Communicator normalizes with the statistics of the global batch, the union
// of all processes' local batches.
//
//   auto sync = std::make_shared<bnorm::distributed::MpiStatisticsSync<float>>(world);
//   net.layer<bnorm::BatchNorm<float>>(1).set_statistics_sync(sync);
//   // or, for every BatchNorm of a network: synchronize_batch_norm(net, world)
//
// One instance may serve any number of BatchNorm layers of any widths. Every process must
// run the same training forward and backward passes in the same order, since each
// synchronized BatchNorm makes one collective call in each.
//
// How the merge works, and why this way. Each process sends its (count, mean, M2) to every
// other with one MPI_Allgather, and every process then merges the same numbers in the same
// order (rank 0, 1, ...) with the same code, so the merged statistics, and with them the
// running statistics, are identical bit for bit on every process, whatever algorithm the
// MPI library picks. (An MPI_Allreduce is only "strongly recommended" to give every process
// the same bits; the gathered records are small, 2 * features + 1 values per process.)
// The merge is the corrected two-pass formula that BatchNorm itself uses within a batch,
// applied to the processes' means weighted by their counts (Chan, Golub & LeVeque;
// merge_group_moments in layers/moments.hpp). Nothing is ever computed as
// E[x^2] - E[x]^2, which loses all precision when the mean is large compared to the spread.
// On one process this returns its own statistics unchanged.
#pragma once

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../layers/moments.hpp"
#include "../layers/statistics_sync.hpp"
#include "communicator.hpp"

#include <Eigen/Core>

#include <cstddef>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

namespace bnorm::distributed {

template <class T>
class MpiStatisticsSync final : public StatisticsSync<T> {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "MpiStatisticsSync supports float and double");

 public:
  explicit MpiStatisticsSync(Communicator communicator)
      : communicator_(std::move(communicator)) {}

  T merge_moments(T count, Vector<T>& mean, Vector<T>& m2) override {
    BNORM_ASSERT(mean.size() == m2.size());
    const Index features = mean.size();
    const Index record = 2 * features + 1;  // count, mean, M2
    const auto processes = static_cast<Index>(communicator_.size());
    const std::span<const T> all = gather(record, [&](T* out) {
      out[0] = count;
      VectorMap(out + 1, features) = mean;
      VectorMap(out + 1 + features, features) = m2;
    });
    auto count_of = [&](Index k) { return all[static_cast<std::size_t>(k * record)]; };
    auto moments_of = [&](Index k) {
      const T* moments = all.data() + k * record + 1;
      return bnorm::detail::Moments<T, ConstVectorMap>{
          ConstVectorMap(moments, features), ConstVectorMap(moments + features, features)};
    };

    // A process with an empty local batch joins this call only to report it
    // (model/sequential.hpp): every process sees the same counts and throws the same error.
    for (Index k = 0; k < processes; ++k)
      if (count_of(k) == T(0))
        bnorm::detail::fail("synchronized BatchNorm: process ", k, " of ", processes,
                            " has an empty local batch; every process must bring at least one ",
                            "example to each training step");
    VectorMap offset(scratch_.data(), features);
    bnorm::detail::Moments<T, Vector<T>&> merged{mean, m2};
    return bnorm::detail::merge_group_moments(processes, count_of, moments_of, merged, offset);
  }

  void sum(Vector<T>& sum_dy, Vector<T>& sum_dy_xhat) override {
    BNORM_ASSERT(sum_dy.size() == sum_dy_xhat.size());
    const Index features = sum_dy.size();
    const Index record = 2 * features;
    const std::span<const T> all = gather(record, [&](T* out) {
      VectorMap(out, features) = sum_dy;
      VectorMap(out + features, features) = sum_dy_xhat;
    });
    // In rank order on every process, for the same reason as the merge above.
    sum_dy.setZero();
    sum_dy_xhat.setZero();
    for (Index k = 0; k < static_cast<Index>(communicator_.size()); ++k) {
      sum_dy += ConstVectorMap(all.data() + k * record, features);
      sum_dy_xhat += ConstVectorMap(all.data() + k * record + features, features);
    }
  }

  const Communicator& communicator() const { return communicator_; }

 private:
  using VectorMap = Eigen::Map<Vector<T>>;
  using ConstVectorMap = Eigen::Map<const Vector<T>>;

  // Sizes the buffers (std::vector: shrinking keeps the capacity, so layers of different
  // widths sharing this object allocate only until the widest has been seen), lets `pack`
  // write this process's record, and gathers every process's record.
  template <class Pack>
  std::span<const T> gather(Index record, Pack pack) {
    const auto size = static_cast<std::size_t>(record);
    mine_.resize(size);
    all_.resize(size * static_cast<std::size_t>(communicator_.size()));
    scratch_.resize(size);
    pack(mine_.data());
    communicator_.all_gather(std::span<const T>(mine_), std::span<T>(all_));
    return all_;
  }

  Communicator communicator_;
  std::vector<T> mine_, all_, scratch_;
};

}  // namespace bnorm::distributed
