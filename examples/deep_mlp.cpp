// Batch normalization lets very deep networks train.
//
//   plain: 784 -> [Dense 100 -> tanh or sigmoid] x D -> Dense 10
//   BN:    784 -> [Dense 100 without bias -> BatchNorm -> tanh or sigmoid] x D -> Dense 10
//   D = 10, 30, 60; SGD momentum 0.9, lr 0.05, batch 128, 2 epochs, PyTorch's default init
//
// Without BN the signal fades through the layers and the deep networks stay at chance. With
// BN they train, but at D = 60 the eval-mode accuracy drops: the running averages of the
// batch statistics lag behind weights that keep changing. Three numbers separate that lag
// from bad training, each on the trained BN network:
//   eval (running averages)  the usual test accuracy, BatchNorm in Mode::eval;
//   batch statistics         BatchNorm normalizing each test batch of 128 with its own
//                            statistics (on a copy: the running averages do not change);
//   recalibrated             after bnorm::recalibrate(net, training images), which replaces
//                            the running averages by the exact population statistics
//                            ("precise BN"), then in Mode::eval.
//
// Writes PREFIX.csv and PREFIX.svg (--output PREFIX), then the summary as key=value lines.
// The PyTorch 1.13 reference is e3_deep.py.

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

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace svg = examples::svg;
using examples::Activation;

struct Options {
  std::vector<int> depths = {10, 30, 60};
  std::vector<Activation> activations = {Activation::tanh, Activation::sigmoid};
  bnorm::Index hidden_units = 100;
  float learning_rate = 0.05f;
  float momentum = 0.9f;
  bnorm::Index batch_size = 128;
  int epochs = 2;
  std::vector<std::uint64_t> seeds = {0};
  std::uint64_t data_seed = 12345;
  bnorm::Index train_examples = 0;  // 0: all 60,000
  std::string data_directory = bnorm::fashion_mnist_default_directory.string();
  std::string output = "deep_mlp";
  bool quick = false;
};

// PyTorch 1.13, e3_deep.py (RESULTS.md, E3), test accuracy (%).
struct Reference {
  double plain_mean, bn_mean;  // eval mode, mean of seeds 0, 1, 2
  double bn_seed0, bn_batch_statistics_seed0, bn_train_seed0;
  double plain_seconds, bn_seconds;  // seed 0, 2 epochs
};
const std::map<std::pair<Activation, int>, Reference> reference = {
    {{Activation::tanh, 10}, {76.93, 83.13, 83.40, 83.57, 85.08, 1.7, 2.1}},
    {{Activation::tanh, 30}, {10.00, 79.06, 78.60, 80.29, 80.01, 4.3, 5.6}},
    {{Activation::tanh, 60}, {10.00, 43.08, 35.03, 52.26, 35.32, 8.5, 11.4}},
    {{Activation::sigmoid, 10}, {10.00, 81.40, 80.82, 81.79, 82.40, 1.5, 1.9}},
    {{Activation::sigmoid, 30}, {10.00, 80.45, 79.57, 81.60, 80.69, 3.7, 5.0}},
    {{Activation::sigmoid, 60}, {10.00, 56.75, 32.31, 74.18, 32.97, 7.2, 10.3}}};

struct Run {
  Activation activation = Activation::tanh;
  int depth = 0;
  bool batch_norm = false;
  std::uint64_t seed = 0;
  std::vector<double> epoch_accuracy{}, epoch_loss{};
  long long diverged_step = 0;
  double accuracy = 0.1;  // eval mode, after training; 10% if diverged
  double train_accuracy = std::nan("");  // eval mode, on the training images
  double batch_statistics_accuracy = std::nan("");  // BN only
  double recalibrated_accuracy = std::nan("");      // BN only
  double train_seconds = 0, train_cpu_seconds = 0, diagnostic_seconds = 0;
};

std::string config_name(Activation activation, int depth) {
  return examples::to_string(activation) + "_d" + std::to_string(depth);
}

