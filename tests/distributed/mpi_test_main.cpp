// doctest's main for tests that run under mpiexec: every process runs every test case, in
// the same order, between MPI_Init and MPI_Finalize. Process 0 reports in full, the others
// only their failures, and the run fails on every process if a check failed on any.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <bnorm/distributed/environment.hpp>

#include <mpi.h>

int main(int argc, char** argv) {
  bnorm::distributed::Environment mpi(argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  doctest::Context context(argc, argv);
  if (rank != 0) {
    context.setOption("minimal", true);
    context.setOption("no-colors", true);
  }
  int failed = context.run();
  if (context.shouldExit()) return failed;
  MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return failed;
}
