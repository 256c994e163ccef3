// The machine-readable summary an example prints last: one `key=value` line per result,
// in the order added, e.g.
//
//   bn_accuracy_1k=0.7759
//   bn_steps_to_85=4000,5000,4000
//
// Keys are lower case letters, digits, '_' and '.'; a value is a number, a comma-separated
// list of numbers, or a word ("none" for a threshold never reached). Scripts read it with
// grep and awk (scripts/smoke-examples.sh).
#pragma once

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace examples {

class Summary {
 public:
  void add(const std::string& key, double value) { add_text(key, number(value)); }
  void add(const std::string& key, long long value) { add_text(key, std::to_string(value)); }
  void add(const std::string& key, int value) { add_text(key, std::to_string(value)); }
  void add(const std::string& key, const char* text) { add_text(key, text); }
  void add(const std::string& key, const std::string& text) { add_text(key, text); }
  void add(const std::string& key, const std::vector<double>& values) {
    std::string text;
    for (std::size_t i = 0; i < values.size(); ++i) text += (i ? "," : "") + number(values[i]);
    add_text(key, text);
  }

  void print(std::FILE* out = stdout) const {
    for (const auto& [key, value] : lines_) std::fprintf(out, "%s=%s\n", key.c_str(), value.c_str());
    std::fflush(out);
  }

  // Up to 6 significant digits: accuracies to 0.01 percentage points, seconds to 1 ms.
  static std::string number(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.6g", value);
    return text;
  }

 private:
  void add_text(const std::string& key, std::string value) {
    for (char c : key)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
        throw std::logic_error("summary key '" + key + "': use a-z, 0-9, '_' and '.'");
    lines_.emplace_back(key, std::move(value));
  }

  std::vector<std::pair<std::string, std::string>> lines_;
};

}  // namespace examples
