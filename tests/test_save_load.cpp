// save, load and load_into (io/save_load.hpp): bit-exact round trips for every layer and
// option, the strict architecture check of load_into, and the errors of the file API.
#include <bnorm/io/save_load.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/model_files.hpp"

#include <limits>

using namespace bnorm;
using namespace bnorm_test;

namespace {

template <class T>
Matrix<T> inputs(Index features, Index batch, std::uint64_t seed) {
  Generator generator(seed);
  Matrix<T> x(features, batch);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<T>(generator.normal(0.3, 1.5));
  return x;
}

// Everything a network does after a reload is what the original does: the same bytes when
// saved again, the same eval outputs, and the same training outputs (Dropout's masks, the
// batch statistics) with the same state afterwards.
template <class T>
void check_same_behaviour(Sequential<T>& original, Sequential<T>& reloaded, Index features) {
  CHECK(save_bytes(reloaded) == save_bytes(original));
  CHECK(reloaded.name() == original.name());
  const Matrix<T> x = inputs<T>(features, 7, 5);
  CHECK(same_bits(reloaded.forward(x, Mode::eval), original.forward(x, Mode::eval)));
  CHECK(same_bits(reloaded.forward(x, Mode::train), original.forward(x, Mode::train)));
  CHECK(save_bytes(reloaded) == save_bytes(original));
}

}  // namespace

TEST_CASE_TEMPLATE("Round trip of every layer kind, bit-exact, eval and train identical", T, float, double) {
  Sequential<T> original = every_layer_network<T>();
  Sequential<T> reloaded = load_bytes<T>(save_bytes(original));
  REQUIRE(reloaded.size() == original.size());

  // The state, piece by piece (save_bytes equality covers it too; these say what failed).
  const auto& norm = reloaded.template layer<BatchNorm<T>>(1);
  const auto& saved_norm = original.template layer<BatchNorm<T>>(1);
  CHECK(norm.num_batches_tracked() == 3);
  CHECK(same_bits(norm.running_mean(), saved_norm.running_mean()));
  CHECK(same_bits(norm.running_var(), saved_norm.running_var()));
  CHECK(same_bits(norm.gamma(), saved_norm.gamma()));
  CHECK(same_bits(norm.beta(), saved_norm.beta()));
  const auto& light = reloaded.template layer<BatchNorm<T>>(4).options();
  CHECK(light.momentum == 0.25);
  CHECK(light.eps == 1e-3);
  CHECK_FALSE(light.affine);
  CHECK_FALSE(reloaded.template layer<BatchNorm<T>>(8).tracking());
  CHECK(reloaded.template layer<BatchNorm<T>>(8).running_mean().size() == 0);
  CHECK(reloaded.template layer<LeakyReLU<T>>(5).slope() == T(0.2));
  CHECK(reloaded.template layer<Dropout<T>>(6).p() == 0.25);
  CHECK(reloaded.template layer<Dropout<T>>(6).generator() ==
        original.template layer<Dropout<T>>(6).generator());
  CHECK_FALSE(reloaded.template layer<Dense<T>>(3).has_bias());
  CHECK(same_bits(reloaded.template layer<Dense<T>>(0).weight(),
                  original.template layer<Dense<T>>(0).weight()));

  const auto& inner = reloaded.template layer<Sequential<T>>(7);
  const auto& renorm = inner.template layer<BatchNorm<T>>(1).options();
  CHECK(renorm.renormalize);
  CHECK(renorm.rmax == 2.5);
  CHECK(renorm.dmax == 1.5);
  const auto& innermost = inner.template layer<Sequential<T>>(3);
  const auto& ghost = innermost.template layer<BatchNorm<T>>(1).options();
  CHECK(ghost.running_average == RunningAverage::cumulative);
  CHECK(ghost.virtual_batch_size == 3);
  CHECK(ghost.small_batch == SmallBatch::use_running_statistics);
  CHECK(innermost.template holds<Sigmoid<T>>(2));

  check_same_behaviour(original, reloaded, 5);
}

