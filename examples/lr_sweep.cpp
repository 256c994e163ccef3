// Batch normalization makes a much wider range of learning rates work.
//
//   plain: 784 -> [Dense 256 -> ReLU] x 3 -> Dense 10
//   BN:    784 -> [Dense 256 without bias -> BatchNorm -> ReLU] x 3 -> Dense 10
//   SGD momentum 0.9, batch 64, 2 epochs, PyTorch's default init,
//   learning rates 0.001, 0.003, 0.01, ..., 10
//
// For each learning rate, both networks are trained from the same seed and tested in eval
// mode. A non-finite training loss stops a run, which then counts 10% (chance), as in the
// PyTorch reference (e2_lr_robustness.py). The summary gives the range of learning rates
// reaching 85% and its width (largest / smallest).
//
// Writes PREFIX.csv and PREFIX.svg (--output PREFIX), then the summary as key=value lines.

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
#include <map>
#include <string>
#include <vector>

namespace {

namespace svg = examples::svg;

struct Options {
  std::vector<double> learning_rates = {0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10};
  int epochs = 2;
  bnorm::Index batch_size = 64;
  float momentum = 0.9f;
  bnorm::Index hidden_units = 256;
  int hidden_blocks = 3;
  double threshold = 0.85;
  std::vector<std::uint64_t> seeds = {0};
  std::uint64_t data_seed = 12345;
  bnorm::Index train_examples = 0;  // 0: all 60,000
  std::string data_directory = bnorm::fashion_mnist_default_directory.string();
  std::string output = "lr_sweep";
  bool quick = false;
};

const std::array<std::string, 2> variants = {"plain", "bn"};

// PyTorch 1.13, e2_lr_robustness.py (RESULTS.md, E2): final test accuracy (%), mean of
// seeds 0, 1, 2, by learning rate.
const std::map<double, std::array<double, 2>> reference = {
    {0.001, {73.04, 86.59}}, {0.003, {80.39, 86.99}}, {0.01, {84.28, 86.94}},
    {0.03, {84.67, 86.29}},  {0.1, {83.57, 85.78}},   {0.3, {10.00, 85.15}},
    {1, {10.00, 53.28}},     {3, {10.00, 10.00}},     {10, {10.00, 10.00}}};

struct Run {
  std::string variant{};
  std::uint64_t seed = 0;
  double learning_rate = 0;
  std::vector<double> epoch_accuracy{}, epoch_loss{};
  long long diverged_step = 0;  // 0: finished
  double final_accuracy = 0.1;
  double train_seconds = 0, train_cpu_seconds = 0;
};

std::string rate_name(double rate) { return svg::format_number(rate); }

Run train(const Options& options, const std::string& variant, std::uint64_t seed, double rate,
          const bnorm::Dataset<float>& train_set, const bnorm::Dataset<float>& test,
          examples::Progress& progress) {
  bnorm::manual_seed(seed);
  const std::vector<bnorm::Index> hidden(static_cast<std::size_t>(options.hidden_blocks),
                                         options.hidden_units);
  bnorm::Sequential<float> net = examples::build_mlp(
      {.hidden = hidden, .activation = examples::Activation::relu, .batch_norm = variant == "bn"});
  examples::Training<float> training(net, train_set, options.batch_size, options.data_seed,
                                     {.lr = static_cast<float>(rate), .momentum = options.momentum});
  Run run{.variant = variant, .seed = seed, .learning_rate = rate};
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    char label[64];
    std::snprintf(label, sizeof label, "%-5s lr %-5s seed %llu epoch %d/%d", variant.c_str(),
                  rate_name(rate).c_str(), static_cast<unsigned long long>(seed), epoch,
                  options.epochs);
    progress.start_unit(label, training.steps_per_epoch());
    const bool finite = training.run_epoch(progress);
    run.train_seconds = training.seconds();
    run.train_cpu_seconds = training.cpu_seconds();
    const auto unit = progress.finish_unit();
    if (!finite) {
      run.diverged_step = training.diverged_step();
      progress.skip(training.steps_per_epoch() * (options.epochs - epoch + 1) - unit.steps);
      std::printf("%s  diverged at step %lld (non-finite loss): counts 10%%\n", label,
                  run.diverged_step);
      break;
    }
    run.epoch_accuracy.push_back(examples::eval_accuracy(net, test));
    run.epoch_loss.push_back(unit.mean_loss);
    std::printf("%s  test_accuracy %.4f  %s\n", label, run.epoch_accuracy.back(),
                unit.describe().c_str());
    std::fflush(stdout);
  }
  if (run.diverged_step == 0) run.final_accuracy = run.epoch_accuracy.back();
  return run;
}

