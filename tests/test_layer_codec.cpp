// The layer records (io/layer_codec.hpp): their bytes are those docs/model_format.md
// specifies, and every invalid record, even behind a valid checksum, is rejected with the
// layer and the byte offset at fault.
#include <bnorm/io/layer_codec.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/model_files.hpp"

#include <limits>

using namespace bnorm;
using namespace bnorm_test;

namespace {

// Records written by hand, field by field, as the format document lists them.
template <class T>
struct DenseRecord {
  std::uint64_t in = 2, out = 1;
  std::uint8_t bias = 1;
  std::vector<T> values = {T(1), T(2), T(3)};  // weight row-major, then bias
  void write(ByteWriter& w) const {
    w.u8(2);
    w.u64(in);
    w.u64(out);
    w.u8(bias);
    for (T value : values) w.scalar(value);
  }
};

template <class T>
struct BatchNormRecord {
  std::uint64_t features = 2;
  double momentum = 0.1, eps = 1e-5;
  std::uint8_t affine = 1, track = 1, average = 0;
  std::uint64_t ghost = 0;
  std::uint8_t renormalize = 0;
  double rmax = 1, dmax = 0;
  std::uint8_t small_batch = 0;
  std::vector<T> tensors = {T(1), T(1), T(0), T(0), T(0), T(0), T(1), T(1)};  // gamma beta mean var
  std::int64_t batches = 0;
  void write(ByteWriter& w) const {
    w.u8(3);
    w.u64(features);
    w.scalar(momentum);
    w.scalar(eps);
    w.u8(affine);
    w.u8(track);
    w.u8(average);
    w.u64(ghost);
    w.u8(renormalize);
    w.scalar(rmax);
    w.scalar(dmax);
    w.u8(small_batch);
    for (T value : tensors) w.scalar(value);
    w.i64(batches);
  }
};

struct DropoutRecord {
  double p = 0.5;
  std::uint64_t words[4] = {1, 2, 3, 4};
  double spare = 0.0;
  std::uint8_t has_spare = 0;
  void write(ByteWriter& w) const {
    w.u8(9);
    w.scalar(p);
    for (auto word : words) w.u64(word);
    w.scalar(spare);
    w.u8(has_spare);
  }
};

template <class T>
struct LeakyReLURecord {
  double slope = double(T(0.01));
  void write(ByteWriter& w) const {
    w.u8(5);
    w.scalar(slope);
  }
};

struct TagRecord {
  std::uint8_t tag;
  void write(ByteWriter& w) const { w.u8(tag); }
};

// A Sequential record holding `records`.
template <class... Records>
std::string sequential(const Records&... records) {
  ByteWriter w;
  w.u8(1);
  w.u64(sizeof...(records));
  (records.write(w), ...);
  return w.take();
}
struct Raw {
  std::string bytes;
  void write(ByteWriter& w) const { w.raw(bytes); }
};

template <class T>
std::string file_of(const std::string& payload) {
  return model_file(payload, sizeof(T) == 4 ? 1 : 2);
}

}  // namespace

TEST_CASE("The example file of docs/model_format.md") {
  Sequential<float> net{Dense<float>(2, 1)};
  net.layer<Dense<float>>(0).weight() << 1, 2;
  net.layer<Dense<float>>(0).bias() << 3;
  const unsigned char expected[] = {
      0x89, 0x42, 0x4E, 0x4F, 0x52, 0x4D, 0x0D, 0x0A, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00,
      0x00, 0x00, 0x27, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF6, 0xD1, 0xC5, 0x18,
      0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
      0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x40, 0x40};
  CHECK(save_bytes(net) == std::string(reinterpret_cast<const char*>(expected), sizeof expected));
}