Run train(const Options& options, Activation activation, int depth, bool batch_norm,
          std::uint64_t seed, const bnorm::TrainTestSplit<float>& data,
          examples::Progress& progress) {
  bnorm::manual_seed(seed);
  bnorm::Sequential<float> net = examples::build_mlp(
      {.hidden = std::vector<bnorm::Index>(static_cast<std::size_t>(depth), options.hidden_units),
       .activation = activation,
       .batch_norm = batch_norm});
  examples::Training<float> training(net, data.train, options.batch_size, options.data_seed,
                                     {.lr = options.learning_rate, .momentum = options.momentum});
  Run run{.activation = activation, .depth = depth, .batch_norm = batch_norm, .seed = seed};
  const std::string variant = batch_norm ? "bn" : "plain";
  for (int epoch = 1; epoch <= options.epochs; ++epoch) {
    char label[80];
    std::snprintf(label, sizeof label, "%-7s D=%-3d %-5s seed %llu epoch %d/%d",
                  examples::to_string(activation).c_str(), depth, variant.c_str(),
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
      std::fflush(stdout);
      return run;
    }
    run.epoch_accuracy.push_back(examples::eval_accuracy(net, data.test, 1000));
    run.epoch_loss.push_back(unit.mean_loss);
    std::printf("%s  test_accuracy %.4f  %s\n", label, run.epoch_accuracy.back(),
                unit.describe().c_str());
    std::fflush(stdout);
  }
  run.accuracy = run.epoch_accuracy.back();

  const examples::Stopwatch diagnostics;
  run.train_accuracy = examples::eval_accuracy(net, data.train, 1000);
  if (batch_norm) {
    run.batch_statistics_accuracy =
        examples::batch_statistics_accuracy(net, data.test, options.batch_size);
    bnorm::Sequential<float> precise = net;
    bnorm::recalibrate(precise, data.train.inputs);
    run.recalibrated_accuracy = examples::eval_accuracy(precise, data.test, 1000);
    std::printf("%-7s D=%-3d bn    seed %llu  test_accuracy: eval %.4f, batch statistics %.4f, "
                "recalibrated %.4f; train_accuracy %.4f\n",
                examples::to_string(activation).c_str(), depth,
                static_cast<unsigned long long>(seed), run.accuracy,
                run.batch_statistics_accuracy, run.recalibrated_accuracy, run.train_accuracy);
    std::fflush(stdout);
  }
  run.diagnostic_seconds = diagnostics.wall_seconds();
  return run;
}

// One value per seed of the runs of a configuration.
std::vector<double> collect(const std::vector<Run>& runs, Activation activation, int depth,
                            bool batch_norm, double Run::*field) {
  std::vector<double> values;
  for (const auto& run : runs)
    if (run.activation == activation && run.depth == depth && run.batch_norm == batch_norm)
      values.push_back(run.*field);
  return values;
}

void write_csv(const std::string& path, const std::vector<Run>& runs) {
  examples::CsvWriter csv(path, {"activation", "depth", "variant", "seed", "diverged_step",
                                 "epoch1_test_accuracy", "test_accuracy", "train_accuracy",
                                 "batch_statistics_test_accuracy",
                                 "recalibrated_test_accuracy", "train_seconds"});
  for (const auto& run : runs)
    csv.row(examples::to_string(run.activation), run.depth, run.batch_norm ? "bn" : "plain",
            run.seed, run.diverged_step,
            run.epoch_accuracy.empty() ? 0.1 : run.epoch_accuracy.front(), run.accuracy,
            run.train_accuracy, run.batch_statistics_accuracy, run.recalibrated_accuracy,
            run.train_seconds);
}

