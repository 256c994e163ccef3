// Train in PyTorch, run in bnorm. train_in_pytorch.py (next to this file) trained the flagship
// network of examples/fashion_mnist.cpp for one epoch in PyTorch and wrote its state_dict to
// flagship.safetensors and the eval-mode graph to flagship.onnx, with PyTorch's test
// predictions in pytorch_results.txt. This program builds the same network in bnorm, loads
// the safetensors file, and checks that bnorm's count of correct test predictions equals
// PyTorch's, listing every example the two classify differently with bnorm's logits (and
// PyTorch's, for the examples the script found to be near ties). Built with bnorm::onnx, it
// also loads flagship.onnx (the network and its weights, with no architecture written here)
// and checks the same count and that its logits equal the safetensors network's.
//
// With --export PATH it then trains the loaded network further in bnorm (--export-steps
// mini-batches) and writes it with save_safetensors (and save_onnx to PATH.onnx, reloaded and
// compared), for the way back:
//   /usr/bin/python3 examples/from_pytorch/train_in_pytorch.py --check PATH
// loads it into PyTorch with load_state_dict(strict=True) and prints its count, which equals
// the bnorm_export_correct line printed here.
//
// Summary lines are key=value, for scripts (scripts/smoke-examples.sh).

#include "../common/float_network.hpp"  // bnorm.hpp, with the float types compiled once
#include <bnorm/safetensors.hpp>
#if BNORM_EXAMPLE_WITH_ONNX
#include <bnorm/onnx.hpp>
#endif

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <string>

#ifndef BNORM_FROM_PYTORCH_DIR
#define BNORM_FROM_PYTORCH_DIR "examples/from_pytorch"
#endif