std::vector<const Run*> select(const std::vector<Run>& runs, const std::string& variant,
                               double rate) {
  std::vector<const Run*> chosen;
  for (const auto& run : runs)
    if (run.variant == variant && run.learning_rate == rate) chosen.push_back(&run);
  return chosen;
}

std::vector<double> final_accuracies(const std::vector<Run>& runs, const std::string& variant,
                                     double rate) {
  std::vector<double> values;
  for (const Run* run : select(runs, variant, rate)) values.push_back(run->final_accuracy);
  return values;
}

// The learning rates of one seed's runs reaching the threshold: "0.001-0.3", or "none".
struct RateRange {
  double low = 0, high = 0;
  bool empty() const { return low == 0; }
  double width() const { return empty() ? 0 : high / low; }
  std::string text() const { return empty() ? "none" : rate_name(low) + "-" + rate_name(high); }
};
RateRange rate_range(const std::vector<Run>& runs, const std::string& variant, std::uint64_t seed,
                     double threshold) {
  RateRange range;
  for (const auto& run : runs)
    if (run.variant == variant && run.seed == seed && run.final_accuracy >= threshold) {
      range.low = range.empty() ? run.learning_rate : std::min(range.low, run.learning_rate);
      range.high = std::max(range.high, run.learning_rate);
    }
  return range;
}

void write_csv(const std::string& path, const std::vector<Run>& runs) {
  examples::CsvWriter csv(path, {"seed", "variant", "lr", "final_test_accuracy", "diverged_step",
                                 "epoch", "test_accuracy", "train_loss", "train_seconds"});
  for (const auto& run : runs) {
    if (run.epoch_accuracy.empty())
      csv.row(run.seed, run.variant, run.learning_rate, run.final_accuracy, run.diverged_step, 0,
              std::nan(""), std::nan(""), run.train_seconds);
    for (std::size_t e = 0; e < run.epoch_accuracy.size(); ++e)
      csv.row(run.seed, run.variant, run.learning_rate, run.final_accuracy, run.diverged_step,
              static_cast<int>(e + 1), run.epoch_accuracy[e], run.epoch_loss[e],
              run.train_seconds);
  }
}

