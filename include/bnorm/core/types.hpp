// Basic vocabulary of bnorm: matrix types, the training/inference mode, the bias switch.
#pragma once

#include <Eigen/Core>

namespace bnorm {

using Index = Eigen::Index;

// Every activation matrix is features x batch, column-major: one column per example.
// Its bytes are those of a row-major PyTorch tensor of shape (batch, features).
template <class T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

template <class T>
using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

// Class labels, one per example (one per column of the logits).
using Labels = Eigen::VectorXi;

// Training or inference. Always explicit: a batch of one never switches the mode silently.
enum class Mode { train, eval };

// Whether a Dense layer adds a learned bias. The Dense layer before a BatchNorm needs none:
// BatchNorm subtracts the batch mean, which removes any constant offset.
enum class Bias { learned, none };

}  // namespace bnorm
