// Does batch normalization regularize? Ioffe & Szegedy: each example is normalized with the
// statistics of a random mini-batch, a noise that acts "slightly" like Dropout. The noise
// shrinks as the batch grows, so the effect should too.
//
//   plain:   784 -> [Dense 256 -> ReLU] x 3 -> Dense 10
//   BN:      784 -> [Dense 256 without bias -> BatchNorm -> ReLU] x 3 -> Dense 10
//   Dropout: 784 -> [Dense 256 -> ReLU -> Dropout(0.2)] x 3 -> Dense 10
//   SGD momentum 0.9, lr 0.05, PyTorch's default init, 30 epochs on the first 10,000
//   training images (so that the networks overfit within seconds), batch 32 and 512
//
// After every epoch: the accuracy on those 10,000 training images and on the 10,000 test
// images, both in eval mode. The generalization gap is train minus test accuracy at the end;
// a regularizer narrows it (and, ideally, raises the test accuracy).
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
#include <string>
#include <vector>

namespace {

namespace svg = examples::svg;

struct Options {
  std::vector<bnorm::Index> batch_sizes = {32, 512};
  int epochs = 30;
  bnorm::Index train_examples = 10000;
  float learning_rate = 0.05f;
  float momentum = 0.9f;
  double dropout = 0.2;
  bnorm::Index hidden_units = 256;
  int hidden_blocks = 3;
  std::vector<std::uint64_t> seeds = {0};
  std::uint64_t data_seed = 12345;
  std::string data_directory = bnorm::fashion_mnist_default_directory.string();
  std::string output = "regularization";
  bool quick = false;
};

const std::array<std::string, 3> variants = {"plain", "bn", "dropout"};
const std::array<std::string, 3> variant_names = {"without BN", "with BN", "Dropout, no BN"};
const std::array<std::string, 3> variant_colors = {svg::colors::vermillion, svg::colors::blue,
                                                   svg::colors::green};

struct Run {
  std::string variant{};
  bnorm::Index batch_size = 0;
  std::uint64_t seed = 0;
  std::vector<double> train_accuracy{}, test_accuracy{}, train_loss{};  // per epoch
  long long diverged_step = 0;
  double train_seconds = 0, train_cpu_seconds = 0;

  double final_train() const { return diverged_step ? 0.1 : train_accuracy.back(); }
  double final_test() const { return diverged_step ? 0.1 : test_accuracy.back(); }
  double gap() const { return final_train() - final_test(); }
  double best_test() const {
    double best = 0.1;
    for (double accuracy : test_accuracy) best = std::max(best, accuracy);
    return best;
  }
};

Run train(const Options& options, const std::string& variant, bnorm::Index batch_size,
          std::uint64_t seed, const bnorm::TrainTestSplit<float>& data,
          examples::Progress& progress) {
  bnorm::manual_seed(seed);
  bnorm::Sequential<float> net = examples::build_mlp(
      {.hidden = std::vector<bnorm::Index>(static_cast<std::size_t>(options.hidden_blocks),
                                           options.hidden_units),
       .activation = examples::Activation::relu,
       .batch_norm = variant == "bn",
       .dropout = variant == "dropout" ? options.dropout : 0.0});
  examples::Training<float> training(net, data.train, batch_size, options.data_seed,
                                     {.lr = options.learning_rate, .momentum = options.momentum});
  Run run{.variant = variant, .batch_size = batch_size, .seed = seed};
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    char label[80];
    std::snprintf(label, sizeof label, "batch %-4lld %-7s seed %llu epoch %2d/%d",
                  static_cast<long long>(batch_size), variant.c_str(),
                  static_cast<unsigned long long>(seed), epoch, options.epochs);
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
    run.train_accuracy.push_back(examples::eval_accuracy(net, data.train));
    run.test_accuracy.push_back(examples::eval_accuracy(net, data.test));
    run.train_loss.push_back(unit.mean_loss);
    std::printf("%s  train_accuracy %.4f  test_accuracy %.4f  gap %+.4f  %s\n", label,
                run.train_accuracy.back(), run.test_accuracy.back(),
                run.train_accuracy.back() - run.test_accuracy.back(), unit.describe().c_str());
    std::fflush(stdout);
  }
  return run;
}

