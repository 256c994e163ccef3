// Model files for a user's layer type, registered with io/layer_registry.hpp: saved and
// loaded with its whole state (through its children), load_into, format version 2 only when
// needed, and damage behind a valid checksum rejected cleanly.
#include <bnorm/bnorm.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "support/errors.hpp"
#include "support/model_files.hpp"
#include "support/residual.hpp"

using namespace bnorm;
using bnorm_test::Residual;

namespace {
Sequential<double> residual_network() {
  manual_seed(11);
  return Sequential<double>{Dense<double>(4, 6), Residual<double>(6), Dense<double>(6, 3)};
}
void train(Sequential<double>& net) {
  SGD<double> sgd(net.parameters(), {.lr = 0.1});
  SoftmaxCrossEntropy<double> loss;
  const Matrix<double> x = Matrix<double>::Random(4, 16);
  const Labels labels = Labels::LinSpaced(16, 0, 2);
  for (int step = 0; step < 5; ++step) {
    loss.forward(net.forward(x, Mode::train), labels);
    net.backward(loss.backward());
    sgd.step();
  }
}
}  // namespace

namespace {
void register_residual() {
  register_layer<Residual<double>>(
      "Residual", 1, [](const Residual<double>& layer) { return std::vector<double>{double(layer.features())}; },
      [](const std::vector<double>& arguments, std::uint32_t) {
        // Arguments come from a file: a crafted one could ask for any size.
        detail::require(arguments.size() == 1 && arguments[0] >= 1 && arguments[0] <= 4096 &&
                            arguments[0] == static_cast<double>(static_cast<Index>(arguments[0])),
                        "Residual: expected one whole number of features in [1, 4096]");
        return Residual<double>(static_cast<Index>(arguments[0]));
      });
}
}  // namespace

TEST_CASE("A registered user's layer is saved and loaded with its whole state") {
  Sequential<double> net = residual_network();
  train(net);
  // Not registered yet: saving names the layer and the way out.
  CHECK_ERROR_MENTIONS(bnorm_test::save_bytes(net), "layer 1 (Residual(6))", "register_layer");
  register_residual();
  const std::string bytes = bnorm_test::save_bytes(net);
  CHECK(bytes[8] == 2);  // format version 2: it holds a registered layer
  std::istringstream in(bytes);
  Sequential<double> loaded = load<double>(in);
  CHECK(loaded.name() == net.name());
  CHECK(bnorm_test::save_bytes(loaded) == bytes);  // one encoding: saved back bit for bit
  std::string as_version_1 = bytes;
  as_version_1[8] = 1;
  CHECK_ERROR_MENTIONS(bnorm_test::load_bytes<double>(bnorm_test::with_valid_checksum(as_version_1)),
                       "format version 1 holds a registered layer", "needs version 2");
  const Matrix<double> x = Matrix<double>::Random(4, 6);
  CHECK(loaded.forward(x, Mode::eval) == net.forward(x, Mode::eval));
  auto a = net.buffers(), b = loaded.buffers();
  REQUIRE(a.size() == b.size());
  CHECK(a[0].values() == b[0].values());
  CHECK(a[2].counter() == b[2].counter());
  CHECK(a[2].counter() == 5);

  // load_into: copies in place; an argument that differs is named.
  Sequential<double> other = residual_network();
  std::istringstream again(bytes);
  load_into(other, again);
  CHECK(other.forward(x, Mode::eval) == net.forward(x, Mode::eval));
  Sequential<double> wider{Dense<double>(4, 7), Residual<double>(7), Dense<double>(7, 3)};
  std::istringstream third(bytes);
  CHECK_ERROR_MENTIONS(load_into(wider, third), "does not match");

  // A file written without the user's layer is still version 1, readable by older bnorm.
  CHECK(bnorm_test::save_bytes(Sequential<double>{Dense<double>(2, 2)})[8] == 1);

  // Damage behind a valid checksum is rejected cleanly, never a crash.
  int rejected = 0, loaded_count = 0;
  for (std::size_t i = detail::model_header_size; i < bytes.size(); ++i)
    for (int flip : {0x01, 0x80, 0xFF}) {
      std::string damaged = bytes;
      damaged[i] = static_cast<char>(damaged[i] ^ flip);
      std::istringstream stream(bnorm_test::with_valid_checksum(damaged));
      try {
        load<double>(stream);
        ++loaded_count;
      } catch (const Error&) {
        ++rejected;
      }
    }
  CHECK(rejected > 0);
  CHECK(loaded_count > 0);  // a changed weight is still a valid model
  for (std::size_t size = 0; size < bytes.size(); ++size) {
    std::istringstream stream(bytes.substr(0, size));
    CHECK_THROWS_AS(load<double>(stream), Error);
  }
}

