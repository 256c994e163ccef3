// Which instruction set bnorm's hot code runs on, chosen once at run time: the matrix
// products (core/gemm/) and the element-wise and reduction kernels (core/kernels.hpp).
//
// A user's default build (no -march flag) targets baseline x86-64, where Eigen runs on SSE2
// only; bnorm's own kernels are compiled for several instruction sets side by side, each
// in a namespace of its own under its own target (never one template under two sets of
// flags), and the best one the running processor supports is taken. Choosing costs one
// relaxed atomic load per call.
//
// One table, BNORM_INSTRUCTION_SETS below, lists the instruction sets (the rows); everything
// per row is generated from it: the Isa enum, every_isa, isa_name, isa_supported, the
// variants' namespaces, the target regions that compile a row's code, and the dispatch.
// A new instruction set is one row there plus its kernels. A kernel need not exist for
// every row: dispatch runs, for each kernel, the best row at or below the active one that
// has a version of it (run_variant below), never a silent baseline.
//
// - BNORM_ISA=baseline|avx2|avx512 in the environment forces a variant (for tests and
//   benchmarks); read at the first call, or again by reload_isa_from_environment().
// - force_isa() forces one from code (the same purpose); std::nullopt undoes it.
// - Defining BNORM_NO_DISPATCH compiles only the rows the compiler flags allow (-mavx2
//   -mfma, -mavx512f, as -march=native sets them) besides the baseline, and takes the best
//   of them without asking the processor.
// - Other architectures than x86-64 (and compilers without GCC's target attribute) have the
//   baseline only.
#pragma once

#include "error.hpp"

#include <atomic>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

// Whether this build compiles each x86 row (1 or 0): every one on x86-64 under GCC or clang,
// chosen at run time; under BNORM_NO_DISPATCH only those the compiler flags allow.
#if defined(__x86_64__) && defined(__GNUC__)
#define BNORM_CPU_HAS(feature) __builtin_cpu_supports(feature)
#if !defined(BNORM_NO_DISPATCH) || (defined(__AVX2__) && defined(__FMA__))
#define BNORM_COMPILES_AVX2 1
#endif
#if !defined(BNORM_NO_DISPATCH) || defined(__AVX512F__)
#define BNORM_COMPILES_AVX512 1
#endif
#else
#define BNORM_CPU_HAS(feature) false
#endif
#ifndef BNORM_COMPILES_AVX2
#define BNORM_COMPILES_AVX2 0
#endif
#ifndef BNORM_COMPILES_AVX512
#define BNORM_COMPILES_AVX512 0
#endif

// The table: one row per instruction set, from the baseline up, each row's processor able to
// run the code of every row before it. BNORM_ISA_<name>(column) calls column with the row:
//   name             the variant's name (BNORM_ISA's value, the namespace variants::<name>)
//   compiler target  its target("...") string; empty for the baseline, which is compiled
//                    with the build's own flags (SSE2 on x86-64, NEON on ARM)
//   vector bytes     the width of one vector register, for the element-wise kernels
//   compiled         1 when this build compiles the row (usable in #if)
//   processor check  whether the running processor (and OS) can run it
#define BNORM_ISA_baseline(column) column(baseline, , 16, 1, true)
#define BNORM_ISA_avx2(column)                                                        \
  column(avx2, "avx2,fma", 32, BNORM_COMPILES_AVX2,                                   \
         BNORM_CPU_HAS("avx2") && BNORM_CPU_HAS("fma"))
#define BNORM_ISA_avx512(column)                                                      \
  column(avx512, "avx512f,avx2,fma", 64, BNORM_COMPILES_AVX512, BNORM_CPU_HAS("avx512f"))

#define BNORM_INSTRUCTION_SETS(column) \
  BNORM_ISA_baseline(column) BNORM_ISA_avx2(column) BNORM_ISA_avx512(column)

// One field of a row, by the row's name (which may itself be a macro).
#define BNORM_ISA_ROW(name) BNORM_ISA_ROW_(name)
#define BNORM_ISA_ROW_(name) BNORM_ISA_##name
#define BNORM_ISA_TARGET_OF(name, target, bytes, compiled, check) target
#define BNORM_ISA_BYTES_OF(name, target, bytes, compiled, check) bytes
#define BNORM_ISA_COMPILED_OF(name, target, bytes, compiled, check) compiled
#define BNORM_ISA_VECTOR_BYTES(name) BNORM_ISA_ROW(name)(BNORM_ISA_BYTES_OF)
#define BNORM_ISA_COMPILED(name) BNORM_ISA_ROW(name)(BNORM_ISA_COMPILED_OF)

// A row's code is compiled for its target whatever the build's flags, between
//   #if BNORM_ISA_COMPILED(row)
//   BNORM_ISA_BEGIN(row)
//   namespace bnorm::detail::variants::row { ... }
//   BNORM_ISA_END(row)
//   #endif
// (clang has no `#pragma GCC target`; its `attribute push` does the same). Headers go before
// BNORM_ISA_BEGIN: what is declared inside is compiled for the row.
#define BNORM_ISA_PRAGMA(text) _Pragma(#text)
#if defined(__clang__)
#define BNORM_ISA_PUSH_TARGET(...)                                                  \
  __VA_OPT__(BNORM_ISA_PRAGMA(clang attribute push(__attribute__((target(__VA_ARGS__))), \
                                                   apply_to = function)))
