// A layer type of a user's own, y = x + relu(bn(dense(x))), taken through every tool of the
// open protocol (core/layer.hpp, core/layer_ref.hpp): training, parameter and buffer
// names, summaries, recalibrate, synchronized BatchNorm, fold_batchnorm, and (registered)
// model files (test_layer_registry.cpp). And a subclass of BatchNorm, which the tools must find as a BatchNorm.
#include <bnorm/bnorm.hpp>
#include <bnorm/distributed/for_each_batch_norm.hpp>

#include <doctest/doctest.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "support/errors.hpp"
#include "support/gradient_check.hpp"
#include "support/residual.hpp"

using namespace bnorm;
using bnorm_test::Residual;

namespace {

// A subclass of BatchNorm, as a user might write to add a feature.
template <class T>
class LoggedNorm : public BatchNorm<T> {
 public:
  using BatchNorm<T>::BatchNorm;
  std::string name() const { return "LoggedNorm(" + std::to_string(this->features()) + ")"; }
};

// A layer of a user's own with a Dropout before its BatchNorm, y = bn(dropout(dense(x))):
// recalibrate runs it in Mode::train, where the Dropout would drop.
template <class T>
class DroppedBlock {
 public:
  DroppedBlock(Index in, Index out, BatchNormOptions<T> options = {})
      : dense_(in, out, Bias::none), drop_(0.5, 7), norm_(out, options) {}

  const Matrix<T>& forward(const Eigen::Ref<const Matrix<T>>& x, Mode mode) {
    return norm_.forward(drop_.forward(dense_.forward(x, mode), mode), mode);
  }
  const Matrix<T>& backward(const Eigen::Ref<const Matrix<T>>& dy) {
    return dense_.backward(drop_.backward(norm_.backward(dy)));
  }
  std::vector<Child<T>> children() {
    return {{"dense", LayerRef<T>(dense_)}, {"drop", LayerRef<T>(drop_)}, {"norm", LayerRef<T>(norm_)}};
  }
  std::string name() const { return "DroppedBlock"; }

  Dense<T>& dense() { return dense_; }
  Dropout<T>& drop() { return drop_; }
  BatchNorm<T>& norm() { return norm_; }

 private:
  Dense<T> dense_;
  Dropout<T> drop_;
  BatchNorm<T> norm_;
};

template <class T>
Sequential<T> residual_network() {
  manual_seed(11);
  return Sequential<T>{Dense<T>(4, 6), Residual<T>(6), Dense<T>(6, 3)};
}

template <class T>
Sequential<T> subclass_network() {
  manual_seed(12);
  return Sequential<T>{Dense<T>(4, 6, Bias::none), LoggedNorm<T>(6), ReLU<T>(), Dense<T>(6, 3)};
}

template <class T>
void train(Sequential<T>& net, int steps, std::uint64_t seed = 5) {
  SGD<T> sgd(net.parameters(), {.lr = 0.1, .momentum = 0.9});
  SoftmaxCrossEntropy<T> loss;
  const Matrix<T> x = bnorm_test::random_input(4, 16, seed).cast<T>();
  const Labels labels = Labels::LinSpaced(16, 0, 2);
  for (int step = 0; step < steps; ++step) {
    loss.forward(net.forward(x, Mode::train), labels);
    net.backward(loss.backward());
    sgd.step();
  }
}

std::vector<std::string> names(const auto& views) {
  std::vector<std::string> list;
  for (const auto& view : views) list.push_back(view.name());
  return list;
}

// Exact per-feature mean and unbiased variance of the columns of x.
void exact_statistics(const Matrix<double>& x, Vector<double>& mean, Vector<double>& var) {
  mean = x.rowwise().mean();
  var = (x.colwise() - mean).array().square().rowwise().sum() / double(x.cols() - 1);
}

// A fake second process for synchronized BatchNorm, with no MPI: it saw exactly the same
// batch, so the global batch is this one twice.
template <class T>
class TwinProcessSync final : public StatisticsSync<T> {
 public:
  T merge_moments(T count, Vector<T>&, Vector<T>& m2) override {
    ++merges;
    m2 *= T(2);  // the same mean twice: the spread between the halves is zero
    return 2 * count;
  }
  void sum(Vector<T>& sum_dy, Vector<T>& sum_dy_xhat) override {
    sum_dy *= T(2);
    sum_dy_xhat *= T(2);
  }
  int merges = 0;
};

}  // namespace

