// bnorm's element-wise and reduction kernels on the best instruction set of the running
// processor: batch normalization's passes, per-row vectors, the matrix-vector product,
// the activations, the losses and the optimizer updates.
//
// Eigen's loops are compiled for the build's flags: SSE2 only in a default build, which made
// BatchNorm 1.6x to 2.3x slower than under -march=native (issue 10). These kernels are
// written once, one header per concept (core/kernels/*.hpp, core/gemm/matrix_vector.hpp),
// and compiled once per row of core/isa.hpp's table that has them (core/kernels/variant.hpp),
// each copy in the row's namespace and for its target; each call runs the version
// core/isa.hpp's run_variant picks for the active row (BNORM_ISA and force_isa() force one,
// as for the matrix products). They work on raw pointers and strides, never on Eigen types,
// so no Eigen template is compiled under two sets of flags. Each kernel's version for a row
// takes the row's Variant tag first; the functions below call it without the tag.
//
// Results agree between variants to rounding, not bit for bit: AVX2 and AVX-512 contract
// a * b + c into one FMA. Within a variant every result is deterministic, and the sums run
// over the columns in order, as the Eigen loops did.
#pragma once

#include "isa.hpp"
#include "types.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

// The intrinsics the bodies use where vector extensions cannot say it: square roots,
// non-temporal stores and AVX-512's masked loads. Every intrinsic is declared; each is usable
// inside a function compiled for its instruction set, whatever the build's flags.
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace bnorm::detail::kernels {

// The scalars of one optimizer step, in T (the optimizers' headers have the formulas).
template <class T>
struct SGDCoefficients {
  T lr, weight_decay;
  T momentum, undamped;  // undamped: 1 - dampening
  bool started;          // whether the momentum buffers hold a previous step
  bool nesterov;
};

template <class T>
struct AdamCoefficients {
  T step_size;              // lr / (1 - beta1^t)
  T bias_correction2_sqrt;  // sqrt(1 - beta2^t)
  T beta1, one_minus_beta1, beta2, one_minus_beta2, eps;
  T l2;     // Adam's weight decay, folded into the gradient (0 for AdamW)
  T decay;  // AdamW's factor 1 - lr * weight_decay (1 for Adam)
};

template <class T>
struct RMSpropCoefficients {
  T lr, alpha, one_minus_alpha, eps, weight_decay, momentum;
};

}  // namespace bnorm::detail::kernels

// The rows that have these kernels: every row up to AVX-512. A later row without versions of
// its own (a matrix engine's) runs the best of these below it.
#define BNORM_KERNEL_VARIANT baseline
#include "kernels/variant.hpp"
#undef BNORM_KERNEL_VARIANT
#define BNORM_KERNEL_VARIANT avx2
#include "kernels/variant.hpp"
#undef BNORM_KERNEL_VARIANT
#define BNORM_KERNEL_VARIANT avx512
#include "kernels/variant.hpp"
#undef BNORM_KERNEL_VARIANT

