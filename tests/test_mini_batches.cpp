// Tests of data/mini_batches.hpp: every example once per epoch, partial last batch, seeded
// reshuffling, buffer contents, and no allocation in steady state.
#define EIGEN_RUNTIME_NO_MALLOC  // lets a test forbid Eigen allocations
#include <bnorm/data/mini_batches.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"

#include <algorithm>
#include <vector>

using bnorm::Index;

namespace {

// Example j has inputs (j, 1000 + j) and label 10 * j: a batch column says which example
// it came from, and whether its label travelled with it.
bnorm::Dataset<float> numbered_dataset(Index size) {
  bnorm::Dataset<float> dataset{bnorm::Matrix<float>(2, size), bnorm::Labels(size)};
  for (Index j = 0; j < size; ++j) {
    dataset.inputs(0, j) = static_cast<float>(j);
    dataset.inputs(1, j) = static_cast<float>(1000 + j);
    dataset.labels(j) = static_cast<int>(10 * j);
  }
  return dataset;
}

// Runs one epoch; returns the examples in visiting order and checks each batch's contents.
std::vector<Index> run_epoch(bnorm::MiniBatches<float>& batches,
                             std::vector<Index>* batch_sizes = nullptr) {
  std::vector<Index> visited;
  batches.start_epoch();
  while (batches.next()) {
    const bnorm::Matrix<float>& inputs = batches.inputs();
    const bnorm::Labels& labels = batches.labels();
    REQUIRE(inputs.rows() == 2);
    REQUIRE(inputs.cols() == labels.size());
    for (Index k = 0; k < inputs.cols(); ++k) {
      const auto example = static_cast<Index>(inputs(0, k));
      CHECK(inputs(1, k) == static_cast<float>(1000 + example));
      CHECK(labels(k) == 10 * example);
      visited.push_back(example);
    }
    if (batch_sizes) batch_sizes->push_back(inputs.cols());
  }
  return visited;
}

bool is_permutation_of_all(std::vector<Index> visited, Index size) {
  std::sort(visited.begin(), visited.end());
  std::vector<Index> all(static_cast<std::size_t>(size));
  for (Index j = 0; j < size; ++j) all[static_cast<std::size_t>(j)] = j;
  return visited == all;
}

}  // namespace

TEST_CASE("every example exactly once per epoch, the partial last batch kept") {
  const auto dataset = numbered_dataset(10);
  bnorm::MiniBatches<float> batches(dataset, 4, 7);
  CHECK(batches.batches_per_epoch() == 3);
  for (int epoch = 1; epoch <= 3; ++epoch) {
    std::vector<Index> sizes;
    const auto visited = run_epoch(batches, &sizes);
    CHECK(batches.epoch() == epoch);
    CHECK(is_permutation_of_all(visited, 10));
    CHECK(sizes == std::vector<Index>{4, 4, 2});
  }
}

TEST_CASE("LastBatch::drop skips the partial batch") {
  const auto dataset = numbered_dataset(10);
  bnorm::MiniBatches<float> batches(dataset, 4, 7, bnorm::LastBatch::drop);
  CHECK(batches.batches_per_epoch() == 2);
  std::vector<Index> sizes;
  const auto visited = run_epoch(batches, &sizes);
  CHECK(sizes == std::vector<Index>{4, 4});
  std::vector<Index> distinct = visited;
  std::sort(distinct.begin(), distinct.end());
  CHECK(std::unique(distinct.begin(), distinct.end()) == distinct.end());
}

TEST_CASE("a batch size that divides the data set, and one larger than it") {
  const auto dataset = numbered_dataset(12);
  bnorm::MiniBatches<float> even(dataset, 3, 1);
  std::vector<Index> sizes;
  CHECK(is_permutation_of_all(run_epoch(even, &sizes), 12));
  CHECK(sizes == std::vector<Index>{3, 3, 3, 3});

  bnorm::MiniBatches<float> whole(dataset, 100, 1);
  sizes.clear();
  CHECK(is_permutation_of_all(run_epoch(whole, &sizes), 12));
  CHECK(sizes == std::vector<Index>{12});
}

