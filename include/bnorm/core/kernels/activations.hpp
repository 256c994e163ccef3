// The element-wise activations and their backward passes (ReLU, Sigmoid, Tanh, LeakyReLU) and
// the element-wise product, on n contiguous elements. Written once, compiled once per
// variant (core/kernels/variant.hpp); no include guard on purpose.

#ifndef BNORM_KERNEL_VARIANT
#error "included once per variant by core/kernels/variant.hpp only"
#endif

namespace bnorm::detail::variants::BNORM_KERNEL_VARIANT {

// ReLU on n contiguous elements: y = x < 0 ? 0 : x (NaN stays NaN, as in PyTorch). y may
// be x.
template <class T>
void relu(Variant, const T* x, Index n, T* y) {
  using V = typename Lanes<T>::Vector;
  const V zero = V{} * T(0);
  for_rows(
      y, n, [&](Index i) { y[i] = x[i] < T(0) ? T(0) : x[i]; },
      [&](Index i) {
        const V value = load(x + i);
        store(y + i, value < zero ? zero : value);
      });
}

// ReLU's backward on n contiguous elements: dx = y > 0 ? dy : 0.
template <class T>
void relu_backward(Variant, const T* y, const T* dy, Index n, T* dx) {
  using V = typename Lanes<T>::Vector;
  const V zero = V{} * T(0);
  for_rows(
      dx, n, [&](Index i) { dx[i] = y[i] > T(0) ? dy[i] : T(0); },
      [&](Index i) { store(dx + i, load(y + i) > zero ? load(dy + i) : zero); });
}

// Sigmoid on n contiguous elements: y = 1 / (1 + exp(-x)); y may be x.
template <class T>
void sigmoid(Variant, const T* x, Index n, T* y) {
  using V = typename Lanes<T>::Vector;
  for_each_lane<T>(n, [](V& in, V& out) { out = logistic<T>(in); }, x, y);
}

// Sigmoid's backward on n contiguous elements: dx = dy * y * (1 - y).
template <class T>
void sigmoid_backward(Variant, const T* y, const T* dy, Index n, T* dx) {
  for_rows(
      dx, n, [&](Index i) { dx[i] = dy[i] * y[i] * (T(1) - y[i]); },
      [&](Index i) {
        const auto value = load(y + i);
        store(dx + i, load(dy + i) * value * (T(1) - value));
      });
}

// tanh on n contiguous elements; y may be x.
template <class T>
void tanh(Variant, const T* x, Index n, T* y) {
  using V = typename Lanes<T>::Vector;
  for_each_lane<T>(n, [](V& in, V& out) { out = hyperbolic_tangent<T>(in); }, x, y);
}

// tanh's backward: dx = dy * (1 - y^2).
template <class T>
void tanh_backward(Variant, const T* y, const T* dy, Index n, T* dx) {
  using V = typename Lanes<T>::Vector;
  for_each_lane<T>(
      n, [](V& value, V& gradient, V& out) { out = gradient * (T(1) - value * value); }, y, dy,
      dx);
}

// LeakyReLU: y = x > 0 ? x : slope * x (NaN takes slope * x, still NaN); y may be x.
template <class T>
void leaky_relu(Variant, const T* x, Index n, T slope, T* y) {
  using V = typename Lanes<T>::Vector;
  for_each_lane<T>(
      n, [slope](V& in, V& out) { out = in > T(0) ? in : slope * in; }, x, y);
}

// LeakyReLU's backward, from the input: dx = x > 0 ? dy : slope * dy.
template <class T>
void leaky_relu_backward(Variant, const T* x, const T* dy, Index n, T slope, T* dx) {
  using V = typename Lanes<T>::Vector;
  for_each_lane<T>(
      n, [slope](V& in, V& gradient, V& out) { out = in > T(0) ? gradient : slope * gradient; },
      x, dy, dx);
}

// y = a * b element by element; y may be a or b.
template <class T>
void multiply(Variant, const T* a, const T* b, Index n, T* y) {
  using V = typename Lanes<T>::Vector;
  for_each_lane<T>(n, [](V& left, V& right, V& out) { out = left * right; }, a, b, y);
}

}  // namespace bnorm::detail::variants::BNORM_KERNEL_VARIANT
