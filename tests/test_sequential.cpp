// bnorm-test-own-program: it replaces operator new (to fail an allocation on demand)
// bnorm-test-variant: isa_baseline BNORM_ISA=baseline  (also run on the baseline kernels)
#include <bnorm/bnorm.hpp>

#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>
#include <sstream>

#include "support/errors.hpp"
#include "support/gradient_check.hpp"
#include "support/layer_checks.hpp"

using namespace bnorm;

// Allocation failure on demand: with allocations_before_failure = n >= 0, the n-th next
// operator new (counting from 0) throws std::bad_alloc; -1 never.
namespace {
std::atomic<long> allocations_before_failure{-1};
}
// GCC warns that free() meets memory from operator new; here operator new is malloc.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t size) {
  const long left = allocations_before_failure.load();
  if (left == 0) {
    allocations_before_failure = -1;
    throw std::bad_alloc();
  }
  if (left > 0) allocations_before_failure = left - 1;
  if (void* memory = std::malloc(size ? size : 1)) return memory;
  throw std::bad_alloc();
}
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t) noexcept { std::free(memory); }

namespace {
// A layer written by a user: y = s * x with one learnable scalar s. It meets the contract
// of core/layer.hpp, so a Sequential takes it like a built-in layer.
class Scale {
 public:
  const Matrix<double>& forward(const Eigen::Ref<const Matrix<double>>& x, Mode) {
    input_ = x;
    output_ = scale_(0) * x;
    return output_;
  }
  const Matrix<double>& backward(const Eigen::Ref<const Matrix<double>>& dy) {
    scale_grad_(0) = dy.cwiseProduct(input_).sum();
    input_grad_ = scale_(0) * dy;
    return input_grad_;
  }
  std::vector<Parameter<double>> parameters() { return {Parameter<double>("scale", scale_, scale_grad_)}; }
  std::string name() const { return "Scale"; }

 private:
  Matrix<double> scale_ = Matrix<double>::Constant(1, 1, 1.5), scale_grad_ = Matrix<double>::Zero(1, 1);
  Matrix<double> input_, output_, input_grad_;
};
static_assert(Layer<Scale, double>);
static_assert(Layer<Sequential<float>, float>);
static_assert(Layer<Dense<float>, float> && Layer<BatchNorm<double>, double>);
}  // namespace

TEST_CASE("Brace construction and add() build the same network") {
  manual_seed(0);
  Sequential<float> braced{Dense<float>(4, 3, Bias::none), BatchNorm<float>(3), ReLU<float>(),
                           Dense<float>(3, 2)};
  manual_seed(0);
  Sequential<float> added;
  added.add(Dense<float>(4, 3, Bias::none)).add(BatchNorm<float>(3)).add(ReLU<float>());
  added.add(Dense<float>(3, 2));
  const Matrix<float> x = Matrix<float>::Random(4, 5);
  CHECK(braced.forward(x, Mode::train) == added.forward(x, Mode::train));
  CHECK(braced.size() == 4);
  CHECK(braced.name() ==
        "Sequential(Dense(4 -> 3, no bias), BatchNorm(3), ReLU, Dense(3 -> 2))");
}

TEST_CASE("Depth is chosen at run time") {
  for (int depth : {1, 5, 20}) {
    Sequential<double> net;
    net.add(Dense<double>(8, 16, Bias::none)).add(BatchNorm<double>(16)).add(Tanh<double>());
    for (int i = 1; i < depth; ++i)
      net.add(Dense<double>(16, 16, Bias::none)).add(BatchNorm<double>(16)).add(Tanh<double>());
    net.add(Dense<double>(16, 3));
    CHECK(net.size() == std::size_t(3 * depth + 1));
    CHECK(net.parameters().size() == std::size_t(3 * depth + 2));
    CHECK(net.forward(Matrix<double>::Random(8, 4), Mode::train).rows() == 3);
  }
}

TEST_CASE("parameters() come in PyTorch's order with state_dict names") {
  Sequential<float> net{Dense<float>(4, 3, Bias::none), BatchNorm<float>(3), ReLU<float>(),
                        Dense<float>(3, 2)};
  const auto parameters = net.parameters();
  REQUIRE(parameters.size() == 5);
  const char* names[] = {"0.weight", "1.weight", "1.bias", "3.weight", "3.bias"};
  const Index rows[] = {3, 3, 3, 2, 2}, cols[] = {4, 1, 1, 3, 1};
  for (int i = 0; i < 5; ++i) {
    CHECK(parameters[i].name() == names[i]);
    CHECK(parameters[i].rows() == rows[i]);
    CHECK(parameters[i].cols() == cols[i]);
  }
  // The views point at the layers' own storage.
  CHECK(parameters[0].value().data() == net.layer<Dense<float>>(0).weight().data());
  CHECK(parameters[2].value().data() == net.layer<BatchNorm<float>>(1).beta().data());
}

