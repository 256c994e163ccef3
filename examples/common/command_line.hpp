// The command line of the claim examples (covariate_shift, lr_sweep, deep_mlp, regularization):
// the options several of them take, written once so that a flag has the same name, check and
// help in each, and the parse-then-run boilerplate of their main().
//
//   Options options;
//   CLI::App app{"What the example shows."};
//   examples::add_epochs_option(app, options.epochs);
//   examples::add_seed_options(app, options.seeds, "Initialization seeds, one run per seed",
//                              options.data_seed);
//   examples::add_data_and_output_options(app, options.data_directory, options.output,
//                                         options.quick, "Smoke test: one epoch, one seed");
//   return examples::run_main(app, argc, argv, "name", [&] { return run(options); });
//
// One function per option (or per run of options that always stand together) rather than one
// for all: --help lists options in the order they are added, and each example keeps its own.
// Defaults are the current values of the fields.
#pragma once

#include <bnorm/core/types.hpp>

#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <vector>

namespace examples {

inline void add_epochs_option(CLI::App& app, int& epochs,
                              const std::string& help = "Passes over the training set per run") {
  app.add_option("--epochs", epochs, help)->check(CLI::Range(1, 100000))->capture_default_str();
}

// At least 2: BatchNorm cannot normalize a batch of one example.
inline void add_batch_option(CLI::App& app, bnorm::Index& batch_size) {
  app.add_option("--batch", batch_size, "Examples per mini-batch (at least 2)")
      ->check(CLI::Range(bnorm::Index{2}, bnorm::Index{60000}))
      ->capture_default_str();
}

inline void add_learning_rate_option(CLI::App& app, float& learning_rate,
                                     const std::string& help = "SGD learning rate") {
  app.add_option("--lr", learning_rate, help)->check(CLI::PositiveNumber)->capture_default_str();
}

inline void add_momentum_option(CLI::App& app, float& momentum) {
  app.add_option("--momentum", momentum, "SGD momentum")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
}

inline void add_hidden_units_option(CLI::App& app, bnorm::Index& hidden_units) {
  app.add_option("--hidden", hidden_units, "Units per hidden layer")
      ->check(CLI::Range(bnorm::Index{1}, bnorm::Index{100000}))
      ->capture_default_str();
}

inline void add_hidden_blocks_option(CLI::App& app, int& hidden_blocks) {
  app.add_option("--blocks", hidden_blocks, "Hidden layers")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
}

inline void add_train_examples_option(
    CLI::App& app, bnorm::Index& train_examples,
    const std::string& help = "Train on the first N training images (0: all)") {
  app.add_option("--train-examples", train_examples, help)
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

// --seeds (the help says what one seed runs in this example) and --data-seed (the mini-batch
// order, the same in every run so that runs differ only in their initialization).
inline void add_seed_options(CLI::App& app, std::vector<std::uint64_t>& seeds,
                             const std::string& seeds_help, std::uint64_t& data_seed) {
  app.add_option("--seeds", seeds, seeds_help)->capture_default_str();
  app.add_option("--data-seed", data_seed, "Seed of the mini-batch order (every run)")
      ->capture_default_str();
}

// --data, --output and --quick, the last options of every claim example; `quick_help` says what
// the example's smoke-test mode shrinks.
inline void add_data_and_output_options(CLI::App& app, std::string& data_directory,
                                        std::string& output, bool& quick,
                                        const std::string& quick_help) {
  app.add_option("--data", data_directory, "Folder of the four Fashion-MNIST IDX files")
      ->capture_default_str();
  app.add_option("--output", output, "Writes OUTPUT.csv and OUTPUT.svg")->capture_default_str();
  app.add_flag("--quick", quick, quick_help);
}

// Parses the command line, then returns what `run` returns. A parse error, --help included,
// ends the way CLI11 ends it (its message, its exit code); an exception from `run` prints
// "<name>: error: <what>" and returns 1, so a missing data folder is one readable line.
inline int run_main(CLI::App& app, int argc, char** argv, const char* name,
                    const std::function<int()>& run) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  }
  try {
    return run();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s: error: %s\n", name, error.what());
    return 1;
  }
}

}  // namespace examples
