// The float network types every example uses, compiled once for all of them.
//
// An example's compile time goes mostly to instantiating bnorm's templates for float and
// optimizing them (the layers' forward and backward, their type-erased wrappers in
// Sequential, SGD, the loss, the batches): each example would otherwise repeat that work. The
// `extern template` declarations below tell the compiler that float_network.cpp, linked into
// every example (the bnorm_example_network library in CMakeLists.txt), holds these
// instantiations; an example still inlines what it calls from them.
//
// Including this header is optional: a program that does not include it instantiates what it
// uses itself, as any user's program does, and gets the same code.
#pragma once

#include <bnorm/bnorm.hpp>

// X(Layer) for every layer type an example puts into a Sequential<float>.
#define BNORM_EXAMPLE_FLOAT_LAYERS(X)                                                         \
  X(Dense<float>) X(BatchNorm<float>) X(ReLU<float>) X(LeakyReLU<float>) X(Sigmoid<float>)  \
      X(Tanh<float>) X(Identity<float>) X(Dropout<float>) X(Sequential<float>)

// float_network.cpp defines BNORM_EXAMPLE_FLOAT_NETWORK_DEFINE to turn these declarations
// into the explicit instantiations themselves, so that both lists are one.
#ifdef BNORM_EXAMPLE_FLOAT_NETWORK_DEFINE
#define BNORM_EXAMPLE_INSTANTIATE template
#else
#define BNORM_EXAMPLE_INSTANTIATE extern template
#endif

namespace bnorm {
#define BNORM_EXAMPLE_LAYER(Layer) BNORM_EXAMPLE_INSTANTIATE class Layer;
BNORM_EXAMPLE_FLOAT_LAYERS(BNORM_EXAMPLE_LAYER)
#undef BNORM_EXAMPLE_LAYER
BNORM_EXAMPLE_INSTANTIATE class SGD<float>;
BNORM_EXAMPLE_INSTANTIATE class SoftmaxCrossEntropy<float>;
BNORM_EXAMPLE_INSTANTIATE class MiniBatches<float>;
namespace detail {
// The table of each layer type's operations (core/layer_ref.hpp): its functions hold most of
// the instantiated code of a Sequential.
#define BNORM_EXAMPLE_LAYER_MODEL(Layer) BNORM_EXAMPLE_INSTANTIATE struct LayerModel<float, Layer>;
BNORM_EXAMPLE_FLOAT_LAYERS(BNORM_EXAMPLE_LAYER_MODEL)
#undef BNORM_EXAMPLE_LAYER_MODEL
}  // namespace detail
}  // namespace bnorm

#undef BNORM_EXAMPLE_INSTANTIATE