void write_figure(const std::string& path, const Options& options, const std::vector<Run>& runs) {
  const std::string colors[2] = {svg::colors::vermillion, svg::colors::blue};
  const std::string names[2] = {"without BN", "with BN"};
  const std::size_t seeds = options.seeds.size();
  svg::Plot plot{.title = "Final test accuracy after " + std::to_string(options.epochs) +
                          (options.epochs == 1 ? " epoch" : " epochs"),
                 .x = {.label = "learning rate (SGD, momentum 0.9)",
                       .scale = svg::Scale::log10,
                       .ticks = options.learning_rates},
                 .y = {.label = "test accuracy (%)", .min = 0, .max = 100}};
  std::vector<std::string> range_notes;
  for (int v = 0; v < 2; ++v) {
    const auto& variant = variants[static_cast<std::size_t>(v)];
    svg::Line mean{.label = "bnorm, " + names[v] +
                            (seeds > 1 ? " (mean of " + std::to_string(seeds) + " seeds)" : ""),
                   .color = colors[v], .width = 2.2, .marker = svg::Marker::circle};
    svg::Line each{.label = seeds > 1 ? "bnorm, " + names[v] + ", each seed" : "",
                   .color = colors[v], .width = 0, .marker = svg::Marker::circle, .opacity = 0.35};
    svg::Line diverged{.label = "", .color = colors[v], .width = 0, .marker = svg::Marker::cross};
    svg::Line torch{.label = "PyTorch, " + names[v] + " (mean of 3 seeds)", .color = colors[v],
                    .width = 1.2, .dashed = true, .marker = svg::Marker::open_circle};
    for (double rate : options.learning_rates) {
      mean.x.push_back(rate);
      mean.y.push_back(100 * examples::mean(final_accuracies(runs, variant, rate)));
      for (const Run* run : select(runs, variant, rate)) {
        svg::Line& target = run->diverged_step > 0 ? diverged : each;
        target.x.push_back(rate);
        target.y.push_back(100 * run->final_accuracy);
      }
      if (auto found = reference.find(rate); found != reference.end()) {
        torch.x.push_back(rate);
        torch.y.push_back(found->second[static_cast<std::size_t>(v)]);
      }
    }
    if (!diverged.x.empty()) diverged.label = "bnorm, " + names[v] + ": diverged (NaN loss)";
    plot.lines.push_back(torch);
    if (seeds > 1) plot.lines.push_back(each);
    plot.lines.push_back(mean);
    if (!diverged.x.empty()) plot.lines.push_back(diverged);
    std::string ranges;
    for (auto seed : options.seeds) {
      const RateRange range = rate_range(runs, variant, seed, options.threshold);
      ranges += (ranges.empty() ? "" : ", ") + range.text() +
                (range.empty() ? "" : " (" + svg::format_number(range.width()) + "x)");
    }
    range_notes.push_back("bnorm " + names[v] + ": " + ranges);
  }
  plot.guides.push_back({.value = 100 * options.threshold,
                         .label = svg::format_number(100 * options.threshold) + "%"});
  plot.legend = svg::Position::bottom_left;

  // The same curves around the threshold, where "reaches 85%" is decided.
  svg::Plot zoom = plot;
  zoom.title = "(b) Zoom on the threshold";
  zoom.y.min = 100 * options.threshold - 15;
  zoom.y.max = 100 * options.threshold + 5;
  for (auto& line : zoom.lines) line.label.clear();
  zoom.notes = {"learning rates reaching " + svg::format_number(100 * options.threshold) +
                "% (width: largest / smallest), by seed:"};
  zoom.notes.insert(zoom.notes.end(), range_notes.begin(), range_notes.end());
  zoom.notes.push_back("PyTorch with BN: 0.001-0.3 (300x), 0.001-0.1 (100x), 0.001-0.3 (300x)");
  zoom.notes.push_back("PyTorch without BN: none (best 84.7%, lr 0.03)");
  plot.title = "(a) " + plot.title;

  char subtitle[256];
  std::snprintf(subtitle, sizeof subtitle,
                "784 -> %d x [%lld -> (BatchNorm) -> ReLU] -> 10, SGD momentum %g, batch %lld, "
                "%d epochs, PyTorch default init; test accuracy in eval mode.",
                options.hidden_blocks, static_cast<long long>(options.hidden_units),
                static_cast<double>(options.momentum), static_cast<long long>(options.batch_size),
                options.epochs);
  svg::Figure figure{.title = "Learning-rate range with and without batch normalization "
                              "(Fashion-MNIST)",
                     .panels = {plot, zoom},
                     .notes = {subtitle,
                               "A non-finite training loss stops a run, which counts 10% "
                               "(crosses). Dashed lines with open circles: PyTorch 1.13 on the "
                               "same protocol (e2_lr_robustness.py)."}};
  figure.panel_width = 540;
  figure.panel_height = 440;
  figure.save(path);
}

