// bnorm's element-wise and reduction kernels on the best instruction set of the running
// processor: BatchNorm's passes, Dense's bias and its product for one example, the
// activations (ReLU, LeakyReLU, Sigmoid, Tanh), Dropout's mask, the losses (softmax
// cross-entropy, mean squared error) and the optimizer updates (SGD, Adam, AdamW, RMSprop).
//
// Eigen's loops are compiled for the build's flags: SSE2 only in a default build, which made
// BatchNorm 1.6x to 2.3x slower than under -march=native (issue 10). These kernels are
// written once (core/kernels/kernel_bodies.hpp) and compiled three times, for baseline
// x86-64, AVX2+FMA and AVX-512F, each copy in a namespace of its own under its own target
// pragma; each call takes the variant core/isa.hpp chose (BNORM_ISA and force_isa() force
// one, as for the matrix products). They work on raw pointers and strides, never on Eigen
// types, so no Eigen template is compiled under two sets of flags.
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

// The scalars of one Adam or AdamW step (optim/adam.hpp), in T.
template <class T>
struct AdamCoefficients {
  T step_size;             // lr / (1 - beta1^t)
  T bias_correction2_sqrt; // sqrt(1 - beta2^t)
  T beta1, one_minus_beta1, beta2, one_minus_beta2, eps;
  T l2;     // Adam's weight decay, folded into the gradient (0 for AdamW)
  T decay;  // AdamW's factor 1 - lr * weight_decay (1 for Adam)
};

}  // namespace bnorm::detail::kernels

// The AVX-512 copy uses masked loads (matrix_vector).
#if defined(BNORM_HAS_AVX512)
#define BNORM_KERNEL_MASKED_LOADS 1
#endif

// clang has no `#pragma GCC target`; its `attribute push` does the same.
#define BNORM_KERNEL_NAMESPACE baseline
#define BNORM_KERNEL_VECTOR_BYTES 16
#include "kernels/kernel_bodies.hpp"
#undef BNORM_KERNEL_NAMESPACE
#undef BNORM_KERNEL_VECTOR_BYTES

#if defined(BNORM_HAS_AVX2)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#define BNORM_KERNEL_NAMESPACE avx2
#define BNORM_KERNEL_VECTOR_BYTES 32
#include "kernels/kernel_bodies.hpp"
#undef BNORM_KERNEL_NAMESPACE
#undef BNORM_KERNEL_VECTOR_BYTES
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

#if defined(BNORM_HAS_AVX512)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#endif
#define BNORM_KERNEL_NAMESPACE avx512
#define BNORM_KERNEL_VECTOR_BYTES 64
#include "kernels/kernel_bodies.hpp"
#undef BNORM_KERNEL_NAMESPACE
#undef BNORM_KERNEL_VECTOR_BYTES
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

