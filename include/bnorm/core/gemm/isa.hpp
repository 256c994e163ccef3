// Which instruction set the matrix products run on, chosen once at run time.
//
// A user's default build (no -march flag) targets baseline x86-64, where Eigen runs on SSE2
// only; bnorm's own GEMM kernels are compiled for several instruction sets side by side,
// each under its own symbols (target-attributed functions, never one template under two sets
// of flags), and the best one the running processor supports is taken.
//
// - BNORM_ISA=baseline|avx2|avx512 in the environment forces a variant (for tests and
//   benchmarks); read at the first product, or again by reload_gemm_isa_from_environment().
// - force_gemm_isa() forces one from code (the same purpose); std::nullopt undoes it.
// - Defining BNORM_NO_DISPATCH compiles only the variant the compiler flags allow (-mavx2
//   -mfma, -mavx512f, as -march=native sets them) besides the baseline, and takes it
//   without asking the processor.
// - Other architectures than x86-64 (and compilers without GCC's target attribute) have the
//   baseline only.
#pragma once

#include "../error.hpp"

#include <atomic>
#include <cstdlib>
#include <optional>
#include <string_view>

#if defined(__x86_64__) && defined(__GNUC__)
#if !defined(BNORM_NO_DISPATCH) || (defined(__AVX2__) && defined(__FMA__))
#define BNORM_GEMM_HAS_AVX2 1
#endif
#if !defined(BNORM_NO_DISPATCH) || defined(__AVX512F__)
#define BNORM_GEMM_HAS_AVX512 1
#endif
#endif

namespace bnorm::detail {

enum class GemmIsa { baseline, avx2, avx512 };

inline constexpr GemmIsa every_gemm_isa[] = {GemmIsa::baseline, GemmIsa::avx2, GemmIsa::avx512};

constexpr std::string_view gemm_isa_name(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::avx2: return "avx2";
    case GemmIsa::avx512: return "avx512";
    default: return "baseline";
  }
}

// Whether this build has the variant and this processor can run it.
inline bool gemm_isa_supported(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::baseline: return true;
    case GemmIsa::avx2:
#if defined(BNORM_GEMM_HAS_AVX2) && defined(BNORM_NO_DISPATCH)
      return true;
#elif defined(BNORM_GEMM_HAS_AVX2)
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
      return false;
#endif
    case GemmIsa::avx512:
#if defined(BNORM_GEMM_HAS_AVX512) && defined(BNORM_NO_DISPATCH)
      return true;
#elif defined(BNORM_GEMM_HAS_AVX512)
      return __builtin_cpu_supports("avx512f");
#else
      return false;
#endif
  }
  return false;
}

inline GemmIsa best_gemm_isa() {
  if (gemm_isa_supported(GemmIsa::avx512)) return GemmIsa::avx512;
  if (gemm_isa_supported(GemmIsa::avx2)) return GemmIsa::avx2;
  return GemmIsa::baseline;
}

// The variant a BNORM_ISA value names (nullptr or "" when unset: the best one). A name that
// is unknown, or a variant this build or processor cannot run, throws: a forced benchmark
// must never measure another variant than the one it names.
inline GemmIsa gemm_isa_from_name(const char* name) {
  if (name == nullptr || *name == '\0') return best_gemm_isa();
  for (GemmIsa isa : every_gemm_isa) {
    if (gemm_isa_name(isa) != name) continue;
    require(gemm_isa_supported(isa), "BNORM_ISA: variant '", name,
            "' is not supported by this build or processor");
    return isa;
  }
  fail("BNORM_ISA: expected baseline, avx2 or avx512, got '", name, "'");
}

namespace gemm_isa_state {
// -1: not chosen yet. Otherwise the GemmIsa value in use.
inline std::atomic<int> active{-1};
}  // namespace gemm_isa_state

inline GemmIsa reload_gemm_isa_from_environment() {
  const GemmIsa isa = gemm_isa_from_name(std::getenv("BNORM_ISA"));
  gemm_isa_state::active.store(int(isa), std::memory_order_relaxed);
  return isa;
}

// std::nullopt: back to the environment's choice (or the best variant).
inline void force_gemm_isa(std::optional<GemmIsa> isa) {
  if (!isa) {
    reload_gemm_isa_from_environment();
    return;
  }
  require(gemm_isa_supported(*isa), "force_gemm_isa: variant '", gemm_isa_name(*isa),
          "' is not supported by this build or processor");
  gemm_isa_state::active.store(int(*isa), std::memory_order_relaxed);
}

inline GemmIsa active_gemm_isa() {
  const int isa = gemm_isa_state::active.load(std::memory_order_relaxed);
  return isa < 0 ? reload_gemm_isa_from_environment() : GemmIsa(isa);
}

}  // namespace bnorm::detail