std::vector<double> collect(const std::vector<Run>& runs, const std::string& variant,
                            bnorm::Index batch_size, double (Run::*measure)() const) {
  std::vector<double> values;
  for (const auto& run : runs)
    if (run.variant == variant && run.batch_size == batch_size) values.push_back((run.*measure)());
  return values;
}

void write_csv(const std::string& path, const std::vector<Run>& runs) {
  examples::CsvWriter csv(path, {"batch", "variant", "seed", "epoch", "train_accuracy",
                                 "test_accuracy", "gap", "train_loss", "diverged_step"});
  for (const auto& run : runs)
    for (std::size_t e = 0; e < run.test_accuracy.size(); ++e)
      csv.row(static_cast<long long>(run.batch_size), run.variant, run.seed,
              static_cast<int>(e + 1), run.train_accuracy[e], run.test_accuracy[e],
              run.train_accuracy[e] - run.test_accuracy[e], run.train_loss[e], run.diverged_step);
}

// Mean over seeds, epoch by epoch, of one curve.
std::vector<double> mean_curve(const std::vector<Run>& runs, const std::string& variant,
                               bnorm::Index batch_size, std::vector<double> Run::*curve) {
  std::vector<double> sum;
  int count = 0;
  for (const auto& run : runs) {
    if (run.variant != variant || run.batch_size != batch_size) continue;
    const auto& values = run.*curve;
    if (sum.size() < values.size()) sum.resize(values.size(), 0.0);
    for (std::size_t e = 0; e < values.size(); ++e) sum[e] += values[e];
    ++count;
  }
  for (double& value : sum) value = 100 * value / count;
  return sum;
}

// One line per network: `measure` (a fraction, shown in percent) against the batch size.
svg::Plot by_batch_size(const Options& options, const std::vector<Run>& runs, std::string title,
                        std::string y_label, double (Run::*measure)() const) {
  const bool several = options.seeds.size() > 1;
  svg::Plot plot{.title = std::move(title),
                 .x = {.label = "batch size", .scale = svg::Scale::log10},
                 .y = {.label = std::move(y_label)}};
  for (auto batch_size : options.batch_sizes) plot.x.ticks.push_back(static_cast<double>(batch_size));
  for (std::size_t v = 0; v < variants.size(); ++v) {
    svg::Line mean{.label = variant_names[v] + (several ? " (mean)" : ""),
                   .color = variant_colors[v], .width = 2.2, .marker = svg::Marker::circle};
    svg::Line each{.label = several ? variant_names[v] + ", each seed" : "",
                   .color = variant_colors[v], .width = 0, .marker = svg::Marker::circle,
                   .opacity = 0.3};
    for (auto batch_size : options.batch_sizes) {
      const auto values = collect(runs, variants[v], batch_size, measure);
      mean.x.push_back(static_cast<double>(batch_size));
      mean.y.push_back(100 * examples::mean(values));
      for (double value : values) {
        each.x.push_back(static_cast<double>(batch_size));
        each.y.push_back(100 * value);
      }
    }
    if (several) plot.lines.push_back(each);
    plot.lines.push_back(mean);
  }
  plot.legend = svg::Position::below;
  return plot;
}