TEST_CASE("A user-defined layer trains inside a Sequential") {
  Sequential<double> net{Dense<double>(3, 2), Scale{}};
  const Matrix<double> x = Matrix<double>::Random(3, 4);
  net.forward(x, Mode::train);
  net.backward(Matrix<double>::Ones(2, 4));
  const auto parameters = net.parameters();
  REQUIRE(parameters.size() == 3);
  CHECK(parameters[2].name() == "1.scale");
  CHECK(parameters[2].grad()(0) != 0.0);
  CHECK(net.layer<Scale>(1).name() == "Scale");
}

TEST_CASE("A whole network with every layer type passes the gradient check") {
  Generator generator(1);
  Sequential<double> net{
      Dense<double>(5, 6, Bias::none, Init::pytorch_default(), generator),
      BatchNorm<double>(6),
      LeakyReLU<double>(0.1),
      Dense<double>(6, 6, Bias::learned, Init::xavier(), generator),
      Sigmoid<double>(),
      Dropout<double>(0.25, 3),
      Dense<double>(6, 5, Bias::none, Init::he(), generator),
      BatchNorm<double>(5),
      Tanh<double>(),
      Identity<double>(),
      Scale{},
      Dense<double>(5, 4),
      ReLU<double>()};
  net.layer<BatchNorm<double>>(1).gamma().setConstant(1.3);
  auto& dropout = net.layer<Dropout<double>>(5);
  const Generator start = dropout.generator();
  bnorm_test::GradientCheckOptions options;
  options.before_forward = [&] { dropout.generator() = start; };
  const auto check = bnorm_test::check_gradients(net, bnorm_test::random_input(5, 7, 2), options);
  INFO(check.worst);
  CHECK(check.max_error < 1e-7);
  CHECK(check.entries_checked == 5 * 7 + 30 + 12 + 36 + 6 + 30 + 10 + 1 + 20 + 4);
}

TEST_CASE("Sequentials nest, copy deeply and move") {
  Sequential<double> inner{Dense<double>(3, 3), Tanh<double>()};
  Sequential<double> outer{inner, Dense<double>(3, 2)};
  CHECK(outer.parameters().size() == 4);
  CHECK(outer.parameters()[0].name() == "0.0.weight");
  Sequential<double> copy = outer;
  copy.layer<Sequential<double>>(0).layer<Dense<double>>(0).weight().setZero();
  CHECK_FALSE(outer.layer<Sequential<double>>(0).layer<Dense<double>>(0).weight().isZero());
  const Matrix<double> x = Matrix<double>::Random(3, 2);
  const Matrix<double> before = outer.forward(x, Mode::eval);
  Sequential<double> moved = std::move(outer);
  CHECK(moved.forward(x, Mode::eval) == before);
}

TEST_CASE("Without the input gradient the first Dense skips dx") {
  Sequential<float> net{Dense<float>(4, 3), ReLU<float>()};
  net.forward(Matrix<float>::Random(4, 2), Mode::train);
  CHECK(net.backward(Matrix<float>::Ones(3, 2)).rows() == 4);
  net.set_input_gradient(false);
  net.forward(Matrix<float>::Random(4, 2), Mode::train);
  CHECK(net.backward(Matrix<float>::Ones(3, 2)).size() == 0);
  CHECK(net.layer<Dense<float>>(0).weight_grad().norm() > 0);
}

namespace {
// Scale, counting the calls of its set_input_gradient.
long input_gradient_settings = 0;
class CountingScale : public Scale {
 public:
  void set_input_gradient(bool) { ++input_gradient_settings; }
};
static_assert(Layer<CountingScale, double>);
}  // namespace

TEST_CASE("Appending a layer sets its input gradient alone: n layers cost O(n), as a model file of n layers loads") {
  Sequential<double> net;
  input_gradient_settings = 0;
  for (int i = 0; i < 1000; ++i) net.add(CountingScale());
  CHECK(input_gradient_settings == 1000);  // was 1 + 2 + ... + 1000: each add visited every layer
  input_gradient_settings = 0;
  net.set_input_gradient(false);  // an explicit change still reaches every layer
  CHECK(input_gradient_settings == 1000);
}