TEST_CASE("A user's layer trains, and its state is named through its children") {
  Sequential<double> net = residual_network<double>();
  CHECK(names(net.parameters()) == std::vector<std::string>{"0.weight", "0.bias", "1.dense.weight",
                                                            "1.norm.weight", "1.norm.bias",
                                                            "2.weight", "2.bias"});
  CHECK(names(net.buffers()) == std::vector<std::string>{"1.norm.running_mean", "1.norm.running_var",
                                                         "1.norm.num_batches_tracked"});
  // The optimizer reaches the inner layers: their values change, the loss falls.
  const Matrix<double> before = net.layer<Residual<double>>(1).dense().weight();
  SoftmaxCrossEntropy<double> loss;
  const Matrix<double> x = bnorm_test::random_input(4, 16, 5);
  const Labels labels = Labels::LinSpaced(16, 0, 2);
  const double first = loss.forward(net.forward(x, Mode::eval), labels);
  train(net, 30);
  CHECK(net.layer<Residual<double>>(1).dense().weight() != before);
  CHECK(net.layer<Residual<double>>(1).norm().num_batches_tracked() == 30);
  CHECK(loss.forward(net.forward(x, Mode::eval), labels) < 0.5 * first);

  // Its gradients are the finite differences' (the contract, through the Sequential).
  Residual<double> block(3);
  const auto check = bnorm_test::check_gradients(block, bnorm_test::random_input(3, 5, 2));
  CHECK(check.entries_checked > 0);
  CHECK(check.max_error < 1e-6);
}

TEST_CASE("The walker visits every layer of the tree with its path; summaries use it") {
  Sequential<double> inner{Dense<double>(6, 6), Residual<double>(6)};
  Sequential<double> net{Dense<double>(4, 6), std::move(inner), ReLU<double>()};
  std::vector<std::string> paths;
  for_each_layer(LayerRef<double>(net), [&](const std::string& path, const LayerRef<double>& layer) {
    paths.push_back(path + " " + layer.name());
  });
  CHECK(paths == std::vector<std::string>{
                     "0 Dense(4 -> 6)", "1 Sequential(Dense(6 -> 6), Residual(6))", "1.0 Dense(6 -> 6)",
                     "1.1 Residual(6)", "1.1.dense Dense(6 -> 6, no bias)", "1.1.norm BatchNorm(6)",
                     "1.1.relu ReLU", "2 ReLU"});
  CHECK(names(net.buffers()).front() == "1.1.norm.running_mean");
  const std::string table = summary(net);
  INFO(table);
  CHECK(table ==
        "layer      kind                                    parameters\n"
        "0          Dense(4 -> 6)                           30\n"
        "1          Sequential(Dense(6 -> 6), Residual(6))  90\n"
        "1.0        Dense(6 -> 6)                           42\n"
        "1.1        Residual(6)                             48\n"
        "1.1.dense  Dense(6 -> 6, no bias)                  36\n"
        "1.1.norm   BatchNorm(6)                            12\n"
        "1.1.relu   ReLU                                    0\n"
        "2          ReLU                                    0\n"
        "total                                              120\n");
}

TEST_CASE("recalibrate sets a BatchNorm inside a user's layer, and a subclass of BatchNorm") {
  const Matrix<double> data = bnorm_test::random_input(4, 50, 9);
  Vector<double> mean, var;
  {
    Sequential<double> net = residual_network<double>();
    train(net, 5);
    auto& block = net.layer<Residual<double>>(1);
    const long long batches = block.norm().num_batches_tracked();
    recalibrate(net, data, 7);  // chunks of 7: the last chunk holds one example
    // The BatchNorm's input in eval mode: the inner Dense applied to the first Dense's output.
    const Matrix<double> first = net.layer<Dense<double>>(0).forward(data, Mode::eval);
    exact_statistics(block.dense().forward(first, Mode::eval), mean, var);
    CHECK((block.norm().running_mean() - mean).cwiseAbs().maxCoeff() < 1e-12);
    CHECK((block.norm().running_var() - var).cwiseAbs().maxCoeff() < 1e-12 * var.maxCoeff());
    CHECK(block.norm().num_batches_tracked() == batches);  // all other state restored
    CHECK(!block.norm().statistics_sync());
  }
  {
    Sequential<double> net = subclass_network<double>();
    train(net, 5);
    recalibrate(net, data);
    exact_statistics(net.layer<Dense<double>>(0).forward(data, Mode::eval), mean, var);
    const auto& norm = net.layer<LoggedNorm<double>>(1);
    CHECK((norm.running_mean() - mean).cwiseAbs().maxCoeff() < 1e-12);
    CHECK((norm.running_var() - var).cwiseAbs().maxCoeff() < 1e-12 * var.maxCoeff());
  }
}