void write_figure(const std::string& path, const Options& options, const std::vector<Run>& runs) {
  const std::size_t seeds = options.seeds.size();
  const std::string mean_of = seeds > 1 ? ", mean of " + std::to_string(seeds) + " seeds" : "";
  std::vector<svg::Plot> panels;
  std::vector<double> epochs;
  for (int e = 1; e <= options.epochs; ++e) epochs.push_back(e);
  for (bnorm::Index batch_size : options.batch_sizes) {
    svg::Plot plot{.title = "Batch " + std::to_string(batch_size) + ": train and test accuracy" +
                            mean_of,
                   .x = {.label = "epoch (" + std::to_string(options.train_examples) +
                                  " training images)",
                         .min = 0},
                   .y = {.label = "accuracy in eval mode (%)"}};
    for (std::size_t v = 0; v < variants.size(); ++v) {
      plot.lines.push_back({.label = variant_names[v] + ", train",
                            .x = epochs,
                            .y = mean_curve(runs, variants[v], batch_size, &Run::train_accuracy),
                            .color = variant_colors[v],
                            .width = 1.6,
                            .dashed = true});
      plot.lines.push_back({.label = variant_names[v] + ", test",
                            .x = epochs,
                            .y = mean_curve(runs, variants[v], batch_size, &Run::test_accuracy),
                            .color = variant_colors[v],
                            .width = 2.2});
    }
    plot.legend = svg::Position::below;
    panels.push_back(std::move(plot));
  }
  // One accuracy range for the batch-size panels, so that they compare at a glance.
  double lowest = 100;
  for (const auto& plot : panels)
    for (const auto& line : plot.lines)
      for (double y : line.y) lowest = std::min(lowest, y);
  for (auto& plot : panels) {
    plot.y.min = std::floor(lowest / 5) * 5;
    plot.y.max = 100;
  }

  panels.push_back(by_batch_size(options, runs,
                                 "Generalization gap after " + std::to_string(options.epochs) +
                                     " epochs",
                                 "train - test accuracy (percentage points)", &Run::gap));
  panels.push_back(by_batch_size(options, runs,
                                 "Test accuracy after " + std::to_string(options.epochs) +
                                     " epochs",
                                 "test accuracy in eval mode (%)", &Run::final_test));

  char subtitle[256];
  std::snprintf(subtitle, sizeof subtitle,
                "784 -> %d x [%lld -> (BatchNorm) -> ReLU -> (Dropout %g)] -> 10, SGD momentum %g, "
                "lr %g, PyTorch default init; first %lld training images, all 10,000 test images.",
                options.hidden_blocks, static_cast<long long>(options.hidden_units),
                options.dropout, static_cast<double>(options.momentum),
                static_cast<double>(options.learning_rate),
                static_cast<long long>(options.train_examples));
  svg::Figure figure{.title = "Batch normalization as a regularizer, against Dropout "
                              "(Fashion-MNIST)",
                     .panels = std::move(panels),
                     .notes = {subtitle, "Dashed: accuracy on the training images; solid: on the "
                                         "test images; both in eval mode (BN with running "
                                         "statistics, no Dropout)."}};
  figure.columns = 2;
  figure.panel_width = 540;
  figure.panel_height = 430;
  figure.save(path);
}

void summarize(const Options& options, const std::vector<Run>& runs,
               const examples::Stopwatch& total) {
  examples::Summary summary;
  summary.add("example", "regularization");
  summary.add("seeds", std::vector<double>(options.seeds.begin(), options.seeds.end()));
  summary.add("epochs", options.epochs);
  summary.add("train_examples", static_cast<long long>(options.train_examples));
  summary.add("batch_sizes",
              std::vector<double>(options.batch_sizes.begin(), options.batch_sizes.end()));
  double seconds = 0, cpu_seconds = 0;
  for (const auto& run : runs) {
    seconds += run.train_seconds;
    cpu_seconds += run.train_cpu_seconds;
  }
  for (auto batch_size : options.batch_sizes) {
    const std::string prefix = "batch" + std::to_string(batch_size) + "_";
    for (const auto& variant : variants) {
      const auto add = [&](const std::string& key, double (Run::*measure)() const) {
        const auto values = collect(runs, variant, batch_size, measure);
        summary.add(prefix + variant + "_" + key, examples::mean(values));
        if (values.size() > 1) summary.add(prefix + variant + "_" + key + "_seeds", values);
      };
      add("train_accuracy", &Run::final_train);
      add("test_accuracy", &Run::final_test);
      add("gap", &Run::gap);
      add("best_test_accuracy", &Run::best_test);
    }
    const double plain_gap = examples::mean(collect(runs, "plain", batch_size, &Run::gap));
    summary.add(prefix + "bn_gap_reduction",
                plain_gap - examples::mean(collect(runs, "bn", batch_size, &Run::gap)));
    summary.add(prefix + "dropout_gap_reduction",
                plain_gap - examples::mean(collect(runs, "dropout", batch_size, &Run::gap)));
  }
  int diverged = 0;
  for (const auto& run : runs) diverged += run.diverged_step > 0;
  summary.add("diverged_runs", diverged);
  summary.add("train_seconds", seconds);
  summary.add("train_cpu_seconds", cpu_seconds);
  summary.add("total_seconds", total.wall_seconds());
  summary.add("total_cpu_seconds", total.cpu_seconds());
  summary.print();
}

