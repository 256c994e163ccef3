// Reader for the PyTorch reference data in tests/reference/*.txt, written by
// tests/reference/make_reference.py (see its docstring for how tensors are laid out).
//
// Format, one item per line:
//   # comment                      ignored
//   @key value...                  metadata ("@torch_version 1.13.0")
//   name rows cols                 a block header, then rows * cols numbers (any whitespace,
//                                  any number of lines), the bnorm matrix in column-major order
//
// So a block can be poured straight into a bnorm matrix: features x batch for activations,
// out x in for a Dense weight, n x 1 for vectors, 1 x 1 for scalars.
#pragma once

#include <bnorm/core/types.hpp>

#include <Eigen/Core>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef BNORM_TEST_DATA_DIR
#error "define BNORM_TEST_DATA_DIR as the tests/reference directory (tests/CMakeLists.txt does)"
#endif

namespace bnorm_test {

class ReferenceData {
 public:
  // Reads a file; throws std::runtime_error naming the file and line on any malformed input.
  explicit ReferenceData(const std::string& path) : path_(path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open reference data file " + path);
    std::string line, pending_name;
    std::vector<double> pending_values;
    Eigen::Index pending_rows = 0, pending_cols = 0;
    int line_number = 0;
    auto error = [&](const std::string& what) {
      return std::runtime_error(path + ":" + std::to_string(line_number) + ": " + what);
    };
    while (std::getline(in, line)) {
      ++line_number;
      const auto first = line.find_first_not_of(" \t\r");
      if (first == std::string::npos || line[first] == '#') continue;
      std::istringstream words(line);
      if (pending_name.empty()) {
        if (line[first] == '@') {  // metadata: "@key rest of the line"
          std::string key, value;
          words >> key;
          std::getline(words >> std::ws, value);
          metadata_[key.substr(1)] = value;
          continue;
        }
        std::string extra;
        if (!(words >> pending_name >> pending_rows >> pending_cols) || pending_rows < 0 ||
            pending_cols < 0 || words >> extra)
          throw error("expected a block header 'name rows cols' alone on its line, got '" + line +
                      "'");
        if (blocks_.count(pending_name)) throw error("duplicate block " + pending_name);
        pending_values.clear();
        pending_values.reserve(static_cast<std::size_t>(pending_rows * pending_cols));
      } else {
        for (std::string word; words >> word;) pending_values.push_back(parse_number(word, error));
      }
      const auto expected = static_cast<std::size_t>(pending_rows * pending_cols);
      if (pending_values.size() > expected)
        throw error("block " + pending_name + " has more than " + std::to_string(expected) +
                    " numbers");
      if (pending_values.size() == expected) {
        blocks_[pending_name] =
            Eigen::Map<const Eigen::MatrixXd>(pending_values.data(), pending_rows, pending_cols);
        pending_name.clear();
      }
    }
    if (!pending_name.empty())
      throw error("file ends inside block " + pending_name + " (" +
                  std::to_string(pending_values.size()) + " of " +
                  std::to_string(pending_rows * pending_cols) + " numbers)");
  }

  const std::string& path() const { return path_; }
  bool contains(const std::string& name) const { return blocks_.count(name) != 0; }

  // The block `name`, in double as stored.
  const Eigen::MatrixXd& matrix(const std::string& name) const {
    const auto found = blocks_.find(name);
    if (found == blocks_.end())
      throw std::runtime_error("reference data " + path_ + " has no block named '" + name +
                               "' (rerun tests/reference/make_reference.py?)");
    return found->second;
  }

  // The block `name` converted to T (for float: rounded to nearest, as torch's .float()).
  template <class T>
  bnorm::Matrix<T> matrix_as(const std::string& name) const {
    return matrix(name).cast<T>();
  }

  // A 1 x 1 block.
  double scalar(const std::string& name) const {
    const auto& block = matrix(name);
    if (block.size() != 1)
      throw std::runtime_error("reference block '" + name + "' is not a scalar");
    return block(0, 0);
  }

  // An n x 1 block of integers: class labels.
  bnorm::Labels labels(const std::string& name) const {
    const auto& block = matrix(name);
    if (block.cols() != 1)
      throw std::runtime_error("reference block '" + name + "' is not an n x 1 label vector");
    bnorm::Labels result(block.rows());
    for (Eigen::Index i = 0; i < block.rows(); ++i) {
      if (block(i, 0) != std::floor(block(i, 0)))
        throw std::runtime_error("reference block '" + name + "' holds a non-integer label");
      result(i) = static_cast<int>(block(i, 0));
    }
    return result;
  }

  // Names of every block starting with `prefix`, in sorted order.
  std::vector<std::string> names_with_prefix(const std::string& prefix) const {
    std::vector<std::string> names;
    for (auto it = blocks_.lower_bound(prefix);
         it != blocks_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
      names.push_back(it->first);
    return names;
  }

  const std::string& metadata(const std::string& key) const {
    const auto found = metadata_.find(key);
    if (found == metadata_.end())
      throw std::runtime_error("reference data " + path_ + " has no metadata '@" + key + "'");
    return found->second;
  }

 private:
  template <class MakeError>
  static double parse_number(const std::string& word, const MakeError& error) {
    // strtod rounds correctly, so repr()'s shortest round-trip digits give back the exact
    // double; it also reads "inf" and "nan".
    char* end = nullptr;
    errno = 0;
    const double value = std::strtod(word.c_str(), &end);
    // ERANGE on underflow is fine: a denormal is still the exact value written.
    if (end != word.c_str() + word.size() || (errno == ERANGE && std::isinf(value)))
      throw error("'" + word + "' is not a number");
    return value;
  }

  std::string path_;
  std::map<std::string, Eigen::MatrixXd> blocks_;
  std::map<std::string, std::string> metadata_;
};

// The file `file_name` of the test data directory, read once per test program.
inline const ReferenceData& reference_file(const std::string& file_name) {
  static std::map<std::string, ReferenceData> cache;
  auto found = cache.find(file_name);
  if (found == cache.end()) {
    const std::string path = std::string(BNORM_TEST_DATA_DIR) + "/" + file_name;
    found = cache.emplace(file_name, ReferenceData(path)).first;
  }
  return found->second;
}

}  // namespace bnorm_test