TEST_CASE("recalibrate sees through a Dropout inside a user's layer and leaves it as it was") {
  const Matrix<double> data = bnorm_test::random_input(4, 50, 9);
  manual_seed(13);
  Sequential<double> net{Dense<double>(4, 6), DroppedBlock<double>(6, 5), Dense<double>(5, 3)};
  train(net, 5);
  auto& block = net.layer<DroppedBlock<double>>(1);
  Generator stream = block.drop().generator();
  recalibrate(net, data, 7);
  // The BatchNorm's input in eval mode, where the Dropout is the identity.
  const Matrix<double> first = net.layer<Dense<double>>(0).forward(data, Mode::eval);
  Vector<double> mean, var;
  exact_statistics(block.dense().forward(first, Mode::eval), mean, var);
  CHECK((block.norm().running_mean() - mean).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((block.norm().running_var() - var).cwiseAbs().maxCoeff() < 1e-12 * var.maxCoeff());
  CHECK(block.drop().p() == 0.5);
  for (int draw = 0; draw < 4; ++draw) CHECK(block.drop().generator().uniform() == stream.uniform());
}

TEST_CASE("recalibrate refuses ghost batches inside a user's layer and changes nothing") {
  const Matrix<double> data = bnorm_test::random_input(4, 50, 9);
  manual_seed(14);
  Sequential<double> net{Dense<double>(4, 6),
                         DroppedBlock<double>(6, 5, {.virtual_batch_size = 4}), Dense<double>(5, 3)};
  train(net, 3);
  auto& block = net.layer<DroppedBlock<double>>(1);
  const Vector<double> mean = block.norm().running_mean(), var = block.norm().running_var();
  CHECK_ERROR_MENTIONS(recalibrate(net, data), "layer 1.norm", "ghost batches");
  CHECK(block.norm().running_mean() == mean);
  CHECK(block.norm().running_var() == var);
  CHECK(block.drop().p() == 0.5);
}

TEST_CASE("Synchronized BatchNorm reaches a user's layer and a subclass (a fake second process)") {
  const Matrix<double> x = bnorm_test::random_input(4, 8, 3);
  Matrix<double> twice(4, 16);
  twice << x, x;
  for (auto make : {residual_network<double>, subclass_network<double>}) {
    Sequential<double> net = make(), alone = make();
    const auto sync = std::make_shared<TwinProcessSync<double>>();
    CHECK(distributed::set_statistics_sync<double>(net, sync) == 1);
    // With the twin's identical batch, the synchronized network computes what one process
    // computes on the batch twice over.
    const Matrix<double> y = net.forward(x, Mode::train);
    CHECK(sync->merges == 1);
    const Matrix<double> expected = alone.forward(twice, Mode::train).leftCols(8);
    CHECK((y - expected).cwiseAbs().maxCoeff() < 1e-12);
    CHECK(distributed::set_statistics_sync<double>(net, nullptr) == 1);
  }
}

TEST_CASE("fold_batchnorm keeps a user's layer whole and folds a subclass of BatchNorm") {
  const Matrix<double> x = bnorm_test::random_input(4, 10, 4);
  Sequential<double> net = residual_network<double>();
  train(net, 5);
  Sequential<double> folded = fold_batchnorm(net);
  CHECK(folded.size() == 3);
  CHECK(folded.layer_name(1) == "Residual(6)");
  CHECK((folded.forward(x, Mode::eval) - net.forward(x, Mode::eval)).cwiseAbs().maxCoeff() < 1e-12);

  Sequential<double> with_subclass = subclass_network<double>();
  train(with_subclass, 5);
  Sequential<double> merged = fold_batchnorm(with_subclass);
  CHECK(merged.size() == 3);  // Dense+LoggedNorm folded into one Dense
  CHECK((merged.forward(x, Mode::eval) - with_subclass.forward(x, Mode::eval)).cwiseAbs().maxCoeff() <
        1e-12);
}
