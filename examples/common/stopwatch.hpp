// Wall-clock and processor time of a stretch of work. On a machine shared with other jobs
// the wall time grows with the load while the processor time of this (single-threaded)
// process barely does, so the examples report both.
#pragma once

#include <chrono>
#include <ctime>

namespace examples {

class Stopwatch {
 public:
  Stopwatch() : wall_start_(Clock::now()), cpu_start_(std::clock()) {}

  double wall_seconds() const {
    return std::chrono::duration<double>(Clock::now() - wall_start_).count();
  }
  // Processor time of the whole process (all its threads) since construction.
  double cpu_seconds() const {
    return static_cast<double>(std::clock() - cpu_start_) / CLOCKS_PER_SEC;
  }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point wall_start_;
  std::clock_t cpu_start_;
};

}  // namespace examples