TEST_CASE("Errors name the position of the failing layer") {
  Sequential<float> net{Dense<float>(784, 256, Bias::none), BatchNorm<float>(256), ReLU<float>(),
                        Dense<float>(128, 10)};
  CHECK_ERROR_MENTIONS(net.forward(Matrix<float>::Zero(784, 8), Mode::train), "layer 3 of 4",
                       "Dense(128 -> 10)", "256 x 8", "128 x batch");
  CHECK_ERROR_MENTIONS(net.forward(Matrix<float>::Zero(784, 1), Mode::train), "layer 1 of 4",
                       "batch of one");
  CHECK_ERROR_MENTIONS(net.layer<Dense<float>>(1), "layer 1 is BatchNorm(256)");
  CHECK_ERROR_MENTIONS(net.layer<Dense<float>>(9), "no layer 9");
  CHECK_ERROR_MENTIONS(Sequential<float>().forward(Matrix<float>::Zero(2, 2), Mode::eval),
                       "no layers");
}

TEST_CASE("The finite check names the first layer where a NaN or an infinity appears") {
  Sequential<double> net{Dense<double>(2, 3), ReLU<double>(), Dense<double>(3, 2)};
  net.set_check_finite(true);
  Matrix<double> x = Matrix<double>::Ones(2, 4);
  net.forward(x, Mode::train);  // finite: no error
  net.backward(Matrix<double>::Ones(2, 4));
  net.layer<Dense<double>>(2).weight()(1, 0) = std::numeric_limits<double>::infinity();
  CHECK_ERROR_MENTIONS(net.forward(x, Mode::train), "forward", "layer 2 of 3 (Dense(3 -> 2))",
                       "output", "non-finite");
  net.layer<Dense<double>>(2).weight()(1, 0) = 0.5;
  x(1, 3) = std::nan("");
  CHECK_ERROR_MENTIONS(net.forward(x, Mode::train), "network's input", "row 1, column 3");
  x(1, 3) = 1.0;
  net.forward(x, Mode::train);
  Matrix<double> dy = Matrix<double>::Ones(2, 4);
  dy(0, 0) = std::nan("");
  CHECK_ERROR_MENTIONS(net.backward(dy), "backward", "output gradient");
  net.set_check_finite(false);
  x(0, 0) = std::nan("");
  CHECK_FALSE(net.forward(x, Mode::eval).allFinite());  // off: no check, no cost
}

namespace {
// Every layer type, nested Sequential included.
Sequential<double> every_layer_type(std::uint64_t seed) {
  Generator generator(seed);
  Sequential<double> inner{Dense<double>(6, 6, Bias::none, Init::pytorch_default(), generator),
                           Tanh<double>()};
  Sequential<double> net;
  net.add(Dense<double>(5, 6, Bias::none, Init::pytorch_default(), generator))  // BatchNorm next
      .add(BatchNorm<double>(6))
      .add(ReLU<double>())
      .add(std::move(inner))
      .add(BatchNorm<double>(6, {.virtual_batch_size = 4}))
      .add(LeakyReLU<double>(0.1))
      .add(Dropout<double>(0.3, seed))
      .add(Sigmoid<double>())
      .add(Identity<double>())
      .add(Dense<double>(6, 3, Bias::learned, Init::pytorch_default(), generator));
  net.forward(bnorm_test::random_input(5, 8, seed + 1), Mode::train);  // running statistics
  return net;
}
}  // namespace

TEST_CASE("Sequential: an eval forward between a training forward and its backward changes nothing") {
  bnorm_test::check_eval_between_forward_and_backward(
      every_layer_type(60), bnorm_test::random_input(5, 8, 61), bnorm_test::random_input(5, 3, 62),
      bnorm_test::random_input(3, 8, 63));
}

TEST_CASE("Sequential accumulates the gradients of four micro-batches into their sum") {
  std::vector<Matrix<double>> xs, dys;
  for (int i = 0; i < 4; ++i) {
    xs.push_back(bnorm_test::random_input(5, 8, 70 + i));
    dys.push_back(bnorm_test::random_input(3, 8, 80 + i));
  }
  bnorm_test::check_gradient_accumulation(every_layer_type(64), xs, dys, 1e-13);
  Sequential<double> net = every_layer_type(64);
  net.set_accumulate_gradients(true);
  CHECK(net.layer<Dense<double>>(0).accumulates_gradients());
  CHECK(net.layer<Sequential<double>>(3).layer<Dense<double>>(0).accumulates_gradients());
  net.set_accumulate_gradients(false);
  CHECK_FALSE(net.layer<BatchNorm<double>>(1).accumulates_gradients());
}

