// Progress of a long job of training steps (several runs, epochs or checkpoints).
//
//   examples::Progress progress(total_steps);
//   progress.start_unit("bn seed 0 epoch 1/10", steps_per_epoch);
//   for (...) { ...; progress.step(loss, batch_size); }
//   const auto unit = progress.finish_unit();
//   std::printf("epoch 1 ... %s\n", unit.describe().c_str());
//
// On a terminal (stderr is a tty) a one-line bar shows the unit's progress, the mean loss so
// far, the examples per second and the time left for the whole job, redrawn at most ten
// times a second; finish_unit() erases it, so that the caller's line for the unit replaces
// it. In a log (stderr is not a terminal) nothing is drawn: the caller's line per unit,
// with describe()'s loss, speed and time left, is the whole record.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace examples {

class Progress {
 public:
  // `total_steps`: the training steps of the whole job, for the time left.
  explicit Progress(long long total_steps, std::FILE* terminal = stderr)
      : terminal_(terminal), is_terminal_(isatty(fileno(terminal)) != 0),
        total_steps_(std::max(total_steps, 1LL)), job_start_(Clock::now()) {}

  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  bool is_terminal() const { return is_terminal_; }

  void start_unit(std::string label, long long unit_steps) {
    label_ = std::move(label);
    unit_total_ = std::max(unit_steps, 1LL);
    unit_steps_ = 0;
    unit_examples_ = 0;
    loss_sum_ = 0;
    unit_start_ = Clock::now();
    last_draw_ = unit_start_ - redraw_interval;
  }

  // After each training step: its loss and the examples it trained on.
  void step(double loss, long long examples) {
    ++unit_steps_;
    ++steps_done_;
    unit_examples_ += examples;
    loss_sum_ += loss;
    if (!is_terminal_) return;
    const auto now = Clock::now();
    if (now - last_draw_ < redraw_interval) return;
    last_draw_ = now;
    draw(now);
  }

  // Steps of the job that will not run (a diverged run stops early): the time left shrinks.
  void skip(long long steps) { total_steps_ = std::max(total_steps_ - steps, steps_done_ + 1); }

  struct Unit {
    long long steps = 0;
    double mean_loss = 0;  // over the unit's steps
    double examples_per_second = 0;
    double seconds = 0;       // the unit's wall time
    double seconds_left = 0;  // estimated, for the whole job

    // "loss 0.4123  51.2k ex/s  1:04 left"
    std::string describe() const {
      char text[96];
      std::snprintf(text, sizeof text, "loss %.4f  %s ex/s  %s left", mean_loss,
                    compact(examples_per_second).c_str(), clock_time(seconds_left).c_str());
      return text;
    }
  };

  Unit finish_unit() {
    const auto now = Clock::now();
    if (is_terminal_) {
      std::fprintf(terminal_, "\r\033[K");
      std::fflush(terminal_);
    }
    Unit unit;
    unit.steps = unit_steps_;
    unit.mean_loss = unit_steps_ > 0 ? loss_sum_ / static_cast<double>(unit_steps_) : 0.0;
    unit.seconds = seconds(now - unit_start_);
    unit.examples_per_second =
        unit.seconds > 0 ? static_cast<double>(unit_examples_) / unit.seconds : 0.0;
    unit.seconds_left = seconds_left(now);
    return unit;
  }

  static std::string clock_time(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    const long long total = std::llround(seconds);
    char text[32];
    if (total >= 3600)
      std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", total / 3600, total / 60 % 60,
                    total % 60);
    else
      std::snprintf(text, sizeof text, "%lld:%02lld", total / 60, total % 60);
    return text;
  }

  static std::string compact(double value) {
    char text[32];
    if (value >= 1e6)
      std::snprintf(text, sizeof text, "%.2fM", value / 1e6);
    else if (value >= 1e3)
      std::snprintf(text, sizeof text, "%.1fk", value / 1e3);
    else
      std::snprintf(text, sizeof text, "%.0f", value);
    return text;
  }

 private:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds redraw_interval{100};

  static double seconds(Clock::duration duration) {
    return std::chrono::duration<double>(duration).count();
  }

  // Elapsed job time (evaluation included) per step done, times the steps still to do.
  double seconds_left(Clock::time_point now) const {
    if (steps_done_ == 0) return std::nan("");
    const double per_step = seconds(now - job_start_) / static_cast<double>(steps_done_);
    return per_step * static_cast<double>(std::max(total_steps_ - steps_done_, 0LL));
  }

  void draw(Clock::time_point now) {
    constexpr int width = 24;
    const double fraction =
        std::min(1.0, static_cast<double>(unit_steps_) / static_cast<double>(unit_total_));
    const int filled = static_cast<int>(fraction * width);
    char bar[width + 1];
    for (int i = 0; i < width; ++i) bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    const double elapsed = seconds(now - unit_start_);
    Unit unit;
    unit.mean_loss = loss_sum_ / static_cast<double>(unit_steps_);
    unit.examples_per_second = elapsed > 0 ? static_cast<double>(unit_examples_) / elapsed : 0.0;
    unit.seconds_left = seconds_left(now);
    std::fprintf(terminal_, "\r\033[K%s [%s] %3.0f%%  %s", label_.c_str(), bar, 100 * fraction,
                 unit.describe().c_str());
    std::fflush(terminal_);
  }

  std::FILE* terminal_;
  bool is_terminal_;
  long long total_steps_;
  long long steps_done_ = 0;
  Clock::time_point job_start_, unit_start_, last_draw_;
  std::string label_;
  long long unit_total_ = 1, unit_steps_ = 0, unit_examples_ = 0;
  double loss_sum_ = 0;
};

}  // namespace examples