void summarize(const Options& options, const std::vector<Run>& runs,
               const examples::Stopwatch& total) {
  examples::Summary summary;
  summary.add("example", "lr_sweep");
  summary.add("seeds", std::vector<double>(options.seeds.begin(), options.seeds.end()));
  summary.add("epochs", options.epochs);
  summary.add("learning_rates", options.learning_rates);
  summary.add("threshold", options.threshold);
  for (const auto& variant : variants) {
    double best = 0, best_rate = 0;
    for (double rate : options.learning_rates) {
      const auto values = final_accuracies(runs, variant, rate);
      summary.add(variant + "_accuracy_lr_" + rate_name(rate), examples::mean(values));
      if (values.size() > 1)
        summary.add(variant + "_accuracy_lr_" + rate_name(rate) + "_seeds", values);
      if (examples::mean(values) > best) {
        best = examples::mean(values);
        best_rate = rate;
      }
    }
    summary.add(variant + "_best_accuracy", best);
    summary.add(variant + "_best_lr", best_rate);
    std::string ranges;
    std::vector<double> widths;
    for (auto seed : options.seeds) {
      const RateRange range = rate_range(runs, variant, seed, options.threshold);
      ranges += (ranges.empty() ? "" : ",") + range.text();
      widths.push_back(range.width());
    }
    summary.add(variant + "_lr_range_seeds", ranges);
    summary.add(variant + "_lr_width_seeds", widths);
    std::vector<double> diverged_rates;
    int diverged = 0;
    double seconds = 0, cpu_seconds = 0;
    for (const auto& run : runs) {
      if (run.variant != variant) continue;
      seconds += run.train_seconds;
      cpu_seconds += run.train_cpu_seconds;
      if (run.diverged_step == 0) continue;
      ++diverged;
      if (std::find(diverged_rates.begin(), diverged_rates.end(), run.learning_rate) ==
          diverged_rates.end())
        diverged_rates.push_back(run.learning_rate);
    }
    summary.add(variant + "_diverged_runs", diverged);
    if (diverged_rates.empty())
      summary.add(variant + "_diverged_lrs", "none");
    else
      summary.add(variant + "_diverged_lrs", diverged_rates);
    summary.add(variant + "_train_seconds", seconds);
    summary.add(variant + "_train_cpu_seconds", cpu_seconds);
  }
  summary.add("total_seconds", total.wall_seconds());
  summary.add("total_cpu_seconds", total.cpu_seconds());
  summary.print();
}

int run(Options options) {
  if (options.quick) {
    options.learning_rates = {0.01, 0.1, 1};
    options.epochs = 1;
    options.train_examples = 6400;
    options.seeds.resize(1);
  }
  const examples::Stopwatch total;
  auto data = bnorm::load_fashion_mnist<float>(options.data_directory);
  examples::keep_first_examples(data.train, options.train_examples);
  std::printf("lr_sweep: 784 -> %d x %lld ReLU -> 10, plain vs BatchNorm; SGD momentum %g, "
              "batch %lld, %d epochs on %lld examples; %zu learning rates; seeds",
              options.hidden_blocks, static_cast<long long>(options.hidden_units),
              static_cast<double>(options.momentum), static_cast<long long>(options.batch_size),
              options.epochs, static_cast<long long>(data.train.size()),
              options.learning_rates.size());
  for (auto seed : options.seeds) std::printf(" %llu", static_cast<unsigned long long>(seed));
  std::printf("\n");
  std::fflush(stdout);

  const long long steps_per_run =
      options.epochs * ((data.train.size() + options.batch_size - 1) / options.batch_size);
  examples::Progress progress(steps_per_run * 2 *
                              static_cast<long long>(options.learning_rates.size() *
                                                     options.seeds.size()));
  std::vector<Run> runs;
  for (auto seed : options.seeds)
    for (const auto& variant : variants)
      for (double rate : options.learning_rates)
        runs.push_back(train(options, variant, seed, rate, data.train, data.test, progress));

  write_csv(options.output + ".csv", runs);
  write_figure(options.output + ".svg", options, runs);
  std::printf("wrote %s.csv and %s.svg\n", options.output.c_str(), options.output.c_str());
  summarize(options, runs, total);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"Learning-rate range of an MLP with and without batch normalization on "
               "Fashion-MNIST."};
  app.add_option("--lrs", options.learning_rates, "Learning rates to try")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  examples::add_epochs_option(app, options.epochs);
  examples::add_batch_option(app, options.batch_size);
  examples::add_momentum_option(app, options.momentum);
  examples::add_hidden_units_option(app, options.hidden_units);
  examples::add_hidden_blocks_option(app, options.hidden_blocks);
  app.add_option("--threshold", options.threshold, "Test accuracy a learning rate must reach")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  examples::add_seed_options(app, options.seeds, "Initialization seeds, one sweep per seed",
                             options.data_seed);
  examples::add_train_examples_option(app, options.train_examples);
  examples::add_data_and_output_options(
      app, options.data_directory, options.output, options.quick,
      "Smoke test: learning rates 0.01, 0.1, 1; one epoch of 6,400 images; one seed");
  return examples::run_main(app, argc, argv, "lr_sweep", [&] { return run(options); });
}
