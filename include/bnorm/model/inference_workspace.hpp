// The caller-owned state of concurrent eval-mode inference: one InferenceWorkspace per
// thread, and any number of threads may call net.infer(x, workspace) on the same const
// network at once (core/layer.hpp, "Inference from several threads").
//
//   bnorm::InferenceWorkspace<float> workspace;           // one per thread, reused
//   const bnorm::Matrix<float>& y = net.infer(x, workspace);  // == net.forward(x, Mode::eval)
//
// The workspace holds every intermediate output and the layers' scratch (core/
// inference_scratch.hpp); after the first call at a batch size, infer allocates nothing.
// The result is owned by the workspace and valid until its next use.
#pragma once

#include "../core/inference_scratch.hpp"
#include "../core/types.hpp"

namespace bnorm {

template <class T>
class Sequential;

template <class T>
class InferenceWorkspace {
 public:
  const Matrix<T>& output() const { return output_; }

 private:
  friend class Sequential<T>;
  InferenceScratch<T> scratch_;
  Matrix<T> output_;
};

}  // namespace bnorm
