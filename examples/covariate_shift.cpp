// Ioffe & Szegedy's Figure 1 on Fashion-MNIST: batch normalization speeds up training, and
// the inputs of a sigmoid layer no longer drift into saturation while the layers below
// learn ("internal covariate shift").
//
//   plain: 784 -> [Dense 100 -> Sigmoid] x 3 -> Dense 10
//   BN:    784 -> [Dense 100 without bias -> BatchNorm -> Sigmoid] x 3 -> Dense 10
//   plain SGD, lr 0.5, batch 60, 50,000 steps, every weight N(0, 0.01^2) and bias 0
//   (--init default: PyTorch's nn.Linear initialization)
//
// Every 1,000 steps: the test accuracy (eval mode), and the 15th, 50th and 85th percentiles
// over the test set of the input to each sigmoid of the last hidden layer (plain: W x + b;
// BN: the BatchNorm output with its running statistics). The figure shows the accuracy and
// the percentiles of unit 0; the summary gives the drift of the medians of all 100 units.
//
// Writes PREFIX.csv and PREFIX.svg (--output PREFIX), then the summary as key=value lines.
// The PyTorch 1.13 reference is the protocol of e1_sigmoid_mlp.py, whose results are quoted
// in the figure.

#include "common/command_line.hpp"
#include "common/csv_writer.hpp"
#include "common/evaluation.hpp"
#include "common/mlp.hpp"
#include "common/progress.hpp"
#include "common/seed_statistics.hpp"
#include "common/stopwatch.hpp"
#include "common/summary.hpp"
#include "common/svg_plot.hpp"
#include "common/training.hpp"

#include <bnorm/bnorm.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace svg = examples::svg;
using examples::mean;

struct Options {
  long long steps = 50000;
  long long checkpoint = 1000;
  bnorm::Index batch_size = 60;
  float learning_rate = 0.5f;
  std::string init = "gaussian";
  double sigma = 0.01;
  std::vector<std::uint64_t> seeds = {0};
  std::uint64_t data_seed = 12345;
  std::string data_directory = bnorm::fashion_mnist_default_directory.string();
  std::string output = "covariate_shift";
  bool quick = false;
};

constexpr bnorm::Index hidden_units = 100;
constexpr std::array<double, 3> quantiles = {15, 50, 85};
constexpr long long drift_from = 1000, drift_to = 5000;  // the reference's drift window
const std::array<std::string, 2> variants = {"plain", "bn"};

// PyTorch 1.13, e1_sigmoid_mlp.py (RESULTS.md, E1).
struct Reference {
  std::array<double, 6> accuracy;  // % at 1k, 2k, 5k, 10k, 20k, 50k steps, mean of 3 seeds
  std::array<long long, 3> steps_to_85;  // seeds 0, 1, 2
  double drift_1k_5k;                    // mean |delta p50| over the 100 units, seed 0
  double mean_abs_p50_50k;
};
constexpr std::array<long long, 6> reference_steps = {1000, 2000, 5000, 10000, 20000, 50000};
Reference reference(const std::string& init, const std::string& variant) {
  const bool bn = variant == "bn";
  if (init == "gaussian")
    return bn ? Reference{{77.92, 81.89, 85.33, 86.25, 87.53, 87.48}, {4000, 5000, 4000}, 0.49, 1.25}
              : Reference{{23.55, 43.27, 72.39, 84.55, 86.71, 87.80}, {10000, 11000, 12000}, 1.98, 2.49};
  return bn ? Reference{{82.44, 82.15, 85.95, 86.52, 88.13, 88.15}, {4000, 4000, 4000}, 0.50, 1.21}
            : Reference{{63.69, 77.34, 83.35, 85.14, 87.05, 88.27}, {8000, 8000, 7000}, 1.33, 3.01};
}

struct Checkpoint {
  long long step = 0;
  double accuracy = 0;
  double train_loss = NAN;  // mean over the steps since the previous checkpoint
  // Row q (p15, p50, p85), column u: that percentile of unit u's sigmoid input.
  Eigen::ArrayXXd percentiles;
};