namespace bnorm::detail::kernels {

// Each function runs its kernel's version for the active row: one relaxed atomic load per
// call (core/isa.hpp), no branch per element. The contracts are at the versions.
#define BNORM_RUN(kernel, ...) run_variant(active_isa(), BNORM_VERSIONS(kernel), __VA_ARGS__)

// Batch normalization (core/kernels/normalization.hpp).
template <class T>
void shifted_sums(const T* x, Index stride, Index rows, Index cols, T* sum_d, T* sum_d2) {
  BNORM_RUN(shifted_sums, x, stride, rows, cols, sum_d, sum_d2);
}

template <class T>
void normalize(const T* x, Index x_stride, Index rows, Index cols, const T* mean, const T* inv_std,
               const T* scale, const T* shift, T* xhat, Index xhat_stride, T* y, Index y_stride,
               bool stream = false) {
  BNORM_RUN(normalize, x, x_stride, rows, cols, mean, inv_std, scale, shift, xhat, xhat_stride, y,
            y_stride, stream);
}

template <class T>
void affine(const T* x, Index x_stride, Index rows, Index cols, const T* scale, const T* shift,
            T* y, Index y_stride, bool stream = false) {
  BNORM_RUN(affine, x, x_stride, rows, cols, scale, shift, y, y_stride, stream);
}

template <class T>
void gradient_sums(const T* dy, Index dy_stride, const T* xhat, Index xhat_stride, Index rows,
                   Index cols, T* sum_dy, T* sum_dy_xhat, const T* scale = nullptr, T* dx = nullptr,
                   Index dx_stride = 0) {
  BNORM_RUN(gradient_sums, dy, dy_stride, xhat, xhat_stride, rows, cols, sum_dy, sum_dy_xhat, scale,
            dx, dx_stride);
}

template <class T>
void normalized_input_gradient(const T* dy, Index dy_stride, const T* xhat, Index xhat_stride,
                               Index rows, Index cols, const T* scale, const T* mean_dy,
                               const T* mean_dy_xhat, T* dx, Index dx_stride, bool stream = false) {
  BNORM_RUN(normalized_input_gradient, dy, dy_stride, xhat, xhat_stride, rows, cols, scale, mean_dy,
            mean_dy_xhat, dx, dx_stride, stream);
}

// Per-row vectors (core/kernels/row_vectors.hpp) and the matrix-vector product
// (core/gemm/matrix_vector.hpp).
template <class T>
void add_to_columns(T* y, Index stride, Index rows, Index cols, const T* bias) {
  BNORM_RUN(add_to_columns, y, stride, rows, cols, bias);
}

template <class T>
void row_sums(const T* x, Index stride, Index rows, Index cols, T* sums, bool accumulate) {
  BNORM_RUN(row_sums, x, stride, rows, cols, sums, accumulate);
}

template <class T>
void matrix_vector(const T* a, Index a_stride, Index rows, Index depth, const T* x, const T* bias,
                   T* y) {
  BNORM_RUN(matrix_vector, a, a_stride, rows, depth, x, bias, y);
}

// Activations (core/kernels/activations.hpp).
template <class T>
void relu(const T* x, Index n, T* y) {
  BNORM_RUN(relu, x, n, y);
}

template <class T>
void relu_backward(const T* y, const T* dy, Index n, T* dx) {
  BNORM_RUN(relu_backward, y, dy, n, dx);
}

template <class T>
void sigmoid(const T* x, Index n, T* y) {
  BNORM_RUN(sigmoid, x, n, y);
}

template <class T>
void sigmoid_backward(const T* y, const T* dy, Index n, T* dx) {
  BNORM_RUN(sigmoid_backward, y, dy, n, dx);
}

template <class T>
void tanh(const T* x, Index n, T* y) {
  BNORM_RUN(tanh, x, n, y);
}

template <class T>
void tanh_backward(const T* y, const T* dy, Index n, T* dx) {
  BNORM_RUN(tanh_backward, y, dy, n, dx);
}

template <class T>
void leaky_relu(const T* x, Index n, T slope, T* y) {
  BNORM_RUN(leaky_relu, x, n, slope, y);
}

template <class T>
void leaky_relu_backward(const T* x, const T* dy, Index n, T slope, T* dx) {
  BNORM_RUN(leaky_relu_backward, x, dy, n, slope, dx);
}

template <class T>
void multiply(const T* a, const T* b, Index n, T* y) {
  BNORM_RUN(multiply, a, b, n, y);
}

// Losses (core/kernels/losses.hpp).
template <class T>
T softmax_cross_entropy(const T* logits, Index stride, Index classes, Index batch,
                        const int* labels, T* gradient) {
  return BNORM_RUN(softmax_cross_entropy, logits, stride, classes, batch, labels, gradient);
}

template <class T>
T squared_error(const T* p, Index p_stride, const T* t, Index t_stride, Index rows, Index cols,
                T scale, T* gradient) {
  return BNORM_RUN(squared_error, p, p_stride, t, t_stride, rows, cols, scale, gradient);
}

// Optimizer updates (core/kernels/optimizers.hpp).
template <class T>
void sgd(T* value, const T* grad, Index n, const SGDCoefficients<T>& coefficients) {
  BNORM_RUN(sgd, value, grad, n, coefficients);
}

template <class T>
void sgd_momentum(T* value, const T* grad, T* buffer, Index n,
                  const SGDCoefficients<T>& coefficients) {
  BNORM_RUN(sgd_momentum, value, grad, buffer, n, coefficients);
}

template <class T>
void adam(T* value, const T* grad, T* first, T* second, T* max_second, Index n,
          const AdamCoefficients<T>& coefficients) {
  BNORM_RUN(adam, value, grad, first, second, max_second, n, coefficients);
}

template <class T>
void rmsprop(T* value, const T* grad, T* square_average, T* gradient_average, T* buffer, Index n,
             const RMSpropCoefficients<T>& coefficients) {
  BNORM_RUN(rmsprop, value, grad, square_average, gradient_average, buffer, n, coefficients);
}

#undef BNORM_RUN

}  // namespace bnorm::detail::kernels
