// SGD, RMSprop, Adam, AdamW (optim/*.hpp): single steps worked by hand. The PyTorch parity
// tests check whole trajectories against torch.optim.
// bnorm-test-variant: isa_baseline BNORM_ISA=baseline  (also run on the baseline kernels)
#include <bnorm/optim/adam.hpp>
#include <bnorm/optim/adamw.hpp>
#include <bnorm/optim/rmsprop.hpp>
#include <bnorm/optim/sgd.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"

#include <cmath>

using namespace bnorm;

namespace {
// One 2 x 1 parameter with a fixed gradient.
struct Toy {
  Matrix<double> value{{1.0}, {-2.0}};
  Matrix<double> grad{{0.5}, {0.25}};
  std::vector<Parameter<double>> parameters() { return {Parameter<double>("w", value, grad)}; }
};
}  // namespace

TEST_CASE("SGD: plain, weight decay, momentum, dampening, Nesterov") {
  Toy toy;
  SUBCASE("plain") {
    SGD<double> sgd(toy.parameters(), {.lr = 0.1});
    sgd.step();
    CHECK(toy.value(0) == doctest::Approx(1.0 - 0.1 * 0.5));
  }
  SUBCASE("momentum: the buffer starts as the gradient, then blends") {
    SGD<double> sgd(toy.parameters(), {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
    sgd.step();
    const double g1 = 0.5 + 0.01 * 1.0;
    const double p1 = 1.0 - 0.1 * g1;
    CHECK(toy.value(0) == doctest::Approx(p1));
    sgd.step();
    const double g2 = 0.5 + 0.01 * p1;
    CHECK(toy.value(0) == doctest::Approx(p1 - 0.1 * (0.9 * g1 + g2)));
  }
  SUBCASE("dampening applies from the second step") {
    SGD<double> sgd(toy.parameters(), {.lr = 0.1, .momentum = 0.5, .dampening = 0.5});
    sgd.step();
    sgd.step();
    CHECK(toy.value(0) == doctest::Approx(1.0 - 0.1 * 0.5 - 0.1 * (0.5 * 0.5 + 0.5 * 0.5)));
  }
  SUBCASE("Nesterov looks ahead along the buffer") {
    SGD<double> sgd(toy.parameters(), {.lr = 0.1, .momentum = 0.9, .nesterov = true});
    sgd.step();
    CHECK(toy.value(0) == doctest::Approx(1.0 - 0.1 * (0.5 + 0.9 * 0.5)));
  }
}

TEST_CASE("Adam's bias correction advances once per step for every parameter") {
  Matrix<double> a{{1.0}}, ga{{0.5}}, b{{2.0}}, gb{{-1.0}};
  Adam<double> adam({Parameter<double>("a", a, ga), Parameter<double>("b", b, gb)},
                    {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8});
  adam.step();
  // After one step m_hat = g and v_hat = g^2, so each parameter moves by lr * sign(g).
  CHECK(a(0) == doctest::Approx(1.0 - 0.1).epsilon(1e-7));
  CHECK(b(0) == doctest::Approx(2.0 + 0.1).epsilon(1e-7));
  adam.step();
  CHECK(a(0) == doctest::Approx(1.0 - 0.2).epsilon(1e-7));
  CHECK(b(0) == doctest::Approx(2.0 + 0.2).epsilon(1e-7));
  CHECK(adam.step_count() == 2);
}

TEST_CASE("AdamW decays the weights directly, with PyTorch's default 0.01") {
  Toy toy;
  AdamW<double> adamw(toy.parameters(), {.lr = 0.1});
  CHECK(adamw.options().weight_decay == 0.01);
  adamw.step();
  CHECK(toy.value(0) == doctest::Approx(1.0 * (1 - 0.1 * 0.01) - 0.1).epsilon(1e-7));
  Toy l2;
  Adam<double> adam(l2.parameters(), {.lr = 0.1, .weight_decay = 0.01});
  adam.step();  // L2 enters the gradient, and the first Adam step normalizes it away
  CHECK(l2.value(0) == doctest::Approx(1.0 - 0.1).epsilon(1e-7));
}

TEST_CASE("RMSprop divides by the root mean square of the gradient") {
  Toy toy;
  RMSprop<double> rmsprop(toy.parameters(), {.lr = 0.01, .alpha = 0.9});
  rmsprop.step();
  const double square_average = 0.1 * 0.25;
  CHECK(toy.value(0) == doctest::Approx(1.0 - 0.01 * 0.5 / (std::sqrt(square_average) + 1e-8)));
  Toy centered;
  RMSprop<double> c(centered.parameters(), {.lr = 0.01, .alpha = 0.9, .centered = true});
  c.step();
  const double variance = 0.1 * 0.25 - (0.1 * 0.5) * (0.1 * 0.5);
  CHECK(centered.value(0) == doctest::Approx(1.0 - 0.01 * 0.5 / (std::sqrt(variance) + 1e-8)));
}

TEST_CASE("Optimizers reject bad options and empty parameter lists") {
  Toy toy;
  CHECK_ERROR_MENTIONS(SGD<double>(toy.parameters(), {.lr = -1.0}), "SGD", "lr");
  CHECK_ERROR_MENTIONS(SGD<double>(toy.parameters(), {.lr = 0.1, .nesterov = true}), "Nesterov");
  CHECK_ERROR_MENTIONS(Adam<double>(toy.parameters(), {.lr = 0.1, .beta1 = 1.0}), "beta1");
  CHECK_ERROR_MENTIONS(AdamW<double>(toy.parameters(), {.lr = std::nan("")}), "AdamW", "lr");
  CHECK_ERROR_MENTIONS(RMSprop<double>(toy.parameters(), {.lr = 0.1, .alpha = -0.5}), "alpha");
  CHECK_ERROR_MENTIONS(SGD<double>({}, {.lr = 0.1}), "empty");
}

TEST_CASE("Every optimizer's lr() and set_lr() are group 0's learning rate, as options().lr") {
  Toy toy;
  auto check = [](auto&& optimizer) {
    optimizer.set_lr(0.125);
    CHECK(optimizer.lr() == 0.125);
    CHECK(optimizer.options().lr == 0.125);
    optimizer.options().lr = 0.5;
    CHECK(optimizer.lr() == 0.5);
    CHECK(optimizer.group_count() == 1);
  };
  check(SGD<double>(toy.parameters()));
  check(Adam<double>(toy.parameters()));
  check(AdamW<double>(toy.parameters()));
  check(RMSprop<double>(toy.parameters()));
  SGD<double> sgd(toy.parameters(), {.lr = 0.1});
  sgd.set_lr(0.05);
  sgd.step();
  CHECK(toy.value(0) == doctest::Approx(1.0 - 0.05 * 0.5));
  CHECK_ERROR_MENTIONS(sgd.set_lr(std::nan("")), "SGD", "lr");
}