TEST_CASE("A registered layer's counter is refused below 0 and at the largest i64") {
  register_residual();
  Sequential<double> net = residual_network();
  train(net);
  const std::string bytes = bnorm_test::save_bytes(net);
  // The state entry "norm.num_batches_tracked": its name, its kind byte (1, counter), its i64.
  const std::string name = "norm.num_batches_tracked";
  const std::size_t at = bytes.find(name);
  REQUIRE(at != std::string::npos);
  const std::size_t counter_at = at + name.size() + 1;
  REQUIRE(bytes[counter_at - 1] == 1);
  const auto with_counter = [&](std::int64_t value) {
    std::string changed = bytes;
    for (int i = 0; i < 8; ++i)
      changed[counter_at + i] = static_cast<char>((static_cast<std::uint64_t>(value) >> (8 * i)) & 0xFF);
    return bnorm_test::with_valid_checksum(changed);
  };
  CHECK(bnorm_test::load_bytes<double>(with_counter(7)).size() == 3);
  // Each check in the words the message must hold, the byte offset last.
  const std::string where = "at byte " + std::to_string(counter_at);
  struct Case {
    std::int64_t counter;
    std::vector<std::string> words;
  };
  for (const Case& bad :
       {Case{-1, {"norm.num_batches_tracked must be >= 0, found -1"}},
        Case{std::numeric_limits<std::int64_t>::max(),
             {"norm.num_batches_tracked is 9223372036854775807", "counting one more would overflow"}}}) {
    const std::string message =
        bnorm_test::error_message([&] { bnorm_test::load_bytes<double>(with_counter(bad.counter)); });
    INFO("message: ", message);
    CHECK(message.find("layer 1 (Residual)") != std::string::npos);
    CHECK(message.find(where) != std::string::npos);
    for (const std::string& word : bad.words) CHECK_MESSAGE(message.find(word) != std::string::npos, "missing: ", word);
  }
}

namespace {
// A registered kind with no state and no arguments: the smallest registered record.
struct Passthrough : Identity<double> {};

// The shortest of three runs of load and load_into of a file of n Passthrough layers.
double seconds_to_load(std::size_t n) {
  Sequential<double> net;
  for (std::size_t i = 0; i < n; ++i) net.add(Passthrough());
  const std::string bytes = bnorm_test::save_bytes(net);
  double best = 1e300;
  for (int run = 0; run < 3; ++run) {
    const auto start = std::chrono::steady_clock::now();
    std::istringstream in(bytes), again(bytes);
    const Sequential<double> loaded = load<double>(in);
    load_into(net, again);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    CHECK(loaded.size() == n);
  }
  return best;
}
}  // namespace

TEST_CASE("Loading n registered layers takes time linear in n, not quadratic") {
  register_layer<Passthrough>(
      "Passthrough", 1, [](const Passthrough&) { return std::vector<double>{}; },
      [](const std::vector<double>&, std::uint32_t) { return Passthrough(); });
  // Eight times the layers: about 8 times the time when linear, 64 when quadratic (listing
  // every layer once per registered layer: 20,000 took 8 s to load, 87 s to load_into).
  const double small = seconds_to_load(1000), large = seconds_to_load(8000);
  INFO("1000 layers: ", small, " s, 8000 layers: ", large, " s");
  CHECK(large < 20 * small);
}