TEST_CASE("Sequential with keep_for_backward gives the input gradient of the eval network") {
  Sequential<double> net = every_layer_type(65);
  net.set_keep_for_backward(true);
  const auto buffers_before = bnorm_test::buffer_values(net);
  const auto check =
      bnorm_test::check_gradients(net, bnorm_test::random_input(5, 4, 66), {.mode = Mode::eval});
  INFO(check.worst);
  CHECK(check.max_error < 1e-7);
  CHECK(bnorm_test::buffer_values(net) == buffers_before);
  // Off (the default), an eval forward saves nothing: a network never trained cannot backward.
  Sequential<double> fresh{Dense<double>(5, 3), ReLU<double>()};
  fresh.forward(bnorm_test::random_input(5, 4, 67), Mode::eval);
  CHECK_ERROR_MENTIONS(fresh.backward(bnorm_test::random_input(3, 4, 68)), "Mode::train");
}

TEST_CASE("Sequential refuses training settings that a user's layer lacks, changing nothing") {
  Sequential<double> net{Dense<double>(2, 2), Scale()};
  CHECK_ERROR_MENTIONS(net.set_keep_for_backward(true), "set_keep_for_backward", "layer 1");
  CHECK_FALSE(net.layer<Dense<double>>(0).keeps_for_backward());
  CHECK_ERROR_MENTIONS(net.set_accumulate_gradients(true), "set_accumulate_gradients");
  CHECK_FALSE(net.layer<Dense<double>>(0).accumulates_gradients());
  net.set_accumulate_gradients(false);
  net.forward(Matrix<double>::Ones(2, 3), Mode::train);
  net.backward(Matrix<double>::Ones(2, 3));
  net.zero_grad();  // the user's layer through parameters()
  for (auto& parameter : net.parameters()) CHECK(parameter.grad().isZero());
}

TEST_CASE("add() is strongly exception-safe: after a bad_alloc the network is as it was") {
  const Matrix<float> x = Matrix<float>::Random(3, 4);
  bool added = false;
  for (long failing = 0; !added && failing < 100; ++failing) {
    Sequential<float> net{Dense<float>(3, 3), ReLU<float>()};  // both vectors full: add() grows them
    const Matrix<float> before = net.forward(x, Mode::eval);
    const Tanh<float> extra;
    Tanh<float> alone;
    const Matrix<float> after = alone.forward(before, Mode::eval);
    allocations_before_failure = failing;
    try {
      net.add(extra);
      added = true;
    } catch (const std::bad_alloc&) {
    }
    allocations_before_failure = -1;
    INFO("allocation ", failing, " failed");
    CHECK(net.size() == (added ? 3u : 2u));
    if (!added) {
      CHECK(net.forward(x, Mode::eval) == before);
      net.add(extra);  // and it is usable
    }
    CHECK(net.forward(x, Mode::train) == after);
    CHECK(net.layer_name(2) == "Tanh");
  }
  CHECK(added);
}

namespace {
// Throws in forward while armed: a failure at a chosen position of a network.
class Tripwire {
 public:
  const Matrix<double>& forward(const Eigen::Ref<const Matrix<double>>& x, Mode) {
    if (armed) detail::fail("Tripwire: armed");
    output_ = x;
    return output_;
  }
  const Matrix<double>& backward(const Eigen::Ref<const Matrix<double>>& dy) {
    input_grad_ = dy;
    return input_grad_;
  }
  bool armed = false;

 private:
  Matrix<double> output_, input_grad_;
};

// Every buffer's value, for exact comparison.
struct BufferValues {
  std::vector<Matrix<double>> values;
  std::vector<long long> counters;
  std::vector<std::array<std::uint64_t, 4>> generators;
  bool operator==(const BufferValues&) const = default;
};
BufferValues buffer_values(Sequential<double>& net) {
  BufferValues state;
  for (auto& buffer : net.buffers()) {
    if (buffer.kind() == BufferKind::values) state.values.push_back(buffer.values());
    if (buffer.kind() == BufferKind::counter) state.counters.push_back(buffer.counter());
    if (buffer.kind() == BufferKind::generator) state.generators.push_back(buffer.generator().state().words);
  }
  return state;
}

Sequential<double> stateful_network() {
  manual_seed(4);
  return Sequential<double>{Dense<double>(4, 5), BatchNorm<double>(5), ReLU<double>(),
                            Dropout<double>(0.3, 7), Dense<double>(5, 5), BatchNorm<double>(5),
                            Sequential<double>{Dense<double>(5, 5), BatchNorm<double>(5), Dropout<double>(0.2, 9)},
                            Tanh<double>(), Dense<double>(5, 3)};
}
}  // namespace

