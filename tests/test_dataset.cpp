// Tests of data/dataset.hpp: the count check and loading a pair of IDX files.
#include <bnorm/data/dataset.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/idx_files.hpp"

using namespace bnorm_test;

TEST_CASE("Dataset::check wants one label per column") {
  bnorm::Dataset<float> dataset{bnorm::Matrix<float>::Zero(3, 4), bnorm::Labels::Zero(4)};
  CHECK(dataset.size() == 4);
  CHECK(dataset.features() == 3);
  CHECK_NOTHROW(dataset.check());
  dataset.labels.resize(5);
  CHECK_ERROR_MENTIONS(dataset.check("training set"), "training set", "4 examples", "5 labels");
}

TEST_CASE("load_idx_dataset pairs images with their labels") {
  TempDir dir;
  const auto images = write_bytes(dir / "images", idx_file({3, 2, 2}, counting_bytes(12)));
  const auto labels = write_bytes(dir / "labels", idx_file({3}, {4, 5, 6}));
  const auto dataset = bnorm::load_idx_dataset<double>(images, labels);
  CHECK(dataset.size() == 3);
  CHECK(dataset.features() == 4);
  CHECK(dataset.inputs(3, 2) == 11.0 / 255.0);
  CHECK(dataset.labels(2) == 6);
}

TEST_CASE("load_idx_dataset names both files when their counts differ") {
  TempDir dir;
  const auto images = write_bytes(dir / "images", idx_file({3, 2, 2}, counting_bytes(12)));
  const auto labels = write_bytes(dir / "labels", idx_file({2}, {4, 5}));
  const std::string images_name = images.string(), labels_name = labels.string();
  CHECK_ERROR_MENTIONS(bnorm::load_idx_dataset<float>(images, labels), images_name.c_str(),
                       labels_name.c_str(), "3 examples", "2 labels");
}

TEST_CASE("load_idx_dataset reports the file that is bad") {
  TempDir dir;
  const auto images = write_bytes(dir / "images", idx_file({3, 2, 2}, counting_bytes(12)));
  const std::string absent = (dir / "absent").string();
  CHECK_ERROR_MENTIONS(bnorm::load_idx_dataset<float>(images, absent), absent.c_str(),
                       "no such file");
}