TEST_CASE("a new order every epoch; the same seed gives the same orders") {
  const auto dataset = numbered_dataset(50);
  bnorm::MiniBatches<float> first(dataset, 8, 42);
  bnorm::MiniBatches<float> again(dataset, 8, 42);
  bnorm::MiniBatches<float> other_seed(dataset, 8, 43);
  std::vector<Index> identity(50);
  for (Index j = 0; j < 50; ++j) identity[static_cast<std::size_t>(j)] = j;

  std::vector<std::vector<Index>> orders;
  for (int epoch = 0; epoch < 3; ++epoch) {
    orders.push_back(run_epoch(first));
    CHECK(run_epoch(again) == orders.back());
    CHECK(run_epoch(other_seed) != orders.back());
    CHECK(orders.back() != identity);
  }
  CHECK(orders[0] != orders[1]);
  CHECK(orders[1] != orders[2]);
}

TEST_CASE("the order is the generator's Fisher-Yates shuffle of 0..n-1, the same everywhere") {
  const auto dataset = numbered_dataset(20);
  bnorm::MiniBatches<float> batches(dataset, 20, 5);
  bnorm::Generator generator(5);
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::vector<Index> expected(20);
    for (Index j = 0; j < 20; ++j) expected[static_cast<std::size_t>(j)] = j;
    generator.shuffle(expected);
    CHECK(run_epoch(batches) == expected);
  }
}

TEST_CASE("an abandoned epoch: start_epoch begins a complete new one") {
  const auto dataset = numbered_dataset(10);
  bnorm::MiniBatches<float> batches(dataset, 3, 0);
  batches.start_epoch();
  REQUIRE(batches.next());
  CHECK(is_permutation_of_all(run_epoch(batches), 10));
}

TEST_CASE("next() after the end of an epoch keeps returning false") {
  const auto dataset = numbered_dataset(4);
  bnorm::MiniBatches<float> batches(dataset, 2, 0);
  run_epoch(batches);
  CHECK_FALSE(batches.next());
  CHECK_FALSE(batches.next());
}

TEST_CASE("full batches allocate nothing once the buffers are sized") {
  const auto dataset = numbered_dataset(12);
  bnorm::MiniBatches<float> batches(dataset, 4, 3);
  run_epoch(batches);  // sizes the buffers
  Eigen::internal::set_is_malloc_allowed(false);
  batches.start_epoch();
  Index examples = 0;
  while (batches.next()) examples += batches.inputs().cols();
  Eigen::internal::set_is_malloc_allowed(true);
  CHECK(examples == 12);
}

TEST_CASE("misuse is a bnorm::Error with a clear message") {
  const auto dataset = numbered_dataset(5);
  bnorm::MiniBatches<float> batches(dataset, 2, 0);
  CHECK_ERROR_MENTIONS(batches.next(), "call start_epoch() before next()");
  CHECK_ERROR_MENTIONS(bnorm::MiniBatches<float>(dataset, 0, 0), "batch size must be positive");
  CHECK_ERROR_MENTIONS(bnorm::MiniBatches<float>(dataset, 6, 0, bnorm::LastBatch::drop),
                       "batch size 6", "5 examples", "every epoch would be empty");
  bnorm::Dataset<float> mismatched = numbered_dataset(5);
  mismatched.labels.resize(4);
  CHECK_ERROR_MENTIONS(bnorm::MiniBatches<float>(mismatched, 2, 0), "MiniBatches", "5 examples",
                       "4 labels");
  const bnorm::Dataset<float> empty{bnorm::Matrix<float>(2, 0), bnorm::Labels(0)};
  CHECK_ERROR_MENTIONS(bnorm::MiniBatches<float>(empty, 2, 0), "no examples");
}
