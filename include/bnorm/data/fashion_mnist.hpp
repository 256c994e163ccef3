// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 28 x 28 grey images of clothing in 10
// classes, 60000 to train on and 10000 to test on.
//
//   auto data = bnorm::load_fashion_mnist<float>();   // Debian's copy, or pass a folder
//   // data.train.inputs is 784 x 60000 in [0, 1]; data.train.labels holds 0..9
//
// The folder holds the four files under their original names, each either gzip-compressed
// (train-images-idx3-ubyte.gz, as Debian's dataset-fashion-mnist installs them; reading
// those needs bnorm::gzip) or not (train-images-idx3-ubyte). MNIST uses the same names, so
// this loads MNIST from its folder too.
#pragma once

#include "../core/error.hpp"
#include "dataset.hpp"

#include <array>
#include <filesystem>
#include <string>

namespace bnorm {

// Where `apt-get install dataset-fashion-mnist` puts the files.
inline const std::filesystem::path fashion_mnist_default_directory =
    "/usr/share/datasets/fashion-mnist";

namespace detail {

// `directory / stem`, uncompressed if present (faster, and needs no zlib), else the .gz.
// Empty if neither exists.
inline std::filesystem::path find_idx_file(const std::filesystem::path& directory,
                                           const std::string& stem) {
  for (const std::string& name : {stem, stem + ".gz"}) {
    std::error_code error;
    if (std::filesystem::is_regular_file(directory / name, error)) return directory / name;
  }
  return {};
}

}  // namespace detail

inline namespace BNORM_IDX_NAMESPACE {  // see idx.hpp

// The training and test sets in `directory`. Throws bnorm::Error listing the files it could
// not find, or describing the first malformed one.
template <class T>
TrainTestSplit<T> load_fashion_mnist(
    const std::filesystem::path& directory = fashion_mnist_default_directory) {
  static constexpr std::array<const char*, 4> stems = {
      "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
      "t10k-labels-idx1-ubyte"};
  std::array<std::filesystem::path, 4> paths;
  std::string missing;
  for (std::size_t i = 0; i < stems.size(); ++i) {
    paths[i] = detail::find_idx_file(directory, stems[i]);
    if (paths[i].empty())
      missing += (missing.empty() ? "" : ", ") + std::string(stems[i]) + "[.gz]";
  }
  if (!missing.empty()) {
    std::error_code error;
    const bool folder_exists = std::filesystem::is_directory(directory, error);
    detail::fail("Fashion-MNIST: ",
                 folder_exists
                     ? "missing in '" + directory.string() + "': " + missing
                     : "no folder '" + directory.string() + "' (looked for " + missing + ")",
                 ". `apt-get install dataset-fashion-mnist` installs them in ",
                 fashion_mnist_default_directory.string());
  }
  return {load_idx_dataset<T>(paths[0], paths[1]), load_idx_dataset<T>(paths[2], paths[3])};
}

}  // namespace BNORM_IDX_NAMESPACE

}  // namespace bnorm