TEST_CASE_TEMPLATE("Records are laid out as docs/model_format.md says", T, float, double) {
  SUBCASE("Dense: sizes, bias flag, weight row-major, bias") {
    Generator init(0);
    Sequential<T> net{Dense<T>(2, 3, Bias::learned, Init::xavier(), init), Dense<T>(3, 1, Bias::none)};
    auto& dense = net.template layer<Dense<T>>(0);
    dense.weight() << T(1), T(2), T(3), T(4), T(5), T(6);
    dense.bias() << T(7), T(8), T(9);
    net.template layer<Dense<T>>(1).weight() << T(-1), T(-2), T(-3);
    DenseRecord<T> first{2, 3, 1, {T(1), T(2), T(3), T(4), T(5), T(6), T(7), T(8), T(9)}};
    DenseRecord<T> second{3, 1, 0, {T(-1), T(-2), T(-3)}};
    CHECK(save_bytes(net) == file_of<T>(sequential(first, second)));
  }
  SUBCASE("BatchNorm: features, every option, gamma, beta, running statistics, counter") {
    BatchNormOptions<T> options;
    options.momentum = 0.2;
    options.eps = 1e-3;
    options.running_average = RunningAverage::cumulative;
    options.virtual_batch_size = 4;
    options.renormalize = true;
    options.rmax = 2;
    options.dmax = 0.5;
    options.small_batch = SmallBatch::use_running_statistics;
    BatchNormOptions<T> untracked;
    untracked.affine = false;
    untracked.track_running_stats = false;
    Sequential<T> net{BatchNorm<T>(2, options), BatchNorm<T>(1, untracked)};
    auto& norm = net.template layer<BatchNorm<T>>(0);
    norm.gamma() << T(1.5), T(2.5);
    norm.beta() << T(-1), T(1);
    norm.running_mean() << T(0.25), T(0.75);
    norm.running_var() << T(4), T(8);
    norm.set_num_batches_tracked(17);
    BatchNormRecord<T> first{2, 0.2, 1e-3, 1, 1, 1, 4, 1, 2, 0.5, 1,
                             {T(1.5), T(2.5), T(-1), T(1), T(0.25), T(0.75), T(4), T(8)}, 17};
    BatchNormRecord<T> second{1, 0.1, 1e-5, 0, 0, 0, 0, 0, 1, 0, 0, {T(1), T(0)}, 0};
    CHECK(save_bytes(net) == file_of<T>(sequential(first, second)));
  }
  SUBCASE("activations, LeakyReLU's slope, Dropout's p and generator, nesting") {
    Dropout<T> dropout(0.125, 5);
    dropout.generator().normal();
    const Generator::State state = dropout.generator().state();
    Sequential<T> net{ReLU<T>(), LeakyReLU<T>(T(0.5)), Sigmoid<T>(), Tanh<T>(), Identity<T>(),
                      dropout, Sequential<T>{Identity<T>()}};
    DropoutRecord dropout_record{0.125, {state.words[0], state.words[1], state.words[2], state.words[3]},
                                 state.spare_normal, 1};
    const std::string payload =
        sequential(TagRecord{4}, LeakyReLURecord<T>{0.5}, TagRecord{6}, TagRecord{7}, TagRecord{8},
                   dropout_record, Raw{sequential(TagRecord{8})});
    CHECK(save_bytes(net) == file_of<T>(payload));
  }
}