TEST_CASE_TEMPLATE("Round trip of every combination of BatchNorm options", T, float, double) {
  int combinations = 0;
  for (bool affine : {true, false})
    for (bool track : {true, false})
      for (RunningAverage average : {RunningAverage::exponential, RunningAverage::cumulative})
        for (Index ghost : {Index(0), Index(3)})
          for (bool renormalize : {false, true})
            for (SmallBatch small : {SmallBatch::error, SmallBatch::use_running_statistics}) {
              if (renormalize && !track) continue;  // BatchNorm rejects it
              auto options = batch_norm_options<T>(affine, track, average, ghost, renormalize, small);
              options.momentum = 0.3;
              options.eps = 2e-4;
              Generator init(combinations);
              Sequential<T> original{Dense<T>(4, 5, Bias::none, Init::he(), init),
                                     BatchNorm<T>(5, options), Tanh<T>()};
              train_a_little(original, 4, 7, 2);
              Sequential<T> reloaded = load_bytes<T>(save_bytes(original));
              CAPTURE(combinations);
              CHECK(reloaded.template layer<BatchNorm<T>>(1).num_batches_tracked() ==
                    original.template layer<BatchNorm<T>>(1).num_batches_tracked());
              check_same_behaviour(original, reloaded, 4);
              ++combinations;
            }
  CHECK(combinations == 48);
}

TEST_CASE_TEMPLATE("Special values survive bit-exactly: NaN payloads, infinities, -0, subnormals",
                   T, float, double) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  Generator init(3);
  Sequential<T> net{Dense<T>(3, 2, Bias::learned, Init::xavier(), init)};
  auto& weight = net.template layer<Dense<T>>(0).weight();
  weight(0, 0) = std::bit_cast<T>(Bits(std::bit_cast<Bits>(std::numeric_limits<T>::quiet_NaN()) | 5));
  weight(0, 1) = -std::numeric_limits<T>::infinity();
  weight(0, 2) = T(-0.0);
  weight(1, 0) = std::numeric_limits<T>::denorm_min();
  weight(1, 1) = std::numeric_limits<T>::max();
  weight(1, 2) = std::numeric_limits<T>::lowest();
  const Sequential<T> reloaded = load_bytes<T>(save_bytes(net));
  CHECK(same_bits(reloaded.template layer<Dense<T>>(0).weight(), weight));
}

TEST_CASE("Empty networks and empty nested Sequentials round-trip") {
  const Sequential<float> empty;
  CHECK(load_bytes<float>(save_bytes(empty)).empty());
  Sequential<double> nested;
  nested.add(Sequential<double>()).add(ReLU<double>());
  const Sequential<double> reloaded = load_bytes<double>(save_bytes(nested));
  REQUIRE(reloaded.size() == 2);
  CHECK(reloaded.layer<Sequential<double>>(0).empty());
  CHECK(reloaded.holds<ReLU<double>>(1));
}

TEST_CASE_TEMPLATE("Saving to a file and loading it back", T, float, double) {
  TempDir folder;
  Sequential<T> original = every_layer_network<T>();
  const auto path = folder / "net.bnorm";
  save(original, path);
  CHECK(folder.files() == std::vector<std::string>{"net.bnorm"});  // no temporary left
  CHECK(read_file(path) == save_bytes(original));

  const Generator before = default_generator();
  Sequential<T> reloaded = load<T>(path);
  CHECK(default_generator() == before);  // loading draws no random numbers of the user's
  check_same_behaviour(original, reloaded, 5);

  // Saving again replaces the file.
  train_a_little(original, 5);
  save(original, path.string());
  CHECK(read_file(path) == save_bytes(original));
}

