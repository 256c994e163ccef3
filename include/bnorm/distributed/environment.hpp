// MPI_Init and MPI_Finalize as the lifetime of an object in main.
//
//   int main(int argc, char** argv) {
//     bnorm::distributed::Environment mpi(argc, argv);
//     bnorm::distributed::Communicator world;
//     ...
//   }  // MPI_Finalize here, after every Communicator in main is gone
//
// If MPI is already initialized (by the program, or another library), an Environment
// leaves both MPI_Init and MPI_Finalize to whoever initialized it.
#pragma once

#include "communicator.hpp"

#include <mpi.h>

namespace bnorm::distributed {

class Environment {
 public:
  Environment(int& argc, char**& argv) { initialize(&argc, &argv); }
  Environment() { initialize(nullptr, nullptr); }

  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  ~Environment() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owner_ && !finalized) MPI_Finalize();
  }

 private:
  void initialize(int* argc, char*** argv) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized) return;
    detail::check_mpi(MPI_Init(argc, argv), "MPI_Init");
    owner_ = true;
  }

  bool owner_ = false;
};

}  // namespace bnorm::distributed