void write_figure(const std::string& path, const Options& options, const std::vector<Run>& runs) {
  const std::size_t seeds = options.seeds.size();
  std::vector<double> depth_ticks(options.depths.begin(), options.depths.end());
  std::vector<svg::Plot> panels;
  for (Activation activation : options.activations) {
    svg::Plot plot{.title = examples::to_string(activation) + " hidden units",
                   .x = {.label = "hidden layers D (100 units each)", .ticks = depth_ticks},
                   .y = {.label = "test accuracy (%)", .min = 0, .max = 100}};
    struct Curve {
      std::string label;
      bool batch_norm;
      double Run::*field;
      std::string color;
      svg::Marker marker;
    };
    const Curve curves[] = {
        {"bnorm, no BN", false, &Run::accuracy, svg::colors::vermillion, svg::Marker::circle},
        {"bnorm, BN, eval (running averages)", true, &Run::accuracy, svg::colors::blue,
         svg::Marker::circle},
        {"bnorm, BN, batch statistics", true, &Run::batch_statistics_accuracy,
         svg::colors::green, svg::Marker::square},
        {"bnorm, BN, recalibrated", true, &Run::recalibrated_accuracy, svg::colors::purple,
         svg::Marker::diamond}};
    // PyTorch's reference for the first three curves, each listed right after bnorm's, so
    // that the two-column legend puts bnorm on the left and PyTorch on the right.
    svg::Line torch[3] = {
        {.label = "PyTorch, no BN (mean of 3 seeds)", .color = svg::colors::vermillion,
         .width = 1.2, .dashed = true, .marker = svg::Marker::open_circle},
        {.label = "PyTorch, BN, eval (mean of 3 seeds)", .color = svg::colors::blue, .width = 1.2,
         .dashed = true, .marker = svg::Marker::open_circle},
        {.label = "PyTorch, BN, batch statistics (seed 0)", .color = svg::colors::green,
         .width = 1.2, .dashed = true, .marker = svg::Marker::open_square}};
    for (int depth : options.depths)
      if (auto found = reference.find({activation, depth}); found != reference.end()) {
        for (auto& line : torch) line.x.push_back(depth);
        torch[0].y.push_back(found->second.plain_mean);
        torch[1].y.push_back(found->second.bn_mean);
        torch[2].y.push_back(found->second.bn_batch_statistics_seed0);
      }
    for (std::size_t c = 0; c < std::size(curves); ++c) {
      const Curve& curve = curves[c];
      svg::Line mean{.label = curve.label, .color = curve.color, .width = 2.2,
                     .marker = curve.marker};
      svg::Line each{.color = curve.color, .width = 0, .marker = curve.marker, .opacity = 0.3};
      for (int depth : options.depths) {
        const auto values = collect(runs, activation, depth, curve.batch_norm, curve.field);
        mean.x.push_back(depth);
        mean.y.push_back(100 * examples::mean(values));
        for (double value : values) {
          each.x.push_back(depth);
          each.y.push_back(100 * value);
        }
      }
      if (seeds > 1) plot.lines.push_back(each);
      plot.lines.push_back(mean);
      if (c < std::size(torch)) plot.lines.push_back(torch[c]);
    }
    plot.guides.push_back({.value = 10, .label = "chance (10%)"});
    plot.legend = svg::Position::below;
    panels.push_back(std::move(plot));
  }
  char subtitle[256];
  std::snprintf(subtitle, sizeof subtitle,
                "784 -> D x [%lld -> (BatchNorm) -> activation] -> 10, SGD momentum %g, lr %g, "
                "batch %lld, %d epochs, PyTorch default init. bnorm: mean of %zu seed(s), faint "
                "markers: each seed.",
                static_cast<long long>(options.hidden_units), static_cast<double>(options.momentum),
                static_cast<double>(options.learning_rate),
                static_cast<long long>(options.batch_size), options.epochs, seeds);
  svg::Figure figure{
      .title = "Very deep networks with and without batch normalization (Fashion-MNIST)",
      .panels = std::move(panels),
      .notes = {subtitle,
                "Batch statistics: BN in training mode on test batches of " +
                    std::to_string(options.batch_size) +
                    "; recalibrated: running averages replaced by the exact statistics of the "
                    "training images (bnorm::recalibrate).",
                "Dashed lines with open markers: PyTorch 1.13 on the same protocol (e3_deep.py)."}};
  figure.panel_width = 560;
  figure.panel_height = 480;
  figure.save(path);
}