struct Run {
  std::string variant{};
  std::uint64_t seed = 0;
  std::vector<Checkpoint> checkpoints{};
  long long diverged_step = 0;
  double train_seconds = 0, train_cpu_seconds = 0, run_seconds = 0;

  const Checkpoint* at(long long step) const {
    for (const auto& checkpoint : checkpoints)
      if (checkpoint.step == step) return &checkpoint;
    return nullptr;
  }
  // First checkpoint at or above `accuracy`; nullopt if never.
  std::optional<long long> steps_to(double accuracy) const {
    for (const auto& checkpoint : checkpoints)
      if (checkpoint.step > 0 && checkpoint.accuracy >= accuracy) return checkpoint.step;
    return std::nullopt;
  }
  // Mean over units of |p50(to) - p50(from)|.
  double drift(long long from, long long to) const {
    const Checkpoint *a = at(from), *b = at(to);
    if (!a || !b) return NAN;
    return (b->percentiles.row(1) - a->percentiles.row(1)).abs().mean();
  }
  bool has_drift_window() const { return at(drift_from) && at(drift_to); }
  // The drift over the reference's window (1k to 5k steps), or from the first to the last
  // checkpoint of a shorter run.
  double window_drift() const {
    if (has_drift_window()) return drift(drift_from, drift_to);
    return checkpoints.size() > 1 ? drift(checkpoints[1].step, checkpoints.back().step) : NAN;
  }
};

// numpy.percentile's default (linear interpolation between the order statistics), for
// ascending `qs`. Reorders `values`.
std::array<double, 3> percentiles(std::vector<float>& values, const std::array<double, 3>& qs) {
  std::array<double, 3> result{};
  const auto n = static_cast<std::ptrdiff_t>(values.size());
  std::ptrdiff_t sorted_from = 0;  // values before this index are final order statistics
  for (std::size_t i = 0; i < qs.size(); ++i) {
    const double position = qs[i] / 100.0 * static_cast<double>(n - 1);
    const auto k = static_cast<std::ptrdiff_t>(std::floor(position));
    std::nth_element(values.begin() + sorted_from, values.begin() + k, values.end());
    const double low = values[static_cast<std::size_t>(k)];
    const double high = k + 1 < n ? *std::min_element(values.begin() + k + 1, values.end()) : low;
    result[i] = low + (position - static_cast<double>(k)) * (high - low);
    sorted_from = k;
  }
  return result;
}

std::size_t last_sigmoid_input(const bnorm::Sequential<float>& net) {
  for (std::size_t i = net.size(); i-- > 1;)
    if (net.holds<bnorm::Sigmoid<float>>(i)) return i - 1;
  throw bnorm::Error("covariate_shift: the network has no sigmoid");
}

Checkpoint measure(bnorm::Sequential<float>& net, const bnorm::Dataset<float>& test,
                   long long step, double train_loss, bnorm::Matrix<float>& probe) {
  const std::size_t probe_layer = last_sigmoid_input(net);
  probe.resize(hidden_units, test.size());
  Checkpoint checkpoint;
  checkpoint.step = step;
  checkpoint.train_loss = train_loss;
  checkpoint.accuracy = examples::eval_accuracy(
      net, test, 5000, [&](bnorm::Index first, bnorm::Index count) {
        probe.middleCols(first, count) = net.layer_output(probe_layer);
      });
  checkpoint.percentiles.resize(3, hidden_units);
  std::vector<float> values(static_cast<std::size_t>(test.size()));
  for (bnorm::Index unit = 0; unit < hidden_units; ++unit) {
    for (bnorm::Index j = 0; j < test.size(); ++j) values[static_cast<std::size_t>(j)] = probe(unit, j);
    const auto q = percentiles(values, quantiles);
    for (int i = 0; i < 3; ++i) checkpoint.percentiles(i, unit) = q[static_cast<std::size_t>(i)];
  }
  return checkpoint;
}