TEST_CASE("A model file is read from a stream that holds more than one model") {
  const Sequential<float> first = small_network<float>();
  Sequential<float> second{Dense<float>(3, 1)};
  std::stringstream stream(std::ios::in | std::ios::out | std::ios::binary);
  save(first, stream);
  save(second, stream);
  CHECK(save_bytes(load<float>(stream)) == save_bytes(first));
  CHECK(save_bytes(load<float>(stream)) == save_bytes(second));
  CHECK_ERROR_MENTIONS(load<float>(stream), "model stream", "is empty");
}

// ---- load_into ------------------------------------------------------------------------

TEST_CASE_TEMPLATE("load_into copies the state into the layers in place", T, float, double) {
  TempDir folder;
  const Sequential<T> trained = every_layer_network<T>();
  save(trained, folder / "net.bnorm");

  manual_seed(12345);  // a different initialization, the same architecture
  Sequential<T> net = every_layer_network<T>();
  train_a_little(net, 5, 8, 1);
  std::vector<const T*> addresses;
  for (auto& parameter : net.parameters()) addresses.push_back(parameter.value().data());

  load_into(net, folder / "net.bnorm");
  CHECK(save_bytes(net) == save_bytes(trained));
  std::size_t i = 0;
  for (auto& parameter : net.parameters())  // the optimizer's views still point at them
    CHECK(parameter.value().data() == addresses[i++]);

  Sequential<T> copy = trained;
  check_same_behaviour(copy, net, 5);
}

namespace {

// What a network is and does: its file (if it can be saved) and an eval output.
template <class T>
std::string state_of(Sequential<T>& net, Index features) {
  std::string state;
  try {
    state = save_bytes(net);
  } catch (const Error&) {
  }
  const Matrix<T> y = net.forward(inputs<T>(features, 3, 1), Mode::eval);
  state.append(reinterpret_cast<const char*>(y.data()), sizeof(T) * static_cast<std::size_t>(y.size()));
  return state;
}

// load_into(network, file of `saved`) must fail with `words` and leave the network as it was.
template <class T>
void check_mismatch(const Sequential<T>& saved, Sequential<T> network,
                    std::initializer_list<const char*> words, Index features) {
  const std::string file = save_bytes(saved);
  const std::string before = state_of(network, features);
  const std::string message = bnorm_test::error_message([&] {
    std::istringstream in(file, std::ios::binary);
    load_into(network, in);
  });
  INFO("message: ", message);
  CHECK(message.rfind("<", 0) != 0);
  CHECK(message.find("does not match the network") != std::string::npos);
  for (const char* word : words) CHECK_MESSAGE(message.find(word) != std::string::npos, "missing: ", word);
  CHECK(state_of(network, features) == before);  // unchanged, and usable
}

template <class T>
Sequential<T> one(auto layer) {
  Sequential<T> net;
  net.add(std::move(layer));
  return net;
}

template <class T>
BatchNormOptions<T> changed(void (*change)(BatchNormOptions<T>&)) {
  BatchNormOptions<T> options;
  change(options);
  return options;
}

// A layer type bnorm does not know.
class Doubler {
 public:
  const Matrix<float>& forward(const Eigen::Ref<const Matrix<float>>& x, Mode) {
    output_ = 2 * x;
    return output_;
  }
  const Matrix<float>& backward(const Eigen::Ref<const Matrix<float>>& dy) {
    grad_ = 2 * dy;
    return grad_;
  }
  std::string name() const { return "Doubler"; }

 private:
  Matrix<float> output_, grad_;
};

}  // namespace

