// Fuzz target for the checkpoint reader (run as fuzz_checkpoint, fuzz_readers.cpp): any bytes
// loaded into a training run of every kind of object a checkpoint holds (a network of every
// layer kind, Adam with parameter groups, ReduceLROnPlateau, MiniBatches, a Generator), float
// and double. A bnorm::Error is the expected answer to a bad file, and then every object must
// be exactly as it was; anything else (a crash, a sanitizer report, another exception, a
// leak, a timeout) is a finding. What loads must save back to the bytes it was read from (the
// encoding is canonical: a difference is a field lost or altered). scripts/fuzz.sh seeds it
// with checkpoints of this run written by fuzz/make_seeds.cpp.
#pragma once

#include <bnorm/io/checkpoint.hpp>

#include "support/model_files.hpp"  // every_layer_network

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace bnorm_fuzz::checkpoint_target {

// 14 examples of 5 features, 3 classes: batches of 4 leave a partial batch of 2.
template <class T>
const bnorm::Dataset<T>& examples() {
  static const bnorm::Dataset<T> data = [] {
    bnorm::Generator generator(11);
    bnorm::Dataset<T> d;
    d.inputs = bnorm::Matrix<T>(5, 14);
    d.labels = bnorm::Labels(14);
    for (bnorm::Index j = 0; j < 14; ++j) {
      for (bnorm::Index i = 0; i < 5; ++i) d.inputs(i, j) = static_cast<T>(generator.normal());
      d.labels(j) = static_cast<int>(generator.below(3));
    }
    return d;
  }();
  return data;
}

// The objects of one training run, always built the same way.
template <class T>
struct Run {
  Run(const Run&) = delete;  // the schedule refers to the optimizer
  Run()
      : net(bnorm_test::every_layer_network<T>()),
        optimizer(bnorm::split_weight_decay(net.parameters()),
                  {.lr = 0.01, .weight_decay = 1e-3, .amsgrad = true}),
        schedule(optimizer, {.patience = 1, .cooldown = 1}),
        batches(examples<T>(), 4, 3) {}

  // A few steps, so that every state slot and counter holds something.
  void train(int steps) {
    bnorm::SoftmaxCrossEntropy<T> loss;
    for (int step = 0; step < steps; ++step) {
      if (batches.epoch() == 0 || !batches.next()) {
        batches.start_epoch();
        batches.next();
      }
      loss.forward(net.forward(batches.inputs(), bnorm::Mode::train), batches.labels());
      net.backward(loss.backward());
      optimizer.step();
      schedule.step(1.0 / (step + 1));
      generator.normal();
    }
  }
  std::string save() {
    return bnorm::detail::encode_checkpoint(net, optimizer, schedule, batches, generator);
  }
  void load(std::string_view bytes) {
    bnorm::detail::load_checkpoint_bytes(bytes, "fuzz input", net, optimizer, schedule, batches,
                                         generator);
  }

  bnorm::Sequential<T> net;
  bnorm::Adam<T> optimizer;
  bnorm::ReduceLROnPlateau schedule;
  bnorm::MiniBatches<T> batches;
  bnorm::Generator generator{5};
};

// `bytes` with its trailing CRC-32C made to fit the rest, so that mutations reach the parser
// instead of stopping at the checksum.
inline std::string with_valid_checksum(std::string_view bytes) {
  std::string fixed(bytes);
  if (fixed.size() < 4) return fixed;
  bnorm::ByteWriter checksum;
  checksum.u32(bnorm::crc32c(std::string_view(fixed).substr(0, fixed.size() - 4)));
  fixed.replace(fixed.size() - 4, 4, checksum.bytes());
  return fixed;
}

// One run per scalar type, built once (building it trains a network: most of an input's
// time), and its bytes as built, to which it returns after each input.
template <class T>
Run<T>& shared_run() {
  static Run<T> run;
  return run;
}
template <class T>
const std::string& pristine_bytes() {
  static const std::string bytes = shared_run<T>().save();
  return bytes;
}

template <class T>
void load_and_check(std::string_view bytes) {
  const std::string& before = pristine_bytes<T>();
  Run<T>& run = shared_run<T>();
  try {
    run.load(bytes);
  } catch (const bnorm::Error&) {
    if (run.save() != before) std::abort();  // all or nothing: a refused file changes nothing
    return;
  }
  if (run.save() != bytes) std::abort();
  run.load(before);
}

// One input; the entry point of fuzz_readers.cpp calls it.
inline int run(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  load_and_check<float>(bytes);
  load_and_check<double>(bytes);
  const std::string forged = with_valid_checksum(bytes);
  load_and_check<float>(forged);
  load_and_check<double>(forged);
  return 0;
}

}  // namespace bnorm_fuzz::checkpoint_target