Run train(const Options& options, const std::string& variant, std::uint64_t seed,
          const bnorm::TrainTestSplit<float>& data, examples::Progress& progress) {
  const examples::Stopwatch run_clock;
  bnorm::manual_seed(seed);
  bnorm::Sequential<float> net = examples::build_mlp(
      {.hidden = {hidden_units, hidden_units, hidden_units},
       .activation = examples::Activation::sigmoid,
       .batch_norm = variant == "bn",
       .init = options.init == "gaussian" ? bnorm::Init::gaussian(options.sigma)
                                          : bnorm::Init::pytorch_default()});
  examples::Training<float> training(net, data.train, options.batch_size, options.data_seed,
                                     {.lr = options.learning_rate});
  Run run{.variant = variant, .seed = seed};
  bnorm::Matrix<float> probe;
  run.checkpoints.push_back(measure(net, data.test, 0, NAN, probe));
  while (training.steps() < options.steps) {
    const long long steps = std::min(options.checkpoint, options.steps - training.steps());
    char label[64];
    std::snprintf(label, sizeof label, "%-5s seed %llu steps %lldk", variant.c_str(),
                  static_cast<unsigned long long>(seed),
                  (training.steps() + steps) / 1000);
    progress.start_unit(label, steps);
    const bool finite = training.run_steps(steps, progress);
    const auto unit = progress.finish_unit();
    if (!finite) {
      run.diverged_step = training.diverged_step();
      progress.skip(options.steps - training.steps());
      std::printf("%-5s seed %llu diverged at step %lld (non-finite loss)\n", variant.c_str(),
                  static_cast<unsigned long long>(seed), run.diverged_step);
      break;
    }
    run.checkpoints.push_back(measure(net, data.test, training.steps(), unit.mean_loss, probe));
    const auto& last = run.checkpoints.back();
    std::printf("%-5s seed %llu step %6lld  test_accuracy %.4f  unit0 p15/p50/p85 %+.2f/%+.2f/%+.2f"
                "  %s\n",
                variant.c_str(), static_cast<unsigned long long>(seed), last.step, last.accuracy,
                last.percentiles(0, 0), last.percentiles(1, 0), last.percentiles(2, 0),
                unit.describe().c_str());
    std::fflush(stdout);
  }
  run.train_seconds = training.seconds();
  run.train_cpu_seconds = training.cpu_seconds();
  run.run_seconds = run_clock.wall_seconds();
  return run;
}

std::string step_name(long long step) {
  return step % 1000 == 0 ? std::to_string(step / 1000) + "k" : std::to_string(step);
}

// Accuracy of the runs of `variant` at `step` (a diverged run counts 10% from then on).
std::vector<double> accuracies(const std::vector<Run>& runs, const std::string& variant,
                               long long step) {
  std::vector<double> values;
  for (const auto& run : runs) {
    if (run.variant != variant) continue;
    const Checkpoint* checkpoint = run.at(step);
    values.push_back(checkpoint ? checkpoint->accuracy : 0.1);
  }
  return values;
}

void write_csv(const std::string& path, const std::vector<Run>& runs) {
  examples::CsvWriter csv(path, {"seed", "variant", "step", "test_accuracy", "train_loss",
                                 "unit0_p15", "unit0_p50", "unit0_p85", "mean_abs_p50",
                                 "mean_width_p15_p85"});
  for (const auto& run : runs)
    for (const auto& c : run.checkpoints)
      csv.row(run.seed, run.variant, c.step, c.accuracy, c.train_loss, c.percentiles(0, 0),
              c.percentiles(1, 0), c.percentiles(2, 0), c.percentiles.row(1).abs().mean(),
              (c.percentiles.row(2) - c.percentiles.row(0)).mean());
}