namespace bnorm::detail::kernels {

// Calls the active variant's copy of a kernel: one relaxed atomic load per call
// (core/isa.hpp), no branch per element.
#if defined(BNORM_HAS_AVX512) && defined(BNORM_HAS_AVX2)
#define BNORM_DISPATCH(function, ...)                                   \
  switch (active_isa()) {                                              \
    case Isa::avx512: return avx512::function(__VA_ARGS__);           \
    case Isa::avx2: return avx2::function(__VA_ARGS__);               \
    default: return baseline::function(__VA_ARGS__);                  \
  }
#elif defined(BNORM_HAS_AVX2)
#define BNORM_DISPATCH(function, ...)                                   \
  switch (active_isa()) {                                              \
    case Isa::avx2: return avx2::function(__VA_ARGS__);               \
    default: return baseline::function(__VA_ARGS__);                  \
  }
#elif defined(BNORM_HAS_AVX512)
#define BNORM_DISPATCH(function, ...)                                   \
  switch (active_isa()) {                                              \
    case Isa::avx512: return avx512::function(__VA_ARGS__);           \
    default: return baseline::function(__VA_ARGS__);                  \
  }
#else
#define BNORM_DISPATCH(function, ...) return baseline::function(__VA_ARGS__);
#endif

// The contracts are at the bodies (core/kernels/kernel_bodies.hpp).
template <class T>
void shifted_sums(const T* x, Index stride, Index rows, Index cols, T* sum_d, T* sum_d2) {
  BNORM_DISPATCH(shifted_sums<T>, x, stride, rows, cols, sum_d, sum_d2)
}

template <class T>
void normalize(const T* x, Index x_stride, Index rows, Index cols, const T* mean,
               const T* inv_std, const T* scale, const T* shift, T* xhat, Index xhat_stride,
               T* y, Index y_stride, bool stream = false) {
  BNORM_DISPATCH(normalize<T>, x, x_stride, rows, cols, mean, inv_std, scale, shift, xhat,
                 xhat_stride, y, y_stride, stream)
}

template <class T>
void affine(const T* x, Index x_stride, Index rows, Index cols, const T* scale,
            const T* shift, T* y, Index y_stride, bool stream = false) {
  BNORM_DISPATCH(affine<T>, x, x_stride, rows, cols, scale, shift, y, y_stride, stream)
}

template <class T>
void gradient_sums(const T* dy, Index dy_stride, const T* xhat, Index xhat_stride, Index rows,
                   Index cols, T* sum_dy, T* sum_dy_xhat, const T* scale = nullptr,
                   T* dx = nullptr, Index dx_stride = 0) {
  BNORM_DISPATCH(gradient_sums<T>, dy, dy_stride, xhat, xhat_stride, rows, cols, sum_dy,
                 sum_dy_xhat, scale, dx, dx_stride)
}

template <class T>
void normalized_input_gradient(const T* dy, Index dy_stride, const T* xhat, Index xhat_stride,
                               Index rows, Index cols, const T* scale, const T* mean_dy,
                               const T* mean_dy_xhat, T* dx, Index dx_stride,
                               bool stream = false) {
  BNORM_DISPATCH(normalized_input_gradient<T>, dy, dy_stride, xhat, xhat_stride, rows, cols,
                 scale, mean_dy, mean_dy_xhat, dx, dx_stride, stream)
}

template <class T>
void add_to_columns(T* y, Index stride, Index rows, Index cols, const T* bias) {
  BNORM_DISPATCH(add_to_columns<T>, y, stride, rows, cols, bias)
}

template <class T>
void row_sums(const T* x, Index stride, Index rows, Index cols, T* sums, bool accumulate) {
  BNORM_DISPATCH(row_sums<T>, x, stride, rows, cols, sums, accumulate)
}

template <class T>
void matrix_vector(const T* a, Index a_stride, Index rows, Index depth, const T* x,
                   const T* bias, T* y) {
  BNORM_DISPATCH(matrix_vector<T>, a, a_stride, rows, depth, x, bias, y)
}

template <class T>
void relu(const T* x, Index n, T* y) {
  BNORM_DISPATCH(relu<T>, x, n, y)
}

template <class T>
void relu_backward(const T* y, const T* dy, Index n, T* dx) {
  BNORM_DISPATCH(relu_backward<T>, y, dy, n, dx)
}

template <class T>
void sigmoid(const T* x, Index n, T* y) {
  BNORM_DISPATCH(sigmoid<T>, x, n, y)
}

template <class T>
void sigmoid_backward(const T* y, const T* dy, Index n, T* dx) {
  BNORM_DISPATCH(sigmoid_backward<T>, y, dy, n, dx)
}

template <class T>
void sgd_momentum(T* value, const T* grad, T* buffer, Index n, T lr, T momentum, T undamped,
                  T weight_decay, bool started, bool nesterov) {
  BNORM_DISPATCH(sgd_momentum<T>, value, grad, buffer, n, lr, momentum, undamped,
                 weight_decay, started, nesterov)
}

template <class T>
void tanh(const T* x, Index n, T* y) {
  BNORM_DISPATCH(tanh<T>, x, n, y)
}

template <class T>
void tanh_backward(const T* y, const T* dy, Index n, T* dx) {
  BNORM_DISPATCH(tanh_backward<T>, y, dy, n, dx)
}

template <class T>
void leaky_relu(const T* x, Index n, T slope, T* y) {
  BNORM_DISPATCH(leaky_relu<T>, x, n, slope, y)
}

template <class T>
void leaky_relu_backward(const T* x, const T* dy, Index n, T slope, T* dx) {
  BNORM_DISPATCH(leaky_relu_backward<T>, x, dy, n, slope, dx)
}

template <class T>
void multiply(const T* a, const T* b, Index n, T* y) {
  BNORM_DISPATCH(multiply<T>, a, b, n, y)
}

template <class T>
T softmax_cross_entropy(const T* logits, Index stride, Index classes, Index batch,
                        const int* labels, T* gradient) {
  BNORM_DISPATCH(softmax_cross_entropy<T>, logits, stride, classes, batch, labels, gradient)
}

template <class T>
T squared_error(const T* p, Index p_stride, const T* t, Index t_stride, Index rows, Index cols,
                T scale, T* gradient) {
  BNORM_DISPATCH(squared_error<T>, p, p_stride, t, t_stride, rows, cols, scale, gradient)
}

template <class T>
void adam(T* value, const T* grad, T* first, T* second, T* max_second, Index n,
          const AdamCoefficients<T>& coefficients) {
  BNORM_DISPATCH(adam<T>, value, grad, first, second, max_second, n, coefficients)
}

template <class T>
void rmsprop(T* value, const T* grad, T* square_average, T* gradient_average, T* buffer,
             Index n, T lr, T alpha, T one_minus_alpha, T eps, T weight_decay, T momentum) {
  BNORM_DISPATCH(rmsprop<T>, value, grad, square_average, gradient_average, buffer, n, lr,
                 alpha, one_minus_alpha, eps, weight_decay, momentum)
}

template <class T>
void sgd(T* value, const T* grad, Index n, T lr, T weight_decay) {
  BNORM_DISPATCH(sgd<T>, value, grad, n, lr, weight_decay)
}

#undef BNORM_DISPATCH

}  // namespace bnorm::detail::kernels