TEST_CASE("load_into rejects every difference of architecture, naming layer, argument and values") {
  using T = float;
  Generator g(4);
  const Sequential<T> saved{Dense<T>(4, 5, Bias::learned, Init::xavier(), g), BatchNorm<T>(5), ReLU<T>(),
                            Dropout<T>(0.5, 1), LeakyReLU<T>(T(0.1)),
                            Sequential<T>{Dense<T>(5, 2, Bias::learned, Init::xavier(), g), Tanh<T>()}};
  auto like_saved = [&] { return saved; };

  SUBCASE("layer count") {
    auto network = like_saved();
    network.add(Identity<T>());
    check_mismatch(saved, network, {"the network has 7 layers, the file has 6"}, 4);
  }
  SUBCASE("layer kind") {
    Sequential<T> network{Dense<T>(4, 5, Bias::learned, Init::xavier(), g), BatchNorm<T>(5),
                          Sigmoid<T>(), Dropout<T>(0.5, 1), LeakyReLU<T>(T(0.1)),
                          Sequential<T>{Dense<T>(5, 2), Tanh<T>()}};
    check_mismatch(saved, network, {"layer 2", "the network has Sigmoid", "the file has ReLU"}, 4);
  }
  SUBCASE("a layer of the user's own in the network") {
    Sequential<T> file{Identity<T>()};
    Sequential<T> network{Doubler()};
    check_mismatch(file, network, {"layer 0", "Doubler", "not a built-in layer", "the file has Identity"}, 2);
  }
  SUBCASE("nested Sequential: the index path of the layer") {
    Sequential<T> network{Dense<T>(4, 5, Bias::learned, Init::xavier(), g), BatchNorm<T>(5), ReLU<T>(),
                          Dropout<T>(0.5, 1), LeakyReLU<T>(T(0.1)),
                          Sequential<T>{Dense<T>(5, 2, Bias::none), Tanh<T>()}};
    check_mismatch(saved, network, {"layer 5.0", "Dense(5 -> 2, no bias)", "bias differs",
                                    "the network has false, the file has true"}, 4);
  }
  SUBCASE("nested Sequential: its layer count") {
    Sequential<T> network{Dense<T>(4, 5, Bias::learned, Init::xavier(), g), BatchNorm<T>(5), ReLU<T>(),
                          Dropout<T>(0.5, 1), LeakyReLU<T>(T(0.1)),
                          Sequential<T>{Dense<T>(5, 2)}};
    check_mismatch(saved, network, {"layer 5", "the network has 1 layers, the file has 2"}, 4);
  }
  SUBCASE("Dense in_features") {
    check_mismatch(one<T>(Dense<T>(4, 5)), one<T>(Dense<T>(3, 5)),
                   {"layer 0", "in_features differs", "the network has 3, the file has 4"}, 3);
  }
  SUBCASE("Dense out_features") {
    check_mismatch(one<T>(Dense<T>(4, 5)), one<T>(Dense<T>(4, 6)),
                   {"layer 0", "out_features differs", "the network has 6, the file has 5"}, 4);
  }
  SUBCASE("Dense bias") {
    check_mismatch(one<T>(Dense<T>(4, 5)), one<T>(Dense<T>(4, 5, Bias::none)),
                   {"layer 0", "bias differs", "the network has false, the file has true"}, 4);
  }
  SUBCASE("BatchNorm features") {
    check_mismatch(one<T>(BatchNorm<T>(5)), one<T>(BatchNorm<T>(6)),
                   {"layer 0 (BatchNorm(6))", "features differs", "the network has 6, the file has 5"}, 6);
  }
  struct OptionCase {
    const char* what;
    void (*change)(BatchNormOptions<T>&);
    const char* network_value;
    const char* file_value;
  };
  const OptionCase option_cases[] = {
      {"momentum", [](BatchNormOptions<T>& o) { o.momentum = 0.2; }, "0.2", "0.1"},
      {"eps", [](BatchNormOptions<T>& o) { o.eps = 1e-3; }, "0.001", "1e-05"},
      {"affine", [](BatchNormOptions<T>& o) { o.affine = false; }, "false", "true"},
      {"track_running_stats", [](BatchNormOptions<T>& o) { o.track_running_stats = false; }, "false", "true"},
      {"running_average", [](BatchNormOptions<T>& o) { o.running_average = RunningAverage::cumulative; },
       "cumulative", "exponential"},
      {"virtual_batch_size", [](BatchNormOptions<T>& o) { o.virtual_batch_size = 4; }, "4", "0"},
      {"renormalize", [](BatchNormOptions<T>& o) { o.renormalize = true; }, "true", "false"},
      {"rmax", [](BatchNormOptions<T>& o) { o.rmax = 3; }, "3", "1"},
      {"dmax", [](BatchNormOptions<T>& o) { o.dmax = 5; }, "5", "0"},
      {"small_batch", [](BatchNormOptions<T>& o) { o.small_batch = SmallBatch::use_running_statistics; },
       "use_running_statistics", "error"},
  };
  SUBCASE("each BatchNorm option") {
    for (const OptionCase& option : option_cases) {
      CAPTURE(option.what);
      const std::string differs = std::string(option.what) + " differs";
      const std::string values = std::string("the network has ") + option.network_value +
                                 ", the file has " + option.file_value;
      check_mismatch(one<T>(BatchNorm<T>(5)), one<T>(BatchNorm<T>(5, changed<T>(option.change))),
                     {"layer 0 (BatchNorm(5))", differs.c_str(), values.c_str()}, 5);
    }
  }
  SUBCASE("LeakyReLU slope") {
    check_mismatch(one<T>(LeakyReLU<T>(T(0.1))), one<T>(LeakyReLU<T>(T(0.3))),
                   {"layer 0", "slope differs", "the network has 0.3, the file has 0.1"}, 2);
  }
  SUBCASE("Dropout p") {
    check_mismatch(one<T>(Dropout<T>(0.5, 1)), one<T>(Dropout<T>(0.25, 1)),
                   {"layer 0 (Dropout(0.25))", "p differs", "the network has 0.25, the file has 0.5"}, 2);
  }
}