void write_figure(const std::string& path, const Options& options, const std::vector<Run>& runs) {
  const std::string colors[2] = {svg::colors::vermillion, svg::colors::blue};
  const std::string names[2] = {"without BN", "with BN"};
  const std::size_t seeds = options.seeds.size();

  // A log step axis: the first thousands of steps, where the two networks differ, get room.
  svg::Plot accuracy{.title = "(a) Test accuracy",
                     .x = {.label = "training steps (log scale)", .scale = svg::Scale::log10,
                           .min = static_cast<double>(options.checkpoint),
                           .max = static_cast<double>(options.steps),
                           .format = svg::format_thousands},
                     .y = {.label = "test accuracy (%)", .min = 0, .max = 100}};
  for (long long step : reference_steps)
    if (step <= options.steps) accuracy.x.ticks.push_back(static_cast<double>(step));
  if (accuracy.x.ticks.size() < 2) accuracy.x.ticks.clear();  // short runs: decades
  for (int v = 0; v < 2; ++v) {
    std::vector<double> steps, sum;
    int count = 0;
    for (const auto& run : runs) {
      if (run.variant != variants[static_cast<std::size_t>(v)]) continue;
      svg::Line line{.x = {}, .y = {}, .color = colors[v], .width = 1, .opacity = 0.35};
      for (const auto& c : run.checkpoints) {
        line.x.push_back(static_cast<double>(c.step));
        line.y.push_back(100 * c.accuracy);
      }
      if (count == 0) {
        steps = line.x;
        sum.assign(steps.size(), 0.0);
      }
      for (std::size_t i = 0; i < std::min(sum.size(), line.y.size()); ++i) sum[i] += line.y[i];
      ++count;
      if (seeds > 1) accuracy.lines.push_back(std::move(line));
    }
    for (double& s : sum) s /= count;
    accuracy.lines.push_back({.label = "bnorm, " + names[v] +
                                       (seeds > 1 ? " (mean of " + std::to_string(seeds) + " seeds)" : ""),
                              .x = steps, .y = sum, .color = colors[v], .width = 2.2});
    const Reference ref = reference(options.init, variants[static_cast<std::size_t>(v)]);
    svg::Line torch{.label = "PyTorch, " + names[v] + " (mean of 3 seeds)", .x = {}, .y = {},
                    .color = colors[v], .width = 1.2, .dashed = true,
                    .marker = svg::Marker::open_circle};
    for (std::size_t i = 0; i < reference_steps.size(); ++i)
      if (reference_steps[i] <= options.steps) {
        torch.x.push_back(static_cast<double>(reference_steps[i]));
        torch.y.push_back(ref.accuracy[i]);
      }
    accuracy.lines.push_back(std::move(torch));
  }
  accuracy.guides.push_back({.value = 85, .label = "85%"});
  accuracy.legend = svg::Position::bottom_right;

  // The percentile panels share one y range, so that the two spreads compare at a glance.
  double low = 0, high = 0;
  for (const auto& run : runs)
    if (run.seed == options.seeds.front())
      for (const auto& c : run.checkpoints) {
        low = std::min(low, c.percentiles(0, 0));
        high = std::max(high, c.percentiles(2, 0));
      }
  const double step = svg::detail::nice_step(high - low, 5);
  low = std::floor(low / step) * step;
  high = std::ceil(high / step) * step;

  std::vector<svg::Plot> panels = {accuracy};
  for (int v = 0; v < 2; ++v) {
    const auto& variant = variants[static_cast<std::size_t>(v)];
    svg::Plot plot{.title = std::string(v == 0 ? "(b) " : "(c) ") + "Sigmoid input, " + names[v],
                   .x = {.label = "training steps", .min = 0, .format = svg::format_thousands},
                   .y = {.label = "sigmoid input (unit 0, hidden layer 3)", .min = low,
                         .max = high}};
    for (const auto& run : runs) {
      if (run.variant != variant || run.seed != options.seeds.front()) continue;
      svg::Band band{.label = "15th to 85th percentile", .color = colors[v], .opacity = 0.22};
      svg::Line median{.label = "median (50th percentile)", .color = colors[v], .width = 2.2};
      svg::Line p15{.color = colors[v], .width = 1}, p85{.color = colors[v], .width = 1};
      for (const auto& c : run.checkpoints) {
        if (c.step == 0) continue;  // at initialization the gaussian-init inputs are all ~0
        const double x = static_cast<double>(c.step);
        band.x.push_back(x);
        band.low.push_back(c.percentiles(0, 0));
        band.high.push_back(c.percentiles(2, 0));
        for (auto* line : {&p15, &median, &p85}) line->x.push_back(x);
        p15.y.push_back(c.percentiles(0, 0));
        median.y.push_back(c.percentiles(1, 0));
        p85.y.push_back(c.percentiles(2, 0));
      }
      plot.bands.push_back(std::move(band));
      plot.lines = {p15, median, p85};
      const Reference ref = reference(options.init, variant);
      char note[160];
      std::snprintf(note, sizeof note,
                    "100 units: mean |median shift| 1k to 5k: %.2f (PyTorch %.2f)",
                    run.drift(drift_from, drift_to), ref.drift_1k_5k);
      if (run.has_drift_window()) plot.notes.push_back(note);
      std::snprintf(note, sizeof note, "100 units: mean |median| at %s: %.2f (PyTorch at 50k: %.2f)",
                    step_name(run.checkpoints.back().step).c_str(),
                    run.checkpoints.back().percentiles.row(1).abs().mean(), ref.mean_abs_p50_50k);
      plot.notes.push_back(note);
    }
    plot.guides.push_back({.value = 0, .label = "sigmoid centre"});
    plot.legend = svg::Position::bottom_right;
    panels.push_back(std::move(plot));
  }

  char subtitle[256];
  std::snprintf(subtitle, sizeof subtitle,
                "784 -> 3 x 100 sigmoid -> 10, plain SGD lr %g, batch %lld, %s init; test set "
                "evaluated every %lld steps, BN in eval mode (running statistics).",
                static_cast<double>(options.learning_rate),
                static_cast<long long>(options.batch_size),
                options.init == "gaussian" ? ("N(0, " + svg::format_number(options.sigma) + "^2)").c_str()
                                           : "PyTorch default",
                options.checkpoint);
  svg::Figure figure{
      .title = "Internal covariate shift on Fashion-MNIST (Ioffe & Szegedy 2015, Figure 1)",
      .panels = std::move(panels),
      .notes = {subtitle,
                "Dashed lines with open circles: PyTorch 1.13 on the same protocol (e1_sigmoid_mlp.py). "
                "Percentiles: seed " + std::to_string(options.seeds.front()) +
                    "; unit 0 is a different random unit in each library, compare the all-unit "
                    "statistics."}};
  figure.panel_width = 440;
  figure.save(path);
}