#define BNORM_ISA_POP_TARGET(...) __VA_OPT__(BNORM_ISA_PRAGMA(clang attribute pop))
#else
#define BNORM_ISA_PUSH_TARGET(...) \
  __VA_OPT__(BNORM_ISA_PRAGMA(GCC push_options) BNORM_ISA_PRAGMA(GCC target(__VA_ARGS__)))
#define BNORM_ISA_POP_TARGET(...) __VA_OPT__(BNORM_ISA_PRAGMA(GCC pop_options))
#endif
#define BNORM_ISA_BEGIN(name) BNORM_ISA_PUSH_TARGET(BNORM_ISA_ROW(name)(BNORM_ISA_TARGET_OF))
#define BNORM_ISA_END(name) BNORM_ISA_POP_TARGET(BNORM_ISA_ROW(name)(BNORM_ISA_TARGET_OF))

namespace bnorm::detail {

#define BNORM_ISA_ENUMERATOR(name, ...) name,
enum class Isa { BNORM_INSTRUCTION_SETS(BNORM_ISA_ENUMERATOR) };
#undef BNORM_ISA_ENUMERATOR

#define BNORM_ISA_LISTED(name, ...) Isa::name,
inline constexpr Isa every_isa[] = {BNORM_INSTRUCTION_SETS(BNORM_ISA_LISTED)};
#undef BNORM_ISA_LISTED

// Each row's namespace, where its kernels live, and its tag: a kernel's version for the row
// takes a Variant as its first parameter, by which dispatch finds it (argument-dependent
// lookup).
#define BNORM_ISA_NAMESPACE(row, ...)                   \
  namespace variants::row {                           \
  struct Variant {                                    \
    static constexpr Isa isa = Isa::row;              \
  };                                                  \
  }                                                   \
  template <>                                         \
  struct VariantTag<Isa::row> {                       \
    using type = variants::row::Variant;              \
  };
template <Isa isa>
struct VariantTag;
BNORM_INSTRUCTION_SETS(BNORM_ISA_NAMESPACE)
#undef BNORM_ISA_NAMESPACE

constexpr std::string_view isa_name(Isa isa) {
#define BNORM_ISA_NAME_CASE(name, ...) \
  case Isa::name: return #name;
  switch (isa) { BNORM_INSTRUCTION_SETS(BNORM_ISA_NAME_CASE) }
#undef BNORM_ISA_NAME_CASE
  return "unknown";
}

// Whether this build has the variant and this processor can run it.
inline bool isa_supported(Isa isa) {
#if defined(BNORM_NO_DISPATCH)
#define BNORM_ISA_SUPPORTED_CASE(name, target, bytes, compiled, check) \
  case Isa::name: return compiled;
#else
#define BNORM_ISA_SUPPORTED_CASE(name, target, bytes, compiled, check) \
  case Isa::name: return compiled && (check);
#endif
  switch (isa) { BNORM_INSTRUCTION_SETS(BNORM_ISA_SUPPORTED_CASE) }
#undef BNORM_ISA_SUPPORTED_CASE
  return false;
}

inline Isa best_isa() {
  Isa best = Isa::baseline;
  for (Isa isa : every_isa)
    if (isa_supported(isa)) best = isa;
  return best;
}

// "baseline, avx2 or avx512": the names BNORM_ISA takes.
inline std::string isa_names() {
  std::string names;
  for (Isa isa : every_isa) {
    if (!names.empty()) names += isa == every_isa[std::size(every_isa) - 1] ? " or " : ", ";
    names += isa_name(isa);
  }
  return names;
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
  fail("BNORM_ISA: expected ", isa_names(), ", got '", name, "'");
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

// The dispatch. A kernel's versions are a callable `versions(variant, arguments...)` that is
// well-formed exactly for the rows that have a version (BNORM_VERSIONS(kernel) makes one
// from the kernel's name). variant_for(active) is the row whose version runs when `active`
// is the active row: the best one at or below it that has one. It is decided at compile
// time, so reporting it costs nothing.
#define BNORM_VERSIONS(kernel)                                             \
  [](auto variant, auto... arguments) -> decltype(kernel(variant, arguments...)) { \
    return kernel(variant, arguments...);                                  \
  }

template <class Versions, class... Arguments>
constexpr Isa variant_for(Isa active) {
#define BNORM_ISA_HAS_VERSION(name, ...) \
  std::is_invocable_v<Versions, variants::name::Variant, Arguments...>,
  constexpr bool has_version[] = {BNORM_INSTRUCTION_SETS(BNORM_ISA_HAS_VERSION)};
#undef BNORM_ISA_HAS_VERSION
  static_assert(has_version[0], "every kernel has a baseline version");
  for (int row = int(active); row > 0; --row)
    if (has_version[row]) return Isa(row);
  return Isa::baseline;
}

// The same question asked with the arguments of a call (their types only).
template <class Versions, class... Arguments>
constexpr Isa variant_for(Isa active, const Versions&, const Arguments&...) {
  return variant_for<Versions, Arguments...>(active);
}

// Runs the version of `versions` that variant_for picks for `active`.
template <class Versions, class... Arguments>
decltype(auto) run_variant(Isa active, Versions versions, Arguments... arguments) {
#define BNORM_ISA_RUN_CASE(name, ...)                                                   \
  case Isa::name:                                                                       \
    return versions(typename VariantTag<variant_for<Versions, Arguments...>(Isa::name)>::type{}, \
                    arguments...);
  switch (active) { BNORM_INSTRUCTION_SETS(BNORM_ISA_RUN_CASE) }
#undef BNORM_ISA_RUN_CASE
  BNORM_ASSERT(!"run_variant: not a row of the table");
  std::abort();
}

}  // namespace bnorm::detail