TEST_CASE("A training forward that fails at any layer leaves every buffer as it was") {
  const Matrix<double> x = bnorm_test::random_input(4, 6, 1);
  const std::size_t layers = stateful_network().size();
  for (std::size_t position = 0; position <= layers; ++position) {
    Sequential<double> net = stateful_network();
    net.forward(x, Mode::train);  // buffers away from their initial values
    Sequential<double> tripped;
    for (std::size_t i = 0; i <= layers; ++i) {
      if (i == position) tripped.add(Tripwire{});
      if (i < layers) tripped.add_copy(net, i);
    }
    tripped.layer<Tripwire>(position).armed = true;
    const BufferValues before = buffer_values(tripped);
    INFO("failing layer ", position);
    CHECK_ERROR_MENTIONS(tripped.forward(x, Mode::train), "Tripwire: armed");
    CHECK(buffer_values(tripped) == before);
    // And the network trains on as if the failed call never happened.
    tripped.layer<Tripwire>(position).armed = false;
    CHECK(tripped.forward(x, Mode::train) == net.forward(x, Mode::train));
    CHECK(buffer_values(tripped) == buffer_values(net));
  }
}

TEST_CASE("An overflow caught by set_check_finite in layer 4 leaves the earlier layers' state") {
  Sequential<double> net = stateful_network();
  net.set_check_finite(true);
  const Matrix<double> x = bnorm_test::random_input(4, 6, 1);
  net.forward(x, Mode::train);
  net.layer<Dense<double>>(4).weight().setConstant(std::numeric_limits<double>::max());
  const BufferValues before = buffer_values(net);
  CHECK_ERROR_MENTIONS(net.forward(x, Mode::train), "layer 4 of 9", "non-finite");
  CHECK(buffer_values(net) == before);
}

TEST_CASE("An optimizer on the parameters of a network that was assigned to throws, not corrupts") {
  const Matrix<float> x = Matrix<float>::Random(3, 4);
  Sequential<float> net{Dense<float>(3, 2), BatchNorm<float>(2)};
  SGD<float> sgd(net.parameters(), {.lr = 0.1});
  Adam<float> adam(net.parameters());
  net.forward(x, Mode::train);
  net.backward(Matrix<float>::Ones(2, 4));
  sgd.step();
  // Moving keeps the layers in place: the views stay valid.
  Sequential<float> moved = std::move(net);
  sgd.step();
  std::stringstream file;
  save(moved, file);
  moved = load<float>(file);  // the old layers are gone
  CHECK_ERROR_MENTIONS(sgd.step(), "optimizer step", "'0.weight'", "destroyed or assigned",
                       "net.parameters()");
  CHECK_ERROR_MENTIONS(adam.step(), "'0.weight'", "destroyed or assigned");
  std::unique_ptr<SGD<float>> orphan;
  {
    Sequential<float> scoped{Dense<float>(3, 2)};
    orphan = std::make_unique<SGD<float>>(scoped.parameters(), SGDOptions<float>{.lr = 0.1});
  }
  CHECK_ERROR_MENTIONS(orphan->step(), "destroyed or assigned");

  // Inside a nested network, assigning to the inner network is caught too.
  Sequential<float> outer{Sequential<float>{Dense<float>(3, 3)}, Dense<float>(3, 2)};
  SGD<float> nested(outer.parameters(), {.lr = 0.1});
  outer.forward(x, Mode::train);
  outer.backward(Matrix<float>::Ones(2, 4));
  nested.step();
  outer.layer<Sequential<float>>(0) = Sequential<float>{Dense<float>(3, 3)};
  CHECK_ERROR_MENTIONS(nested.step(), "'0.0.weight'", "destroyed or assigned");

  // So is assigning to one layer inside a network: its storage is replaced.
  Sequential<float> single{Dense<float>(3, 2), BatchNorm<float>(2)};
  SGD<float> on_single(single.parameters(), {.lr = 0.1});
  single.forward(x, Mode::train);
  single.backward(Matrix<float>::Ones(2, 4));
  on_single.step();
  single.layer<BatchNorm<float>>(1) = BatchNorm<float>(2);
  CHECK_ERROR_MENTIONS(on_single.step(), "'1.weight'", "destroyed or assigned");
  single.layer<Dense<float>>(0) = Dense<float>(3, 2);
  CHECK_ERROR_MENTIONS(on_single.step(), "'0.weight'", "destroyed or assigned");
  // Parameters of a lone layer carry no owner and keep working.
  Dense<float> lone(3, 2);
  SGD<float> alone(lone.parameters(), {.lr = 0.1});
  lone.forward(x, Mode::train);
  lone.backward(Matrix<float>::Ones(2, 4));
  alone.step();
}