void summarize(const Options& options, const std::vector<Run>& runs,
               const examples::Stopwatch& total) {
  examples::Summary summary;
  summary.add("example", "covariate_shift");
  summary.add("init", options.init);
  std::vector<double> seed_list(options.seeds.begin(), options.seeds.end());
  summary.add("seeds", seed_list);
  summary.add("steps", options.steps);
  const long long last_step = options.steps;
  for (const auto& variant : variants) {
    for (long long step : reference_steps)
      if (step < last_step && step % options.checkpoint == 0)
        summary.add(variant + "_accuracy_" + step_name(step), mean(accuracies(runs, variant, step)));
    summary.add(variant + "_accuracy_final", mean(accuracies(runs, variant, last_step)));
    summary.add(variant + "_accuracy_final_seeds", accuracies(runs, variant, last_step));
    std::string reached;
    std::vector<double> drifts, drifts_late, mean_abs, train_seconds, train_cpu_seconds,
        run_seconds;
    int diverged = 0;
    for (const auto& run : runs) {
      if (run.variant != variant) continue;
      const auto step = run.steps_to(0.85);
      reached += (reached.empty() ? "" : ",") + (step ? std::to_string(*step) : std::string("none"));
      drifts.push_back(run.window_drift());
      if (run.has_drift_window()) drifts_late.push_back(run.drift(drift_to, run.checkpoints.back().step));
      mean_abs.push_back(run.checkpoints.back().percentiles.row(1).abs().mean());
      train_seconds.push_back(run.train_seconds);
      train_cpu_seconds.push_back(run.train_cpu_seconds);
      run_seconds.push_back(run.run_seconds);
      diverged += run.diverged_step > 0;
      if (run.seed == options.seeds.front())
        for (long long step : {drift_from, drift_to, run.checkpoints.back().step})
          if (const Checkpoint* c = run.at(step); c && step > 0)
            for (int q = 0; q < 3; ++q)
              summary.add(variant + "_unit0_p" + std::to_string(static_cast<int>(quantiles[static_cast<std::size_t>(q)])) +
                              "_" + (step == run.checkpoints.back().step ? std::string("final") : step_name(step)),
                          c->percentiles(q, 0));
    }
    summary.add(variant + "_steps_to_85_seeds", reached);
    summary.add(variant + "_drift_p50", mean(drifts));
    summary.add(variant + "_drift_p50_seeds", drifts);
    if (!drifts_late.empty()) {
      summary.add(variant + "_drift_p50_late", mean(drifts_late));
      summary.add(variant + "_drift_p50_late_seeds", drifts_late);
    }
    summary.add(variant + "_mean_abs_p50_final", mean(mean_abs));
    summary.add(variant + "_diverged_runs", diverged);
    summary.add(variant + "_train_seconds", mean(train_seconds));
    summary.add(variant + "_train_cpu_seconds", mean(train_cpu_seconds));
    summary.add(variant + "_run_seconds", mean(run_seconds));
  }
  summary.add("drift_window", runs.front().has_drift_window() ? "1k-5k" : "first-last");
  std::vector<double> plain, bn;
  for (const auto& run : runs) (run.variant == "bn" ? bn : plain).push_back(run.window_drift());
  summary.add("drift_ratio_plain_to_bn", mean(plain) / mean(bn));
  summary.add("total_seconds", total.wall_seconds());
  summary.add("total_cpu_seconds", total.cpu_seconds());
  summary.print();
}

