// Statistics over the repeated runs of an experiment (one value per seed).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace examples {

inline double mean(const std::vector<double>& values) {
  if (values.empty()) return std::nan("");
  double sum = 0;
  for (double value : values) sum += value;
  return sum / static_cast<double>(values.size());
}

inline double minimum(const std::vector<double>& values) {
  return values.empty() ? std::nan("") : *std::min_element(values.begin(), values.end());
}

inline double maximum(const std::vector<double>& values) {
  return values.empty() ? std::nan("") : *std::max_element(values.begin(), values.end());
}

}  // namespace examples