TEST_CASE("load_into: a file that cannot be read leaves the network as it was") {
  TempDir folder;
  Sequential<float> net = small_network<float>();
  const std::string before = save_bytes(net);
  CHECK_ERROR_MENTIONS(load_into(net, folder / "absent.bnorm"), "absent.bnorm", "no such file");
  std::string damaged = before;
  damaged[damaged.size() - 3] ^= 0x10;
  write_file(folder / "damaged.bnorm", damaged);
  CHECK_ERROR_MENTIONS(load_into(net, folder / "damaged.bnorm"), "damaged.bnorm", "checksum mismatch");
  write_file(folder / "short.bnorm", before.substr(0, before.size() - 1));
  CHECK_ERROR_MENTIONS(load_into(net, folder / "short.bnorm"), "short.bnorm", "truncated");
  save(small_network<double>(), folder / "double.bnorm");
  CHECK_ERROR_MENTIONS(load_into(net, folder / "double.bnorm"), "wrong scalar type");
  CHECK(save_bytes(net) == before);
  CHECK(net.forward(Matrix<float>::Ones(2, 3), Mode::eval).allFinite());
}

// ---- Errors of the file API -------------------------------------------------------------

TEST_CASE("A layer type bnorm does not know cannot be saved; no file is touched") {
  TempDir folder;
  const auto path = folder / "net.bnorm";
  save(small_network<float>(), path);
  const std::string previous = read_file(path);
  Sequential<float> net{Dense<float>(2, 2), Sequential<float>{ReLU<float>(), Doubler()}};
  CHECK_ERROR_MENTIONS(save(net, path), "cannot save layer 1.1", "Doubler", "not a built-in bnorm layer");
  std::ostringstream stream;
  CHECK_ERROR_MENTIONS(save(net, stream), "layer 1.1 (Doubler)");
  CHECK(read_file(path) == previous);
  CHECK(folder.files() == std::vector<std::string>{"net.bnorm"});
}

