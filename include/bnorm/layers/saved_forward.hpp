// What a normalization layer's forward leaves for its backward, as one value: which statistics
// it normalized with (nothing saved is one of them, not a flag beside the buffers), the mode
// it ran in, xhat and the scale of dx. BatchNorm (layers/batch_norm.hpp) keeps one and adds
// what only it needs; a normalization over each example's features has the same shape.
#pragma once

#include "../core/types.hpp"

namespace bnorm::detail {

// The statistics the saved forward normalized with, which decide backward's formula.
enum class SavedStatistics {
  none,                // nothing saved: no forward yet, or the last one failed
  running,             // the running statistics, constants: dx = dx_scale * g
  input,               // the input's own (each batch, ghost batch or example): dx has the
                       // terms through which the statistics depend on x
  synchronized_input,  // the input's own merged over every process: so are backward's sums
};

template <class T>
struct SavedForward {
  SavedStatistics statistics = SavedStatistics::none;
  Mode mode = Mode::eval;  // of the forward that saved
  // xhat, the input normalized with those statistics: x's shape.
  Matrix<T> normalized;
  // The scale of dx: the factor of the input gradient shared by a group of values normalized
  // together (the layer says which and how they are laid out; BatchNorm's is
  // gamma * r / sqrt(var + eps), one per feature and group of examples).
  Matrix<T> dx_scale;

  bool saved() const { return statistics != SavedStatistics::none; }
};

}  // namespace bnorm::detail