int run(Options options) {
  if (options.quick) {
    options.batch_sizes = {32, 256};
    options.epochs = 2;
    options.train_examples = 2000;
    options.seeds.resize(1);
  }
  const examples::Stopwatch total;
  auto data = bnorm::load_fashion_mnist<float>(options.data_directory);
  examples::keep_first_examples(data.train, options.train_examples);
  options.train_examples = data.train.size();
  std::printf("regularization: 784 -> %d x %lld ReLU -> 10, plain vs BatchNorm vs Dropout %g; SGD "
              "momentum %g, lr %g, %d epochs on %lld examples; batches",
              options.hidden_blocks, static_cast<long long>(options.hidden_units),
              options.dropout, static_cast<double>(options.momentum),
              static_cast<double>(options.learning_rate), options.epochs,
              static_cast<long long>(options.train_examples));
  for (auto batch_size : options.batch_sizes) std::printf(" %lld", static_cast<long long>(batch_size));
  std::printf("; seeds");
  for (auto seed : options.seeds) std::printf(" %llu", static_cast<unsigned long long>(seed));
  std::printf("\n");
  std::fflush(stdout);

  long long total_steps = 0;
  for (auto batch_size : options.batch_sizes)
    total_steps += options.epochs * ((data.train.size() + batch_size - 1) / batch_size);
  examples::Progress progress(total_steps * static_cast<long long>(variants.size() *
                                                                   options.seeds.size()));
  std::vector<Run> runs;
  for (auto seed : options.seeds)
    for (auto batch_size : options.batch_sizes)
      for (const auto& variant : variants)
        runs.push_back(train(options, variant, batch_size, seed, data, progress));

  write_csv(options.output + ".csv", runs);
  write_figure(options.output + ".svg", options, runs);
  std::printf("wrote %s.csv and %s.svg\n", options.output.c_str(), options.output.c_str());
  summarize(options, runs, total);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"Batch normalization as a regularizer: the train/test accuracy gap with and "
               "without BN, at small and large batches, against Dropout, on Fashion-MNIST."};
  app.add_option("--batches", options.batch_sizes, "Batch sizes to compare (at least 2)")
      ->check(CLI::Range(bnorm::Index{2}, bnorm::Index{60000}))
      ->capture_default_str();
  examples::add_epochs_option(app, options.epochs, "Passes over the training images per run");
  examples::add_train_examples_option(app, options.train_examples,
                                      "Train on the first N training images (0: all 60,000)");
  examples::add_learning_rate_option(app, options.learning_rate);
  examples::add_momentum_option(app, options.momentum);
  app.add_option("--dropout", options.dropout, "Dropout probability of the Dropout network")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
  examples::add_hidden_units_option(app, options.hidden_units);
  examples::add_hidden_blocks_option(app, options.hidden_blocks);
  examples::add_seed_options(
      app, options.seeds, "Initialization seeds, one run per seed and network", options.data_seed);
  examples::add_data_and_output_options(
      app, options.data_directory, options.output, options.quick,
      "Smoke test: batches 32 and 256, two epochs of 2,000 images, one seed");
  return examples::run_main(app, argc, argv, "regularization", [&] { return run(options); });
}
