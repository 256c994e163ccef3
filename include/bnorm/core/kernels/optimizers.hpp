// The optimizer updates of n contiguous parameters (SGD with and without momentum, Adam and
// AdamW, RMSprop), each with its step's scalars in a coefficients struct (core/kernels.hpp).
// Written once, compiled once per variant (core/kernels/variant.hpp); no include guard on
// purpose.

#ifndef BNORM_KERNEL_VARIANT
#error "included once per variant by core/kernels/variant.hpp only"
#endif

namespace bnorm::detail::variants::BNORM_KERNEL_VARIANT {

// Plain SGD on n contiguous elements: value -= lr * (grad + weight_decay * value) (c's
// momentum fields unused).
template <class T>
void sgd(Variant, T* value, const T* grad, Index n, const kernels::SGDCoefficients<T>& c) {
  using V = typename Lanes<T>::Vector;
  const T lr = c.lr, weight_decay = c.weight_decay;
  for_each_lane<T>(
      n,
      [&](V& p, V& gradient) {
        p = p - lr * (weight_decay != T(0) ? gradient + weight_decay * p : gradient);
      },
      value, grad);
}

// SGD with momentum on n contiguous elements, as torch.optim.SGD (weight_decay folded into
// the gradient first): g = grad + weight_decay * value; buffer = started ? momentum *
// buffer + undamped * g : g; value -= lr * (nesterov ? g + momentum * buffer : buffer).
template <class T>
void sgd_momentum(Variant, T* value, const T* grad, T* buffer, Index n,
                  const kernels::SGDCoefficients<T>& c) {
  using V = typename Lanes<T>::Vector;
  const T lr = c.lr, momentum = c.momentum, undamped = c.undamped, weight_decay = c.weight_decay;
  const bool started = c.started, nesterov = c.nesterov;
  for_rows(
      value, n,
      [&](Index i) {
        T g = grad[i];
        if (weight_decay != T(0)) g = g + weight_decay * value[i];
        const T b = started ? momentum * buffer[i] + undamped * g : g;
        buffer[i] = b;
        value[i] = value[i] - lr * (nesterov ? g + momentum * b : b);
      },
      [&](Index i) {
        V g = load(grad + i);
        if (weight_decay != T(0)) g = g + weight_decay * load(value + i);
        const V b = started ? momentum * load(buffer + i) + undamped * g : g;
        store(buffer + i, b);
        store(value + i, load(value + i) - lr * (nesterov ? g + momentum * b : b));
      });
}

// Adam's and AdamW's update of n contiguous elements (optim/adam.hpp has the formulas):
// value *= decay (AdamW; 1 for Adam), g = grad + l2 * value (Adam; l2 = 0 for AdamW), the
// moments, and the step; max_second (amsgrad) is nullptr when unused. The arithmetic, and
// its order, is the Eigen expression's it replaces.
template <class T>
void adam(Variant, T* value, const T* grad, T* first, T* second, T* max_second, Index n,
          const kernels::AdamCoefficients<T>& c) {
  using V = typename Lanes<T>::Vector;
  const bool amsgrad = max_second != nullptr;
  for_each_lane<T>(
      n,
      [&](V& p, V& gradient, V& m, V& v, V& v_max) {
        if (c.decay != T(1)) p = p * c.decay;
        const V g = c.l2 != T(0) ? gradient + c.l2 * p : gradient;
        m = c.beta1 * m + c.one_minus_beta1 * g;
        v = c.beta2 * v + c.one_minus_beta2 * (g * g);
        if (amsgrad) v_max = v_max < v ? v : v_max;
        const V denominator = square_root<T>(amsgrad ? v_max : v) / c.bias_correction2_sqrt + c.eps;
        p = p - c.step_size * m / denominator;
      },
      value, grad, first, second, max_second);
}

// RMSprop's update of n contiguous elements (optim/rmsprop.hpp has the formulas):
// gradient_average is nullptr unless centered, buffer nullptr unless momentum > 0.
template <class T>
void rmsprop(Variant, T* value, const T* grad, T* square_average, T* gradient_average,
             T* buffer, Index n, const kernels::RMSpropCoefficients<T>& c) {
  using V = typename Lanes<T>::Vector;
  const T lr = c.lr, alpha = c.alpha, one_minus_alpha = c.one_minus_alpha, eps = c.eps;
  const T weight_decay = c.weight_decay, momentum = c.momentum;
  const bool centered = gradient_average != nullptr, with_momentum = buffer != nullptr;
  for_each_lane<T>(
      n,
      [&](V& p, V& gradient, V& s, V& a, V& b) {
        const V g = weight_decay != T(0) ? gradient + weight_decay * p : gradient;
        s = alpha * s + one_minus_alpha * (g * g);
        V denominator;
        if (centered) {
          a = alpha * a + one_minus_alpha * g;
          denominator = square_root<T>(s - a * a) + eps;
        } else {
          denominator = square_root<T>(s) + eps;
        }
        if (with_momentum) {
          b = momentum * b + g / denominator;
          p = p - lr * b;
        } else {
          p = p - lr * g / denominator;
        }
      },
      value, grad, square_average, gradient_average, buffer);
}

}  // namespace bnorm::detail::variants::BNORM_KERNEL_VARIANT
