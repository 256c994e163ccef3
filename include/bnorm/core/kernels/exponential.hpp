// exp, the logistic function and tanh on one register, for the activations and the losses.
// Written once, compiled once per variant (core/kernels/variant.hpp); no include guard on
// purpose.

#ifndef BNORM_KERNEL_VARIANT
#error "included once per variant by core/kernels/variant.hpp only"
#endif

namespace bnorm::detail::variants::BNORM_KERNEL_VARIANT {

// exp(x) for x <= 0 (or NaN), one register at a time: x = n ln2 + r with |r| <= ln2 / 2,
// exp(r) from Cephes' approximations (a degree-6 polynomial for float, a Pade form for
// double; both within about 1 ulp), times 2^n built in the exponent bits. n is rounded with
// the 1.5 * 2^(mantissa bits) trick, so no float-to-integer conversion is needed (the
// baseline has none for 64-bit lanes). Below the smallest normal result it returns 0.
template <class T>
inline typename Lanes<T>::Vector exp_nonpositive(typename Lanes<T>::Vector x) {
  using V = typename Lanes<T>::Vector;
  using I = typename Lanes<T>::IntegerVector;
  constexpr bool single = sizeof(T) == 4;
  const T lowest = single ? T(-87.33654) : T(-708.3964185322641);
  const T magic = single ? T(12582912.0) : T(6755399441055744.0);  // 1.5 * 2^23, 1.5 * 2^52
  const T log2e = T(1.44269504088896341);
  const V zero = V{} * T(0);
  const I underflow = x < lowest;
  x = underflow ? zero + lowest : x;
  const V shifted = x * log2e + magic;  // n in the low bits of the mantissa
  const V n = shifted - magic;
  V r, result;
  if constexpr (single) {
    r = x - n * T(0.693359375) - n * T(-2.12194440e-4);
    const V z = r * r;
    V p = T(1.9875691500E-4) * r + T(1.3981999507E-3);
    p = p * r + T(8.3334519073E-3);
    p = p * r + T(4.1665795894E-2);
    p = p * r + T(1.6666665459E-1);
    p = p * r + T(5.0000001201E-1);
    result = p * z + r + T(1);
  } else {
    r = x - n * T(6.93145751953125E-1) - n * T(1.42860682030941723212E-6);
    const V z = r * r;
    const V p = ((T(1.26177193074810590878E-4) * z + T(3.02994407707441961300E-2)) * z +
                 T(9.99999999999999999910E-1)) * r;
    const V q = ((T(3.00198505138664455042E-6) * z + T(2.52448340349684104192E-3)) * z +
                 T(2.27265548208155028766E-1)) * z + T(2.00000000000000000009E0);
    result = T(1) + T(2) * (p / (q - p));
  }
  I bits;
  __builtin_memcpy(&bits, &shifted, sizeof(bits));
  constexpr int mantissa = single ? 23 : 52;
  I magic_bits;
  const V magic_vector = zero + magic;
  __builtin_memcpy(&magic_bits, &magic_vector, sizeof(magic_bits));
  const I exponent = (bits - magic_bits + (single ? 127 : 1023)) << mantissa;
  V scale;
  __builtin_memcpy(&scale, &exponent, sizeof(scale));
  result = result * scale;
  return underflow ? zero : result;
}

// The logistic function on one register: 1 / (1 + e) for x >= 0 and e / (1 + e) below,
// with e = exp(-|x|) <= 1, so neither tail overflows and the negative tail keeps its
// relative accuracy down to the smallest normal number. NaN stays NaN.
template <class T>
inline typename Lanes<T>::Vector logistic(typename Lanes<T>::Vector x) {
  using V = typename Lanes<T>::Vector;
  const V zero = V{} * T(0);
  const V negative_abs = x < zero ? x : -x;
  const V e = exp_nonpositive<T>(negative_abs);
  const V inverse = T(1) / (T(1) + e);
  return x < zero ? e * inverse : inverse;
}

// tanh on one register, on a = |x| with x's sign bit put back at the end (so -0 stays -0
// and tanh stays odd). a < 0.625: Cephes' odd approximation a + a^3 P(a^2) (a polynomial
// for float, a rational function for double). Above: (1 - e) / (1 + e) with
// e = exp(-2a) <= exp(-1.25), so 1 - e has no cancellation and nothing overflows; e
// underflows to 0 for large a, giving 1. NaN takes the second branch and stays NaN.
// tests/test_kernels.cpp measures the error against long double: within 2 ulp.
template <class T>
inline typename Lanes<T>::Vector hyperbolic_tangent(typename Lanes<T>::Vector x) {
  using V = typename Lanes<T>::Vector;
  using I = typename Lanes<T>::IntegerVector;
  I bits, sign;
  __builtin_memcpy(&bits, &x, sizeof(bits));
  sign = bits & std::numeric_limits<typename Lanes<T>::Integer>::min();
  bits ^= sign;
  V a;
  __builtin_memcpy(&a, &bits, sizeof(a));
  const V z = a * a;
  V small;
  if constexpr (sizeof(T) == 4) {
    const V p = ((((T(-5.70498872745E-3) * z + T(2.06390887954E-2)) * z - T(5.37397155531E-2)) *
                      z + T(1.33314422036E-1)) * z - T(3.33332819422E-1));
    small = p * z * a + a;
  } else {
    const V p = (T(-9.64399179425052238628E-1) * z - T(9.92877231001918586564E1)) * z -
                T(1.61468768441708447952E3);
    const V q = ((z + T(1.12811678491632931402E2)) * z + T(2.23548839060100448583E3)) * z +
                T(4.84406305325125486048E3);
    small = a + a * z * (p / q);
  }
  const V e = exp_nonpositive<T>(T(-2) * a);
  const V magnitude = a < T(0.625) ? small : (T(1) - e) / (T(1) + e);
  __builtin_memcpy(&bits, &magnitude, sizeof(bits));
  bits |= sign;
  V result;
  __builtin_memcpy(&result, &bits, sizeof(result));
  return result;
}

}  // namespace bnorm::detail::variants::BNORM_KERNEL_VARIANT
