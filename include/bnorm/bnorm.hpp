// bnorm: batch-normalized neural-network layers on Eigen. Include this, or single headers.
#pragma once

#include "core/buffer.hpp"
#include "core/error.hpp"
#include "core/generator.hpp"
#include "core/layer.hpp"
#include "core/parameter.hpp"
#include "core/threads.hpp"
#include "core/types.hpp"

#include "data/dataset.hpp"
#include "data/fashion_mnist.hpp"
#include "data/idx.hpp"
#include "data/mini_batches.hpp"

#include "io/atomic_file.hpp"
#include "io/checkpoint.hpp"
#include "io/crc32c.hpp"
#include "io/layer_codec.hpp"
#include "io/little_endian.hpp"
#include "io/model_format.hpp"
#include "io/save_load.hpp"

#include "layers/batch_norm.hpp"
#include "layers/dense.hpp"
#include "layers/dropout.hpp"
#include "layers/identity.hpp"
#include "layers/init.hpp"
#include "layers/leaky_relu.hpp"
#include "layers/relu.hpp"
#include "layers/sigmoid.hpp"
#include "layers/statistics_sync.hpp"
#include "layers/tanh.hpp"

#include "losses/mean_squared_error.hpp"
#include "losses/softmax_cross_entropy.hpp"

#include "metrics/accuracy.hpp"

#include "model/fold_batchnorm.hpp"
#include "model/recalibrate.hpp"
#include "model/sequential.hpp"

#include "optim/adam.hpp"
#include "optim/adamw.hpp"
#include "optim/clip_grad.hpp"
#include "optim/parameter_group.hpp"
#include "optim/rmsprop.hpp"
#include "optim/scheduler.hpp"
#include "optim/schedulers.hpp"
#include "optim/sgd.hpp"