TEST_CASE("Loading: missing file, folder, empty file, other scalar type, trailing bytes") {
  TempDir folder;
  CHECK_ERROR_MENTIONS(load<float>(folder / "absent.bnorm"), "model file '", "absent.bnorm", "no such file");
  CHECK_ERROR_MENTIONS(load<float>(folder.path()), "is a directory");
  write_file(folder / "empty.bnorm", "");
  CHECK_ERROR_MENTIONS(load<float>(folder / "empty.bnorm"), "empty.bnorm", "is empty");

  save(small_network<float>(), folder / "float.bnorm");
  save(small_network<double>(), folder / "double.bnorm");
  CHECK_ERROR_MENTIONS(load<double>(folder / "float.bnorm"), "float.bnorm", "wrong scalar type",
                       "holds float (32-bit) values", "double (64-bit) was asked for",
                       "bnorm::load<float>");
  CHECK_ERROR_MENTIONS(load<float>(folder / "double.bnorm"), "double.bnorm", "wrong scalar type",
                       "holds double (64-bit) values", "bnorm::load<double>");

  write_file(folder / "long.bnorm", read_file(folder / "float.bnorm") + "x");
  CHECK_ERROR_MENTIONS(load<float>(folder / "long.bnorm"), "long.bnorm",
                       "unexpected bytes after the end of the model");
}

#if defined(__unix__) || defined(__APPLE__)
TEST_CASE("Loading a file without read permission") {
  if (::geteuid() == 0) {
    MESSAGE("skipped: root reads any file");
    return;
  }
  TempDir folder;
  save(small_network<float>(), folder / "locked.bnorm");
  std::filesystem::permissions(folder / "locked.bnorm", std::filesystem::perms::none);
  CHECK_ERROR_MENTIONS(load<float>(folder / "locked.bnorm"), "locked.bnorm", "cannot be opened");
}
#endif

TEST_CASE("Saving into a missing folder, under a file, or over a folder fails cleanly") {
  TempDir folder;
  const Sequential<float> net = small_network<float>();
  CHECK_ERROR_MENTIONS(save(net, folder / "absent" / "net.bnorm"), "cannot save", "net.bnorm",
                       "creating a temporary file", "is unchanged");
  write_file(folder / "plain", "x");
  CHECK_ERROR_MENTIONS(save(net, folder / "plain" / "net.bnorm"), "cannot save", "creating a temporary file");
  std::filesystem::create_directory(folder / "sub");
  CHECK_ERROR_MENTIONS(save(net, folder / "sub"), "cannot save", "renaming the temporary file");
  CHECK_ERROR_MENTIONS(save(net, folder.path() / ""), "names a folder");
  CHECK(folder.files() == std::vector<std::string>{"plain", "sub"});
  CHECK(std::filesystem::is_empty(folder / "sub"));
}

TEST_CASE_TEMPLATE("A save interrupted after the temporary file is written keeps the previous model",
                   T, float, double) {
  TempDir folder;
  const auto path = folder / "net.bnorm";
  const Sequential<T> first = small_network<T>();
  save(first, path);
  Sequential<T> second = every_layer_network<T>();
  const std::string second_bytes = detail::encode_model(second);

  // save() is write_file_atomically(path, encode_model(net)); this is the same with a rename
  // that fails once the temporary file holds the whole new model.
  bool temporary_was_complete = false;
  const auto fail_rename = [&](detail::AtomicWriteStep step, std::size_t,
                               const std::filesystem::path& temporary) {
    if (step != detail::AtomicWriteStep::rename) return;
    temporary_was_complete = read_file(temporary) == second_bytes;
    throw std::runtime_error("simulated crash");
  };
  CHECK_ERROR_MENTIONS(detail::write_file_atomically(path, second_bytes, fail_rename, 1 << 20),
                       "cannot save", "net.bnorm", "renaming", "simulated crash", "is unchanged");
  CHECK(temporary_was_complete);
  CHECK(folder.files() == std::vector<std::string>{"net.bnorm"});
  CHECK(save_bytes(load<T>(path)) == save_bytes(first));
}
