// A table of a network's layers, one line per layer of the tree (nested Sequentials and
// the children of layers of your own included), found by the walker of core/layer_ref.hpp:
//
//   layer      kind                      parameters
//   0          Dense(4 -> 6)             30
//   1          Residual(6)               48
//   1.dense    Dense(6 -> 6, no bias)    36
//   1.norm     BatchNorm(6)              12
//   ...
//   total                                ...
// A layer's count includes its children's.
#pragma once

#include "../core/layer_ref.hpp"
#include "sequential.hpp"

#include <algorithm>
#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

namespace bnorm {

template <class T>
std::string summary(Sequential<T>& net) {
  struct Line {
    std::string path, kind;
    Index parameters = 0;
  };
  auto count = [](const LayerRef<T>& layer) {
    Index total = 0;
    for (const Parameter<T>& parameter : named_parameters(layer)) total += parameter.size();
    return total;
  };
  std::vector<Line> lines{{"layer", "kind", 0}};
  for_each_layer(LayerRef<T>(net), [&](const std::string& path, const LayerRef<T>& layer) {
    lines.push_back({path, layer.name(), count(layer)});
  });
  std::size_t path_width = 5, kind_width = 4;
  for (const Line& line : lines) {
    path_width = std::max(path_width, line.path.size());
    kind_width = std::max(kind_width, line.kind.size());
  }
  std::ostringstream text;
  auto row = [&](const std::string& path, const std::string& kind, const std::string& number) {
    text << path << std::string(path_width + 2 - path.size(), ' ') << kind
         << std::string(kind_width + 2 - kind.size(), ' ') << number << "\n";
  };
  row(lines[0].path, lines[0].kind, "parameters");
  for (std::size_t i = 1; i < lines.size(); ++i)
    row(lines[i].path, lines[i].kind, std::to_string(lines[i].parameters));
  row("total", "", std::to_string(count(LayerRef<T>(net))));
  return text.str();
}

}  // namespace bnorm
