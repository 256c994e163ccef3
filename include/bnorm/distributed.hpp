// bnorm::distributed: data-parallel training over MPI. Optional: link the CMake target
// bnorm::distributed (bnorm plus MPI); nothing else in bnorm needs MPI.
//
// One training step on every process (see examples/distributed_fashion_mnist.cpp):
//   forward on this process's share of the global batch (synchronized BatchNorms normalize
//   with the global statistics), loss, backward, gradients.average(), optimizer.step().
#pragma once

#include "distributed/broadcast_parameters.hpp"
#include "distributed/communicator.hpp"
#include "distributed/environment.hpp"
#include "distributed/for_each_batch_norm.hpp"
#include "distributed/gradient_all_reduce.hpp"
#include "distributed/mpi_statistics_sync.hpp"
#include "distributed/synchronize_batch_norm.hpp"
