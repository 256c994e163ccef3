// The group of processes that trains one network together, and the few collective
// operations data-parallel training needs, each checked and typed.
//
//   bnorm::distributed::Environment mpi(argc, argv);     // or MPI_Init yourself
//   bnorm::distributed::Communicator world;               // all processes of mpirun
//   if (world.rank() == 0) std::puts("I print");
//
// A Communicator duplicates the MPI communicator it is given (MPI_COMM_WORLD by default), so
// bnorm's messages can never be confused with the program's own, and sets MPI_ERRORS_RETURN
// on the duplicate, so a failing MPI call throws bnorm::Error instead of aborting. Copies
// share the duplicate, which is freed with the last copy (unless MPI is finalized by then).
//
// Every operation here is collective: every process of the group must call it, in the same
// order, with the same sizes. A process that throws between collectives leaves the others
// waiting; catch in main and call abort() to end them all.
#pragma once

#include "../core/error.hpp"

#include <mpi.h>

#include <cstddef>
#include <cstdlib>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace bnorm::distributed {

namespace detail {

// Throws bnorm::Error naming the MPI call and MPI's own description of the failure.
inline void check_mpi(int code, std::string_view call) {
  if (code == MPI_SUCCESS) [[likely]] return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) length = 0;
  bnorm::detail::fail("bnorm::distributed: ", call, " failed",
                      length > 0 ? ": " + std::string(text, static_cast<std::size_t>(length))
                                 : std::string(" (error code ") + std::to_string(code) + ")");
}

template <class>
inline constexpr bool unsupported_type = false;

// The MPI type of the values bnorm sends.
template <class T>
MPI_Datatype mpi_datatype() {
  if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
  else if constexpr (std::is_same_v<T, long long>) return MPI_LONG_LONG;
  else if constexpr (std::is_same_v<T, int>) return MPI_INT;
  else static_assert(unsupported_type<T>, "bnorm::distributed: no MPI datatype for this type");
}

// MPI counts are ints; bnorm's sizes are not.
inline int mpi_count(std::size_t count, std::string_view call) {
  if (count > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    bnorm::detail::fail("bnorm::distributed: ", call, " of ", count,
                        " values exceeds MPI's limit of ", std::numeric_limits<int>::max());
  return static_cast<int>(count);
}

}  // namespace detail

class Communicator {
 public:
  // Requires MPI to be initialized (MPI_Init, or a bnorm::distributed::Environment).
  explicit Communicator(MPI_Comm base = MPI_COMM_WORLD) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized)
      bnorm::detail::fail("bnorm::distributed::Communicator: MPI is ",
                          finalized ? "already finalized" : "not initialized",
                          "; create it between MPI_Init and MPI_Finalize (a "
                          "bnorm::distributed::Environment in main does both)");
    MPI_Comm duplicate = MPI_COMM_NULL;
    detail::check_mpi(MPI_Comm_dup(base, &duplicate), "MPI_Comm_dup");
    handle_ = std::make_shared<Handle>(duplicate);
    detail::check_mpi(MPI_Comm_set_errhandler(duplicate, MPI_ERRORS_RETURN),
                      "MPI_Comm_set_errhandler");
    detail::check_mpi(MPI_Comm_rank(duplicate, &rank_), "MPI_Comm_rank");
    detail::check_mpi(MPI_Comm_size(duplicate, &size_), "MPI_Comm_size");
  }

  // This process's number, 0 to size() - 1.
  int rank() const { return rank_; }
  // How many processes the group has.
  int size() const { return size_; }
  MPI_Comm handle() const { return handle_->comm; }

  // all[k * mine.size() + i] = mine[i] of process k, on every process.
  template <class T>
  void all_gather(std::span<const T> mine, std::span<T> all) const {
    BNORM_ASSERT(all.size() == mine.size() * static_cast<std::size_t>(size_));
    const int count = detail::mpi_count(mine.size(), "MPI_Allgather");
    detail::check_mpi(MPI_Allgather(mine.data(), count, detail::mpi_datatype<T>(), all.data(),
                                    count, detail::mpi_datatype<T>(), handle()),
                      "MPI_Allgather");
  }

  // Replaces each value by its sum over all processes.
  template <class T>
  void all_reduce_sum(std::span<T> values) const {
    const int count = detail::mpi_count(values.size(), "MPI_Allreduce");
    detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, values.data(), count,
                                    detail::mpi_datatype<T>(), MPI_SUM, handle()),
                      "MPI_Allreduce");
  }

  // Copies process `root`'s values to every other process.
  template <class T>
  void broadcast(std::span<T> values, int root = 0) const {
    check_root(root);
    const int count = detail::mpi_count(values.size(), "MPI_Bcast");
    detail::check_mpi(MPI_Bcast(values.data(), count, detail::mpi_datatype<T>(), root, handle()),
                      "MPI_Bcast");
  }

  void barrier() const { detail::check_mpi(MPI_Barrier(handle()), "MPI_Barrier"); }

  // Ends every process of the group (for an error that one process cannot recover from
  // while the others wait in a collective).
  [[noreturn]] void abort(int exit_code) const {
    MPI_Abort(handle(), exit_code);
    std::abort();  // MPI_Abort does not return; this tells the compiler so
  }

  // Throws bnorm::Error unless `root` is the rank of a process of the group.
  void check_root(int root) const {
    if (root < 0 || root >= size_)
      bnorm::detail::fail("bnorm::distributed: root process ", root,
                          " does not exist; the group has processes 0 to ", size_ - 1);
  }

 private:
  struct Handle {
    explicit Handle(MPI_Comm comm) : comm(comm) {}
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() {
      // After MPI_Finalize no MPI call is allowed, and the duplicate is gone anyway.
      int finalized = 0;
      MPI_Finalized(&finalized);
      if (!finalized) MPI_Comm_free(&comm);
    }
    MPI_Comm comm;
  };

  std::shared_ptr<Handle> handle_;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace bnorm::distributed
