// Compiles the kernels written once for every variant (core/kernels/*.hpp, and the
// matrix-vector product of core/gemm/matrix_vector.hpp) for the row BNORM_KERNEL_VARIANT of
// core/isa.hpp's table, in the row's namespace and for its target. core/kernels.hpp includes
// it once per row that has these kernels. No include guard on purpose.
#ifndef BNORM_KERNEL_VARIANT
#error "core/kernels/variant.hpp is included by core/kernels.hpp only"
#endif

#if BNORM_ISA_COMPILED(BNORM_KERNEL_VARIANT)
#define BNORM_KERNEL_VECTOR_BYTES BNORM_ISA_VECTOR_BYTES(BNORM_KERNEL_VARIANT)
BNORM_ISA_BEGIN(BNORM_KERNEL_VARIANT)
// In this order: each uses those before it.
// clang-format off
#include "vector.hpp"
#include "exponential.hpp"
#include "normalization.hpp"
#include "row_vectors.hpp"
#include "../gemm/matrix_vector.hpp"
#include "activations.hpp"
#include "losses.hpp"
#include "optimizers.hpp"
// clang-format on
BNORM_ISA_END(BNORM_KERNEL_VARIANT)
#undef BNORM_KERNEL_VECTOR_BYTES
#endif
