// Tables as CSV files, for the curves behind the examples' figures.
//
//   examples::CsvWriter csv("lr_sweep.csv", {"seed", "variant", "lr", "test_accuracy"});
//   csv.row(0, "bn", 0.01, 0.8712);
//
// One header line, then one line per row; text with a comma, a quote or a line break is
// quoted (RFC 4180); numbers keep 9 significant digits, enough to read a float back exactly;
// NaN is written as "nan".
#pragma once

#include <cmath>
#include <concepts>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace examples {

class CsvWriter {
 public:
  CsvWriter(const std::filesystem::path& path, const std::vector<std::string>& columns)
      : path_(path), columns_(columns.size()) {
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
    file_.open(path);
    if (!file_) throw std::runtime_error("cannot create " + path.string());
    for (std::size_t i = 0; i < columns.size(); ++i) file_ << (i ? "," : "") << cell(columns[i]);
    file_ << '\n';
  }

  template <class... Values>
  void row(const Values&... values) {
    if (sizeof...(Values) != columns_)
      throw std::logic_error(path_.string() + ": a row of " + std::to_string(sizeof...(Values)) +
                             " values for " + std::to_string(columns_) + " columns");
    std::size_t i = 0;
    ((file_ << (i++ ? "," : "") << cell(values)), ...);
    file_ << '\n';
    if (!file_) throw std::runtime_error("cannot write " + path_.string());
  }

  static std::string cell(std::string_view text) {
    if (text.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(text);
    std::string quoted = "\"";
    for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    return quoted + "\"";
  }
  static std::string cell(const char* text) { return cell(std::string_view(text)); }
  static std::string cell(const std::string& text) { return cell(std::string_view(text)); }
  template <std::integral Integer>
  static std::string cell(Integer value) {
    return std::to_string(value);
  }
  static std::string cell(double value) {
    if (std::isnan(value)) return "nan";
    char text[32];
    std::snprintf(text, sizeof text, "%.9g", value);
    return text;
  }

 private:
  std::filesystem::path path_;
  std::size_t columns_;
  std::ofstream file_;
};

}  // namespace examples
