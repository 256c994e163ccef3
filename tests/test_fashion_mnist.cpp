// Tests of data/fashion_mnist.hpp: finding the files, the message when they are missing,
// and, where Debian's dataset-fashion-mnist is installed, the real data.
#include <bnorm/data/fashion_mnist.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/idx_files.hpp"

#include <cmath>

using namespace bnorm_test;

namespace {

// A miniature Fashion-MNIST: 3 training and 2 test images of 2 x 2 pixels.
void write_miniature(const TempDir& dir, const std::string& suffix) {
  Bytes train_images = idx_file({3, 2, 2}, counting_bytes(12));
  Bytes train_labels = idx_file({3}, {0, 1, 2});
  Bytes test_images = idx_file({2, 2, 2}, counting_bytes(8, 100));
  Bytes test_labels = idx_file({2}, {9, 8});
#ifdef BNORM_WITH_ZLIB
  if (suffix == ".gz") {
    train_images = gzip(train_images);
    train_labels = gzip(train_labels);
    test_images = gzip(test_images);
    test_labels = gzip(test_labels);
  }
#endif
  write_bytes(dir / ("train-images-idx3-ubyte" + suffix), train_images);
  write_bytes(dir / ("train-labels-idx1-ubyte" + suffix), train_labels);
  write_bytes(dir / ("t10k-images-idx3-ubyte" + suffix), test_images);
  write_bytes(dir / ("t10k-labels-idx1-ubyte" + suffix), test_labels);
}

void check_miniature(const bnorm::TrainTestSplit<float>& data) {
  CHECK(data.train.size() == 3);
  CHECK(data.test.size() == 2);
  CHECK(data.train.features() == 4);
  CHECK(data.train.labels(2) == 2);
  CHECK(data.test.labels(0) == 9);
  CHECK(data.test.inputs(0, 0) == 100.0f / 255.0f);
}

}  // namespace

TEST_CASE("loads uncompressed files") {
  TempDir dir;
  write_miniature(dir, "");
  check_miniature(bnorm::load_fashion_mnist<float>(dir.path()));
}

#ifdef BNORM_WITH_ZLIB
TEST_CASE("loads gzip-compressed files, as Debian installs them") {
  TempDir dir;
  write_miniature(dir, ".gz");
  check_miniature(bnorm::load_fashion_mnist<float>(dir.path()));
}
#endif

TEST_CASE("missing files: the message lists what was looked for and where to get it") {
  TempDir dir;
  write_miniature(dir, "");
  std::filesystem::remove(dir / "t10k-labels-idx1-ubyte");
  const std::string folder = dir.path().string();
  CHECK_ERROR_MENTIONS(bnorm::load_fashion_mnist<float>(dir.path()), folder.c_str(),
                       "t10k-labels-idx1-ubyte[.gz]", "apt-get install dataset-fashion-mnist");
  CHECK(error_message([&] { bnorm::load_fashion_mnist<float>(dir.path()); }).find("train-images") ==
        std::string::npos);
  CHECK_ERROR_MENTIONS(bnorm::load_fashion_mnist<float>(dir / "absent"), "no folder",
                       "train-images-idx3-ubyte[.gz]", "apt-get install dataset-fashion-mnist");
}

TEST_CASE("the real Fashion-MNIST, where dataset-fashion-mnist is installed") {
  if (!std::filesystem::is_directory(bnorm::fashion_mnist_default_directory)) {
    MESSAGE("skipped: ", bnorm::fashion_mnist_default_directory.string(),
            " is absent (apt-get install dataset-fashion-mnist)");
    return;
  }
#ifndef BNORM_WITH_ZLIB
  MESSAGE("skipped: the files are gzip-compressed and this build has no zlib");
  return;
#endif
  const auto data = bnorm::load_fashion_mnist<float>();
  REQUIRE(data.train.size() == 60000);
  REQUIRE(data.test.size() == 10000);
  CHECK(data.train.features() == 784);
  CHECK(data.test.features() == 784);

  // The statistics everybody normalizes Fashion-MNIST with: mean 0.2860, std 0.3530.
  double sum = 0.0, sum_of_squares = 0.0;
  for (bnorm::Index j = 0; j < data.train.size(); ++j)
    for (bnorm::Index i = 0; i < 784; ++i) {
      const double pixel = data.train.inputs(i, j);
      sum += pixel;
      sum_of_squares += pixel * pixel;
    }
  const double count = 784.0 * 60000.0;
  const double mean = sum / count;
  const double stddev = std::sqrt(sum_of_squares / count - mean * mean);
  CHECK(std::round(mean * 1e4) / 1e4 == doctest::Approx(0.2860).epsilon(1e-12));
  CHECK(std::round(stddev * 1e4) / 1e4 == doctest::Approx(0.3530).epsilon(1e-12));
  CHECK(data.train.inputs.minCoeff() == 0.0f);
  CHECK(data.train.inputs.maxCoeff() == 1.0f);

  for (const auto* set : {&data.train, &data.test}) {
    const int per_class = set == &data.train ? 6000 : 1000;
    for (int label = 0; label < 10; ++label)
      CHECK((set->labels.array() == label).count() == per_class);
  }
}
