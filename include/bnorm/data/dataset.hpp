// A labelled data set in memory, and loading one from a pair of IDX files.
//
//   bnorm::Dataset<float> test = bnorm::load_idx_dataset<float>(
//       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz");
//   net.forward(test.inputs, bnorm::Mode::eval);
#pragma once

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "idx.hpp"

#include <filesystem>
#include <string_view>

namespace bnorm {

// Example j is column j of `inputs` (features x examples, as every bnorm matrix) with class
// `labels(j)`.
template <class T>
struct Dataset {
  Matrix<T> inputs;
  Labels labels;

  Index size() const { return inputs.cols(); }
  Index features() const { return inputs.rows(); }

  // Throws bnorm::Error unless there is exactly one label per column of inputs. `what`
  // names the data set in the message.
  void check(std::string_view what = "dataset") const {
    detail::require(inputs.cols() == labels.size(), what, ": ", inputs.cols(),
                    " examples (columns of inputs, ",
                    detail::shape_string(inputs.rows(), inputs.cols()), ") but ", labels.size(),
                    " labels; there must be one label per example");
  }
};

// The usual pair: a set to train on and a held-out set to measure on.
template <class T>
struct TrainTestSplit {
  Dataset<T> train;
  Dataset<T> test;
};

inline namespace BNORM_IDX_NAMESPACE {  // see idx.hpp

// Reads images and labels (see idx.hpp; either may be gzip-compressed) and checks that they
// describe the same number of examples.
template <class T>
Dataset<T> load_idx_dataset(const std::filesystem::path& images_path,
                            const std::filesystem::path& labels_path) {
  Dataset<T> dataset{read_idx_images<T>(images_path), read_idx_labels(labels_path)};
  dataset.check("IDX files '" + images_path.string() + "' and '" + labels_path.string() + "'");
  return dataset;
}

}  // namespace BNORM_IDX_NAMESPACE

}  // namespace bnorm