int run(Options options) {
  if (options.quick) {
    options.steps = 600;
    options.checkpoint = 100;
    options.seeds.resize(1);
  }
  const examples::Stopwatch total;
  const auto data = bnorm::load_fashion_mnist<float>(options.data_directory);
  std::printf("covariate_shift: 784 -> 3 x %lld sigmoid -> 10, plain vs BatchNorm; SGD lr %g, "
              "batch %lld, %lld steps, init %s, seeds",
              static_cast<long long>(hidden_units), static_cast<double>(options.learning_rate),
              static_cast<long long>(options.batch_size), options.steps, options.init.c_str());
  for (auto seed : options.seeds) std::printf(" %llu", static_cast<unsigned long long>(seed));
  std::printf("\n");
  std::fflush(stdout);

  examples::Progress progress(2 * options.steps * static_cast<long long>(options.seeds.size()));
  std::vector<Run> runs;
  for (auto seed : options.seeds)
    for (const auto& variant : variants) runs.push_back(train(options, variant, seed, data, progress));

  write_csv(options.output + ".csv", runs);
  write_figure(options.output + ".svg", options, runs);
  std::printf("wrote %s.csv and %s.svg\n", options.output.c_str(), options.output.c_str());
  summarize(options, runs, total);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"Internal covariate shift (Ioffe & Szegedy's Figure 1) on Fashion-MNIST: a "
               "sigmoid MLP with and without batch normalization."};
  app.add_option("--steps", options.steps, "Training steps per run")
      ->check(CLI::Range(1LL, 100000000LL))
      ->capture_default_str();
  app.add_option("--checkpoint", options.checkpoint, "Steps between test evaluations")
      ->check(CLI::Range(1LL, 100000000LL))
      ->capture_default_str();
  examples::add_batch_option(app, options.batch_size);
  examples::add_learning_rate_option(app, options.learning_rate, "SGD learning rate (no momentum)");
  app.add_option("--init", options.init, "Weights: gaussian N(0, sigma^2) with zero biases, or "
                                          "default (PyTorch's nn.Linear)")
      ->check(CLI::IsMember({"gaussian", "default"}))
      ->capture_default_str();
  app.add_option("--sigma", options.sigma, "Standard deviation of the gaussian init")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  examples::add_seed_options(
      app, options.seeds, "Initialization seeds, one run per seed and variant", options.data_seed);
  examples::add_data_and_output_options(app, options.data_directory, options.output, options.quick,
                                        "Smoke test: 600 steps, a checkpoint every 100, one seed");
  return examples::run_main(app, argc, argv, "covariate_shift", [&] { return run(options); });
}
