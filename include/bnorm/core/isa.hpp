// Which instruction set bnorm's hot code runs on, chosen once at run time: the matrix
// products (core/gemm/) and the element-wise and reduction kernels (core/kernels.hpp).
//
// A user's default build (no -march flag) targets baseline x86-64, where Eigen runs on SSE2
// only; bnorm's own kernels are compiled for several instruction sets side by side, each
// under its own symbols (target-attributed functions or a namespace per variant, never one
// template under two sets of flags), and the best one the running processor supports is
// taken. Choosing costs one relaxed atomic load per call.
//
// - BNORM_ISA=baseline|avx2|avx512 in the environment forces a variant (for tests and
//   benchmarks); read at the first call, or again by reload_isa_from_environment().
// - force_isa() forces one from code (the same purpose); std::nullopt undoes it.
// - Defining BNORM_NO_DISPATCH compiles only the variant the compiler flags allow (-mavx2
//   -mfma, -mavx512f, as -march=native sets them) besides the baseline, and takes it
//   without asking the processor.
// - Other architectures than x86-64 (and compilers without GCC's target attribute) have the
//   baseline only.
#pragma once

#include "error.hpp"

#include <atomic>
#include <cstdlib>
#include <optional>
#include <string_view>

#if defined(__x86_64__) && defined(__GNUC__)
#if !defined(BNORM_NO_DISPATCH) || (defined(__AVX2__) && defined(__FMA__))
#define BNORM_HAS_AVX2 1
#endif
#if !defined(BNORM_NO_DISPATCH) || defined(__AVX512F__)
#define BNORM_HAS_AVX512 1
#endif
#endif

namespace bnorm::detail {

enum class Isa { baseline, avx2, avx512 };

inline constexpr Isa every_isa[] = {Isa::baseline, Isa::avx2, Isa::avx512};

constexpr std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    default: return "baseline";
  }
}

// Whether this build has the variant and this processor can run it.
inline bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::baseline: return true;
    case Isa::avx2:
#if defined(BNORM_HAS_AVX2) && defined(BNORM_NO_DISPATCH)
      return true;
#elif defined(BNORM_HAS_AVX2)
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
      return false;
#endif
    case Isa::avx512:
#if defined(BNORM_HAS_AVX512) && defined(BNORM_NO_DISPATCH)
      return true;
#elif defined(BNORM_HAS_AVX512)
      return __builtin_cpu_supports("avx512f");
#else
      return false;
#endif
  }
  return false;
}

inline Isa best_isa() {
  if (isa_supported(Isa::avx512)) return Isa::avx512;
  if (isa_supported(Isa::avx2)) return Isa::avx2;
  return Isa::baseline;
}

// The variant a BNORM_ISA value names (nullptr or "" when unset: the best one). A name that
// is unknown, or a variant this build or processor cannot run, throws: a forced benchmark
// must never measure another variant than the one it names.
inline Isa isa_from_name(const char* name) {
  if (name == nullptr || *name == '\0') return best_isa();
  for (Isa isa : every_isa) {
    if (isa_name(isa) != name) continue;
    require(isa_supported(isa), "BNORM_ISA: variant '", name,
            "' is not supported by this build or processor");
    return isa;
  }
  fail("BNORM_ISA: expected baseline, avx2 or avx512, got '", name, "'");
}

namespace isa_state {
// -1: not chosen yet. Otherwise the Isa value in use.
inline std::atomic<int> active{-1};
}  // namespace isa_state

inline Isa reload_isa_from_environment() {
  const Isa isa = isa_from_name(std::getenv("BNORM_ISA"));
  isa_state::active.store(int(isa), std::memory_order_relaxed);
  return isa;
}

// std::nullopt: back to the environment's choice (or the best variant).
inline void force_isa(std::optional<Isa> isa) {
  if (!isa) {
    reload_isa_from_environment();
    return;
  }
  require(isa_supported(*isa), "force_isa: variant '", isa_name(*isa),
          "' is not supported by this build or processor");
  isa_state::active.store(int(*isa), std::memory_order_relaxed);
}

inline Isa active_isa() {
  const int isa = isa_state::active.load(std::memory_order_relaxed);
  return isa < 0 ? reload_isa_from_environment() : Isa(isa);
}

}  // namespace bnorm::detail