void summarize(const Options& options, const std::vector<Run>& runs,
               const examples::Stopwatch& total) {
  examples::Summary summary;
  summary.add("example", "deep_mlp");
  summary.add("seeds", std::vector<double>(options.seeds.begin(), options.seeds.end()));
  summary.add("depths", std::vector<double>(options.depths.begin(), options.depths.end()));
  summary.add("epochs", options.epochs);
  double plain_seconds = 0, bn_seconds = 0, cpu_seconds = 0, diagnostic_seconds = 0;
  for (const auto& run : runs) {
    (run.batch_norm ? bn_seconds : plain_seconds) += run.train_seconds;
    cpu_seconds += run.train_cpu_seconds;
    diagnostic_seconds += run.diagnostic_seconds;
  }
  for (Activation activation : options.activations)
    for (int depth : options.depths) {
      const std::string name = config_name(activation, depth);
      const auto add = [&](const std::string& key, bool batch_norm, double Run::*field) {
        const auto values = collect(runs, activation, depth, batch_norm, field);
        summary.add(name + "_" + key, examples::mean(values));
        if (values.size() > 1) summary.add(name + "_" + key + "_seeds", values);
      };
      add("plain_accuracy", false, &Run::accuracy);
      add("bn_accuracy", true, &Run::accuracy);
      add("bn_batch_statistics_accuracy", true, &Run::batch_statistics_accuracy);
      add("bn_recalibrated_accuracy", true, &Run::recalibrated_accuracy);
      add("bn_train_accuracy", true, &Run::train_accuracy);
      add("plain_train_seconds", false, &Run::train_seconds);
      add("bn_train_seconds", true, &Run::train_seconds);
    }
  summary.add("plain_train_seconds_total", plain_seconds);
  summary.add("bn_train_seconds_total", bn_seconds);
  summary.add("train_cpu_seconds_total", cpu_seconds);
  summary.add("diagnostic_seconds_total", diagnostic_seconds);
  summary.add("total_seconds", total.wall_seconds());
  summary.add("total_cpu_seconds", total.cpu_seconds());
  summary.print();
}

int run(Options options) {
  if (options.quick) {
    options.depths = {10};
    options.epochs = 1;
    options.train_examples = 12800;
    options.seeds.resize(1);
  }
  const examples::Stopwatch total;
  auto data = bnorm::load_fashion_mnist<float>(options.data_directory);
  examples::keep_first_examples(data.train, options.train_examples);
  std::printf("deep_mlp: 784 -> D x 100 -> 10, plain vs BatchNorm; SGD momentum %g, lr %g, batch "
              "%lld, %d epochs on %lld examples; depths",
              static_cast<double>(options.momentum), static_cast<double>(options.learning_rate),
              static_cast<long long>(options.batch_size), options.epochs,
              static_cast<long long>(data.train.size()));
  for (int depth : options.depths) std::printf(" %d", depth);
  std::printf("; seeds");
  for (auto seed : options.seeds) std::printf(" %llu", static_cast<unsigned long long>(seed));
  std::printf("\n");
  std::fflush(stdout);

  const long long steps_per_run =
      options.epochs * ((data.train.size() + options.batch_size - 1) / options.batch_size);
  examples::Progress progress(steps_per_run * 2 *
                              static_cast<long long>(options.activations.size() *
                                                     options.depths.size() * options.seeds.size()));
  std::vector<Run> runs;
  for (Activation activation : options.activations)
    for (int depth : options.depths)
      for (auto seed : options.seeds)
        for (bool batch_norm : {false, true})
          runs.push_back(train(options, activation, depth, batch_norm, seed, data, progress));

  write_csv(options.output + ".csv", runs);
  write_figure(options.output + ".svg", options, runs);
  std::printf("wrote %s.csv and %s.svg\n", options.output.c_str(), options.output.c_str());
  summarize(options, runs, total);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"Very deep MLPs with and without batch normalization on Fashion-MNIST, and "
               "recalibrated BatchNorm statistics."};
  app.add_option("--depths", options.depths, "Numbers of hidden layers")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--activations", options.activations, "Hidden activations: tanh, sigmoid, relu")
      ->transform(CLI::CheckedTransformer(examples::activation_names, CLI::ignore_case))
      ->default_str("tanh sigmoid");
  examples::add_hidden_units_option(app, options.hidden_units);
  examples::add_learning_rate_option(app, options.learning_rate);
  examples::add_momentum_option(app, options.momentum);
  examples::add_batch_option(app, options.batch_size);
  examples::add_epochs_option(app, options.epochs);
  examples::add_seed_options(
      app, options.seeds, "Initialization seeds, one run per seed and network", options.data_seed);
  examples::add_train_examples_option(app, options.train_examples);
  examples::add_data_and_output_options(
      app, options.data_directory, options.output, options.quick,
      "Smoke test: depth 10, one epoch of 12,800 images, one seed");
  return examples::run_main(app, argc, argv, "deep_mlp", [&] { return run(options); });
}