TEST_CASE_TEMPLATE("Invalid records are rejected with the layer and the byte at fault", T, float, double) {
  const auto rejects = [](const std::string& payload, std::initializer_list<std::string> words) {
    const std::string message = error_message([&] { load_bytes<T>(file_of<T>(payload)); });
    INFO("message: ", message);
    CHECK(message.rfind("<", 0) != 0);
    for (const std::string& word : words) CHECK_MESSAGE(message.find(word) != std::string::npos, "missing: ", word);
  };
  const std::size_t first_record = detail::model_header_size + 1 + 8;  // after tag and count

  // The records above are valid: the checks below change one field each.
  CHECK(load_bytes<T>(file_of<T>(sequential(DenseRecord<T>{}, BatchNormRecord<T>{}, DropoutRecord{},
                                            LeakyReLURecord<T>{}))).size() == 4);

  rejects("", {"truncated", "network tag"});
  rejects(Raw{"\x02"}.bytes, {"must start with a Sequential record", "found tag 2"});
  rejects(sequential(TagRecord{99}),
          {"layer 0", "unknown layer tag 99", "at byte " + std::to_string(first_record)});
  rejects(sequential(TagRecord{0}), {"unknown layer tag 0"});
  rejects(sequential(TagRecord{4}) + "x", {"1 bytes left over after the network"});
  {
    ByteWriter w;  // 2^62 layers announced, 1 present
    w.u8(1);
    w.u64(std::uint64_t{1} << 62);
    w.u8(4);
    rejects(w.bytes(), {"layer count is 4611686018427387904", "only 1 bytes remain"});
  }
  {
    ByteWriter w;  // 3 layers announced, 2 present
    w.u8(1);
    w.u64(3);
    w.u8(4);
    w.u8(4);
    rejects(w.bytes(), {"layer count is 3", "only 2 bytes remain"});
  }

  DenseRecord<T> dense;
  dense.in = 0;
  rejects(sequential(dense), {"layer 0 (Dense)", "in_features must be at least 1, found 0"});
  dense = {};
  dense.out = 0;
  rejects(sequential(dense), {"layer 0 (Dense)", "out_features must be at least 1"});
  dense = {};
  dense.in = dense.out = 3;  // 9 + 3 values needed, 3 present
  rejects(sequential(dense), {"layer 0 (Dense)", "3 x 3 weight does not fit"});
  dense = {};
  dense.in = dense.out = std::uint64_t{1} << 40;  // would be 2^80 bytes
  rejects(sequential(dense), {"layer 0 (Dense)", "in_features is 1099511627776", "bytes remain"});
  dense = {};
  dense.bias = 2;
  rejects(sequential(dense), {"layer 0 (Dense)", "bias flag must be 0 or 1, found 2",
                              "at byte " + std::to_string(first_record + 17)});
  dense = {};
  dense.values.pop_back();
  rejects(sequential(dense), {"layer 0 (Dense)", "truncated", "bias"});

  BatchNormRecord<T> norm;
  norm.eps = 0;
  rejects(sequential(DenseRecord<T>{}, norm), {"layer 1 (BatchNorm)", "invalid options", "eps must be finite and > 0"});
  norm = {};
  norm.momentum = std::numeric_limits<double>::quiet_NaN();
  rejects(sequential(norm), {"layer 0 (BatchNorm)", "momentum must be in [0, 1]"});
  norm = {};
  norm.average = 2;
  rejects(sequential(norm), {"running_average must be 0 or 1, found 2"});
  norm = {};
  norm.small_batch = 9;
  rejects(sequential(norm), {"small_batch must be 0 or 1, found 9"});
  norm = {};
  norm.affine = 0xFF;
  rejects(sequential(norm), {"affine must be 0 or 1, found 255"});
  norm = {};
  norm.ghost = 1;
  rejects(sequential(norm), {"virtual_batch_size must be 0 (off) or at least 2"});
  norm = {};
  norm.ghost = ~std::uint64_t{0};
  rejects(sequential(norm), {"virtual_batch_size 18446744073709551615 is out of range"});
  norm = {};
  norm.track = 0;
  norm.renormalize = 1;
  norm.tensors.resize(4);
  rejects(sequential(norm), {"needs track_running_stats"});
  norm = {};
  norm.rmax = 0.5;
  rejects(sequential(norm), {"rmax must be finite and >= 1"});
  norm = {};
  norm.dmax = -std::numeric_limits<double>::infinity();
  rejects(sequential(norm), {"dmax must be finite and >= 0"});
  norm = {};
  norm.batches = -1;
  rejects(sequential(norm), {"num_batches_tracked must be >= 0, found -1"});
  norm.batches = std::numeric_limits<std::int64_t>::max();  // the next training batch would overflow
  rejects(sequential(norm), {"layer 0 (BatchNorm)", "num_batches_tracked is 9223372036854775807",
                             "counting one more would overflow",
                             "at byte " + std::to_string(first_record + 54 + 8 * sizeof(T))});
  norm = {};
  norm.features = 4;  // 4 x 4 values needed, 8 present
  rejects(sequential(norm), {"layer 0 (BatchNorm)", "truncated", "gamma, beta and running statistics"});
  norm = {};
  norm.features = std::uint64_t{1} << 61;
  rejects(sequential(norm), {"features is 2305843009213693952", "bytes remain"});

  LeakyReLURecord<T> leaky{std::numeric_limits<double>::infinity()};
  rejects(sequential(leaky), {"layer 0 (LeakyReLU)", "slope must be a finite number"});
  if constexpr (std::is_same_v<decltype(LeakyReLU<T>().slope()), float>)  // options are f64 in files
    rejects(sequential(LeakyReLURecord<T>{0.1}), {"layer 0 (LeakyReLU)", "slope 0.1 is not a float value"});

  DropoutRecord dropout;
  dropout.p = 1.5;
  rejects(sequential(dropout), {"layer 0 (Dropout)", "p must be in [0, 1], got 1.5"});
  dropout.p = std::numeric_limits<double>::quiet_NaN();
  rejects(sequential(dropout), {"p must be in [0, 1]"});
  dropout = {};
  dropout.words[0] = dropout.words[1] = dropout.words[2] = dropout.words[3] = 0;
  rejects(sequential(dropout), {"generator state is all zero"});
  dropout = {};
  dropout.has_spare = 7;
  rejects(sequential(dropout), {"spare-normal flag must be 0 or 1, found 7"});
  dropout = {};
  dropout.spare = std::numeric_limits<double>::quiet_NaN();  // Box-Muller's values are finite
  rejects(sequential(dropout), {"layer 0 (Dropout)", "the generator's spare normal is nan",
                                "at byte " + std::to_string(first_record + 1 + 8 + 32)});

  // Nested: the index path names the inner layer.
  rejects(sequential(TagRecord{4}, Raw{sequential(TagRecord{6}, norm)}), {"layer 1.1 (BatchNorm)"});
  BatchNormRecord<T> zero_eps;
  zero_eps.eps = 0;
  rejects(sequential(TagRecord{4}, Raw{sequential(TagRecord{6}, zero_eps)}),
          {"layer 1.1 (BatchNorm)", "eps must be finite and > 0"});
  std::string deep = sequential(TagRecord{4});
  for (int depth = 1; depth < detail::max_nesting_depth; ++depth) deep = sequential(Raw{deep});
  CHECK(load_bytes<T>(file_of<T>(deep)).size() == 1);  // 64 levels: fine
  rejects(sequential(Raw{deep}), {"nested more than 64 deep"});
}