namespace {

struct Options {
  std::string model = BNORM_FROM_PYTORCH_DIR "/flagship.safetensors";
  std::string onnx_model = BNORM_FROM_PYTORCH_DIR "/flagship.onnx";
  std::string results = BNORM_FROM_PYTORCH_DIR "/pytorch_results.txt";
  std::string data_directory = bnorm::fashion_mnist_default_directory.string();
  std::string export_path;
  int export_steps = 300;
};

// 784 -> [Dense 256 without bias -> BatchNorm -> ReLU] x 3 -> Dense 10, PyTorch's layout:
// nn.Sequential(Linear(784, 256, bias=False), BatchNorm1d(256), ReLU(), ..., Linear(256, 10)).
bnorm::Sequential<float> flagship_network() {
  bnorm::Sequential<float> net;
  bnorm::Index inputs = 28 * 28;
  for (int block = 0; block < 3; ++block) {
    net.add(bnorm::Dense<float>(inputs, 256, bnorm::Bias::none))
        .add(bnorm::BatchNorm<float>(256))
        .add(bnorm::ReLU<float>());
    inputs = 256;
  }
  net.add(bnorm::Dense<float>(inputs, 10));
  return net;
}

// The key=value lines of pytorch_results.txt.
std::map<std::string, std::string> read_results(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw bnorm::Error("cannot open PyTorch's results '" + path + "'");
  std::map<std::string, std::string> values;
  for (std::string line; std::getline(file, line);) {
    const auto equals = line.find('=');
    if (line.empty() || line[0] == '#' || equals == std::string::npos) continue;
    std::string key = line.substr(0, equals), value = line.substr(equals + 1);
    if (key == "close_example") {  // "close_example=12 label=3 logits=..." keyed by index
      key += "." + value.substr(0, value.find(' '));
      value = value.substr(value.find("logits=") + 7);
    }
    values[key] = value;
  }
  for (const char* key : {"pytorch_correct", "pytorch_predictions"})
    if (!values.count(key)) throw bnorm::Error("'" + path + "' has no " + key + " line");
  return values;
}

bnorm::Matrix<float> test_logits(bnorm::Sequential<float>& net, const bnorm::Dataset<float>& test) {
  bnorm::Matrix<float> logits(10, test.size());
  constexpr bnorm::Index chunk = 1000;
  for (bnorm::Index start = 0; start < test.size(); start += chunk) {
    const bnorm::Index count = std::min(chunk, test.size() - start);
    logits.middleCols(start, count) = net.forward(test.inputs.middleCols(start, count), bnorm::Mode::eval);
  }
  return logits;
}

bnorm::Index prediction(const bnorm::Matrix<float>& logits, bnorm::Index example) {
  bnorm::Index best = 0;
  logits.col(example).maxCoeff(&best);
  return best;
}

int run(const Options& options) {
  const auto data = bnorm::load_fashion_mnist<float>(options.data_directory);
  const auto pytorch = read_results(options.results);
  const std::string& pytorch_predictions = pytorch.at("pytorch_predictions");
  if (static_cast<bnorm::Index>(pytorch_predictions.size()) != data.test.size())
    throw bnorm::Error(options.results + ": " + std::to_string(pytorch_predictions.size()) +
                       " predictions for " + std::to_string(data.test.size()) + " test examples");

  bnorm::Sequential<float> net = flagship_network();
  bnorm::load_safetensors(net, options.model);
  std::printf("loaded %s into %s\n", options.model.c_str(), net.name().c_str());

  const bnorm::Matrix<float> logits = test_logits(net, data.test);
  const bnorm::Index correct = bnorm::count_correct(logits, data.test.labels);
  bnorm::Index differing = 0;
  for (bnorm::Index j = 0; j < data.test.size(); ++j) {
    const bnorm::Index theirs = pytorch_predictions[static_cast<std::size_t>(j)] - '0';
    if (prediction(logits, j) == theirs) continue;
    ++differing;
    std::printf("differing_example=%lld label=%d bnorm=%lld pytorch=%lld bnorm_logits=",
                static_cast<long long>(j), data.test.labels(j),
                static_cast<long long>(prediction(logits, j)), static_cast<long long>(theirs));
    for (bnorm::Index k = 0; k < logits.rows(); ++k) std::printf("%s%.9g", k ? "," : "", logits(k, j));
    const auto close = pytorch.find("close_example." + std::to_string(j));
    std::printf(" pytorch_logits=%s\n", close == pytorch.end() ? "(not near a tie in PyTorch)"
                                                               : close->second.c_str());
  }
  const long long pytorch_correct = std::stoll(pytorch.at("pytorch_correct"));
  std::printf("test_examples=%lld\n", static_cast<long long>(data.test.size()));
  std::printf("bnorm_correct=%lld\n", static_cast<long long>(correct));
  std::printf("pytorch_correct=%lld\n", pytorch_correct);
  std::printf("differing_examples=%lld\n", static_cast<long long>(differing));
  std::printf("test_accuracy=%.4f\n", static_cast<double>(correct) / static_cast<double>(data.test.size()));
  std::printf("same_count=%s\n", correct == pytorch_correct ? "yes" : "no");
  bool onnx_agrees = true;
#if BNORM_EXAMPLE_WITH_ONNX
  // The same network from PyTorch's ONNX export: architecture and weights from the file.
  bnorm::Sequential<float> from_onnx = bnorm::load_onnx<float>(options.onnx_model);
  std::printf("loaded %s as %s\n", options.onnx_model.c_str(), from_onnx.name().c_str());
  const bnorm::Matrix<float> onnx_logits = test_logits(from_onnx, data.test);
  const bnorm::Index onnx_correct = bnorm::count_correct(onnx_logits, data.test.labels);
  const bool onnx_identical = onnx_logits == logits;
  std::printf("onnx_correct=%lld\n", static_cast<long long>(onnx_correct));
  std::printf("onnx_logits_identical_to_safetensors=%s\n", onnx_identical ? "yes" : "no");
  onnx_agrees = onnx_correct == pytorch_correct && onnx_identical;
#endif

  if (!options.export_path.empty()) {
    // The way back: train on in bnorm, then hand the network to PyTorch.
    bnorm::SoftmaxCrossEntropy<float> loss;
    bnorm::SGD<float> optimizer(net.parameters(), {.lr = 0.02, .momentum = 0.9});
    bnorm::MiniBatches<float> batches(data.train, 64, 1);
    batches.start_epoch();
    for (int step = 0; step < options.export_steps && batches.next(); ++step) {
      loss.forward(net.forward(batches.inputs(), bnorm::Mode::train), batches.labels());
      net.backward(loss.backward());
      optimizer.step();
    }
    bnorm::save_safetensors(net, options.export_path);
    const bnorm::Matrix<float> exported_logits = test_logits(net, data.test);
    bnorm::Sequential<float> reloaded = flagship_network();
    bnorm::load_safetensors(reloaded, options.export_path);
    const bool identical = test_logits(reloaded, data.test) == exported_logits;
    std::printf("exported=%s\n", options.export_path.c_str());
    std::printf("bnorm_export_correct=%lld\n",
                static_cast<long long>(bnorm::count_correct(exported_logits, data.test.labels)));
    std::printf("export_reloads_identical=%s\n", identical ? "yes" : "no");
    if (!identical) return 1;
#if BNORM_EXAMPLE_WITH_ONNX
    const std::string onnx_path = options.export_path + ".onnx";
    bnorm::save_onnx(net, onnx_path);
    bnorm::Sequential<float> onnx_reloaded = bnorm::load_onnx<float>(onnx_path);
    const bool onnx_identical_export = test_logits(onnx_reloaded, data.test) == exported_logits;
    std::printf("exported_onnx=%s\n", onnx_path.c_str());
    std::printf("onnx_export_reloads_identical=%s\n", onnx_identical_export ? "yes" : "no");
    if (!onnx_identical_export) return 1;
#endif
  }
  return correct == pytorch_correct && onnx_agrees ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"Loads a PyTorch-trained flagship network (safetensors, ONNX) and compares its test "
               "accuracy with PyTorch's."};
  app.add_option("--model", options.model, "The safetensors file")->check(CLI::ExistingFile);
  app.add_option("--onnx-model", options.onnx_model, "The ONNX file (used when built with bnorm::onnx)")
      ->check(CLI::ExistingFile);
  app.add_option("--results", options.results, "PyTorch's pytorch_results.txt")
      ->check(CLI::ExistingFile);
  app.add_option("--data", options.data_directory, "Folder with the Fashion-MNIST IDX files");
  app.add_option("--export", options.export_path,
                 "Train on in bnorm, then write the network here with save_safetensors");
  app.add_option("--export-steps", options.export_steps, "Mini-batches of 64 trained before --export")
      ->check(CLI::Range(0, 1000000));
  CLI11_PARSE(app, argc, argv);
  try {
    return run(options);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "from_pytorch: error: %s\n", error.what());
    return 1;
  }
}
