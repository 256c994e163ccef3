// What a layer's const inference path (`infer`, core/layer.hpp) writes to instead of its own
// members: one per thread, owned by the caller (model/inference_workspace.hpp holds it).
//
// - gemm: the products' packing buffers. A layer's own detail::Gemm keeps them too, so a
//   const path must not touch it; this one is shared by every product of one call (the
//   buffers only grow, so the largest product sizes them once).
// - matrix() and vector(): buffers handed out in call order, the i-th request of a call
//   getting the i-th buffer. A network asks for the same buffers in the same order at every
//   call, so each keeps one shape, and after the first call at a batch size nothing is
//   allocated. begin_call() starts a call over; a std::deque keeps references valid while it
//   grows.
#pragma once

#include "gemm.hpp"
#include "types.hpp"

#include <cstddef>
#include <deque>

namespace bnorm {

template <class T>
class InferenceScratch {
 public:
  detail::Gemm<T>& gemm() { return gemm_; }

  Matrix<T>& matrix() { return next(matrices_, used_matrices_); }
  Vector<T>& vector() { return next(vectors_, used_vectors_); }

  void begin_call() { used_matrices_ = used_vectors_ = 0; }

  // Whether x's storage is one of the matrices handed out (infer refuses those as input:
  // the call would overwrite its own argument).
  template <class X>
  bool holds(const X& x) const {
    for (const Matrix<T>& m : matrices_)
      if (m.size() > 0 && x.data() >= m.data() && x.data() < m.data() + m.size()) return true;
    return false;
  }

 private:
  template <class Buffer>
  static Buffer& next(std::deque<Buffer>& pool, std::size_t& used) {
    if (used == pool.size()) pool.emplace_back();
    return pool[used++];
  }

  detail::Gemm<T> gemm_;
  std::deque<Matrix<T>> matrices_;
  std::deque<Vector<T>> vectors_;
  std::size_t used_matrices_ = 0, used_vectors_ = 0;
};

}  // namespace bnorm
