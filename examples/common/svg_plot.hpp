// Line plots as SVG files, for the examples' figures: linear or log axes, lines with
// markers, shaded bands, dashed guide lines, legends and notes, several panels per figure.
//
//   examples::svg::Plot plot;
//   plot.title = "Test accuracy";
//   plot.x = {.label = "learning rate", .scale = examples::svg::Scale::log10};
//   plot.y = {.label = "test accuracy (%)"};
//   plot.lines.push_back({.label = "BN", .x = rates, .y = accuracies, .color = "#1f77b4"});
//   examples::svg::Figure figure{.title = "Learning-rate range", .panels = {plot}};
//   figure.save("lr_sweep.svg");
//
// Non-finite y values break a line (a diverged run leaves a gap); values outside an axis
// range given explicitly are clipped to the panel.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace examples::svg {

inline constexpr double unset = std::numeric_limits<double>::quiet_NaN();

// Tick labels: "%g", or "10k" for 10000 (for step counts).
inline std::string format_number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}
inline std::string format_thousands(double value) {
  if (std::abs(value) < 1000) return format_number(value);
  return format_number(value / 1000) + "k";
}

// Colours that stay distinct for colour-blind readers (Okabe & Ito).
namespace colors {
inline const std::string blue = "#0072B2", orange = "#E69F00", green = "#009E73",
                         vermillion = "#D55E00", purple = "#CC79A7", sky = "#56B4E9",
                         grey = "#666666", black = "#000000";
}

enum class Scale { linear, log10 };
enum class Marker { none, circle, open_circle, square, open_square, diamond, cross };
// Where a legend or notes go: a corner inside the axes, or under the x label.
enum class Position { top_left, top_right, bottom_left, bottom_right, below };

struct Axis {
  std::string label{};  // with the unit, e.g. "test accuracy (%)"
  Scale scale = Scale::linear;
  double min = unset, max = unset;  // unset: fitted to the data (and the ticks)
  std::vector<double> ticks{};      // empty: chosen automatically
  std::string (*format)(double) = format_number;
};

struct Line {
  std::string label{};  // empty: not in the legend
  std::vector<double> x{}, y{};
  std::string color = colors::blue;
  double width = 2.0;
  bool dashed = false;
  Marker marker = Marker::none;
  double opacity = 1.0;
};

// The area between `low` and `high` (e.g. the 15th and 85th percentiles), shaded.
struct Band {
  std::string label{};
  std::vector<double> x{}, low{}, high{};
  std::string color = colors::blue;
  double opacity = 0.2;
};

// A dashed line across the panel at a fixed value, with its label written beside it.
struct Guide {
  enum class Direction { horizontal, vertical };
  Direction direction = Direction::horizontal;
  double value = 0;
  std::string label{};
  std::string color = colors::grey;
};

struct Plot {
  std::string title{};
  Axis x{}, y{};
  std::vector<Band> bands{};  // drawn first, under the lines
  std::vector<Line> lines{};
  std::vector<Guide> guides{};
  std::vector<std::string> notes{};  // short lines of text
  Position legend = Position::bottom_right;
  Position notes_position = Position::below;
};

struct Figure {
  std::string title{};
  std::vector<Plot> panels{};
  std::vector<std::string> notes{};  // lines of text under the panels
  int columns = 0;                 // panels per row; 0: all in one row
  double panel_width = 460, panel_height = 340;

  std::string render() const;
  void save(const std::filesystem::path& path) const {
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
    std::ofstream file(path);
    file << render();
    if (!file.flush()) throw std::runtime_error("cannot write " + path.string());
  }
};

namespace detail {

inline std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

inline std::string fixed(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", value);
  return text;
}

// A rough width of `text` at `font_size`, for sizing boxes (SVG cannot measure text).
inline double text_width(const std::string& text, double font_size) {
  return 0.58 * font_size * static_cast<double>(text.size());
}

// The range of an axis and where its ticks go.
struct AxisLayout {
  double low = 0, high = 1;  // in axis units (log10 of the value on a log axis)
  std::vector<double> ticks;  // values, not log10
  bool log = false;
  double transform(double value) const { return log ? std::log10(value) : value; }
};

// Ticks at 1, 2, 2.5 or 5 times a power of ten, about `target` of them across [low, high].
inline double nice_step(double span, int target) {
  const double raw = span / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (double factor : {1.0, 2.0, 2.5, 5.0})
    if (raw <= factor * magnitude * (1 + 1e-9)) return factor * magnitude;
  return 10 * magnitude;
}

inline AxisLayout layout_axis(const Axis& axis, std::vector<double> values) {
  AxisLayout layout;
  layout.log = axis.scale == Scale::log10;
  std::erase_if(values, [&](double v) { return !std::isfinite(v) || (layout.log && v <= 0); });
  for (double tick : axis.ticks) values.push_back(tick);
  double low = std::isfinite(axis.min) ? axis.min : unset;
  double high = std::isfinite(axis.max) ? axis.max : unset;
  if (!values.empty()) {
    const auto [lowest, highest] = std::minmax_element(values.begin(), values.end());
    if (!std::isfinite(low)) low = *lowest;
    if (!std::isfinite(high)) high = *highest;
  }
  if (!std::isfinite(low)) low = layout.log ? 1 : 0;
  if (!std::isfinite(high)) high = layout.log ? 10 : 1;
  if (layout.log) {
    double first = std::log10(low), last = std::log10(high);
    if (!std::isfinite(axis.min)) first = std::floor(first + 1e-9);
    if (!std::isfinite(axis.max)) last = std::ceil(last - 1e-9);
    if (last <= first) last = first + 1;
    layout.low = first;
    layout.high = last;
    if (axis.ticks.empty())
      for (double decade = std::ceil(first - 1e-9); decade <= last + 1e-9; ++decade)
        layout.ticks.push_back(std::pow(10.0, decade));
  } else {
    if (high <= low) {
      const double pad = low == 0 ? 1 : std::abs(low) * 0.1;
      low -= pad;
      high += pad;
    }
    const double step = nice_step(high - low, 5);
    if (!std::isfinite(axis.min)) low = std::floor(low / step + 1e-9) * step;
    if (!std::isfinite(axis.max)) high = std::ceil(high / step - 1e-9) * step;
    layout.low = low;
    layout.high = high;
    if (axis.ticks.empty())
      for (double tick = std::ceil(low / step - 1e-9) * step; tick <= high + step * 1e-9;
           tick += step)
        layout.ticks.push_back(std::abs(tick) < step * 1e-9 ? 0.0 : std::round(tick / step) * step);
  }
  if (!axis.ticks.empty()) layout.ticks = axis.ticks;
  return layout;
}

// One legend or notes entry: a sample of the line, band or nothing, and its text.
struct BoxEntry {
  std::string text;
  const Line* line = nullptr;
  const Band* band = nullptr;
};

inline void marker(std::ostringstream& out, Marker kind, double x, double y,
                   const std::string& color, double opacity) {
  const std::string px = fixed(x), py = fixed(y);
  const std::string fill = " fill=\"" + color + "\" fill-opacity=\"" + fixed(opacity) + "\"";
  const std::string open = " fill=\"white\" stroke=\"" + color + "\" stroke-width=\"1.5\"";
  switch (kind) {
    case Marker::none: break;
    case Marker::circle:
      out << "<circle cx=\"" << px << "\" cy=\"" << py << "\" r=\"3.5\"" << fill << "/>\n";
      break;
    case Marker::open_circle:
      out << "<circle cx=\"" << px << "\" cy=\"" << py << "\" r=\"4\"" << open << "/>\n";
      break;
    case Marker::square:
    case Marker::open_square:
      out << "<rect x=\"" << fixed(x - 3.5) << "\" y=\"" << fixed(y - 3.5)
          << "\" width=\"7\" height=\"7\"" << (kind == Marker::square ? fill : open) << "/>\n";
      break;
    case Marker::diamond:
      out << "<path d=\"M" << px << " " << fixed(y - 5) << " L" << fixed(x + 5) << " " << py
          << " L" << px << " " << fixed(y + 5) << " L" << fixed(x - 5) << " " << py << " Z\""
          << fill << "/>\n";
      break;
    case Marker::cross:
      out << "<path d=\"M" << fixed(x - 4.5) << " " << fixed(y - 4.5) << " L" << fixed(x + 4.5)
          << " " << fixed(y + 4.5) << " M" << fixed(x - 4.5) << " " << fixed(y + 4.5) << " L"
          << fixed(x + 4.5) << " " << fixed(y - 4.5) << "\" stroke=\"" << color
          << "\" stroke-width=\"2\" fill=\"none\"/>\n";
      break;
  }
}

inline std::string dash(bool dashed) { return dashed ? " stroke-dasharray=\"6 4\"" : ""; }

// One legend entry at (x, middle): a sample of its line or band (`sample_width` wide; 0:
// none), then its text.
inline void entry(std::ostringstream& out, const BoxEntry& entry, double x, double middle,
                  double sample_width, double font_size) {
  const double sample_left = x, sample_right = x + sample_width - 6;
  if (const Line* line = entry.line) {
    out << "<line x1=\"" << fixed(sample_left) << "\" y1=\"" << fixed(middle) << "\" x2=\""
        << fixed(sample_right) << "\" y2=\"" << fixed(middle) << "\" stroke=\"" << line->color
        << "\" stroke-width=\"" << fixed(line->width) << "\" stroke-opacity=\""
        << fixed(std::max(line->opacity, 0.5)) << "\"" << dash(line->dashed) << "/>\n";
    marker(out, line->marker, (sample_left + sample_right) / 2, middle, line->color, 1.0);
  } else if (const Band* band = entry.band) {
    out << "<rect x=\"" << fixed(sample_left) << "\" y=\"" << fixed(middle - 5) << "\" width=\""
        << fixed(sample_right - sample_left) << "\" height=\"10\" fill=\"" << band->color
        << "\" fill-opacity=\"" << fixed(std::max(band->opacity, 0.25)) << "\"/>\n";
  }
  out << "<text x=\"" << fixed(x + sample_width) << "\" y=\"" << fixed(middle + font_size * 0.35)
      << "\" font-size=\"" << fixed(font_size) << "\"" << (sample_width > 0 ? "" : " fill=\"#333333\"")
      << ">" << escape(entry.text) << "</text>\n";
}

// A box of entries in a corner of the area [left, right] x [top, bottom].
inline void box(std::ostringstream& out, const std::vector<BoxEntry>& entries, Position corner,
                double left, double right, double top, double bottom, double font_size) {
  if (entries.empty()) return;
  bool samples = false;
  double text = 0;
  for (const auto& item : entries) {
    samples = samples || item.line || item.band;
    text = std::max(text, text_width(item.text, font_size));
  }
  const double sample_width = samples ? 30 : 0, row = font_size + 5;
  const double width = 12 + sample_width + text, height = 8 + row * entries.size();
  const bool at_left = corner == Position::top_left || corner == Position::bottom_left;
  const bool at_top = corner == Position::top_left || corner == Position::top_right;
  const double x = at_left ? left + 8 : right - 8 - width;
  const double y = at_top ? top + 8 : bottom - 8 - height;
  out << "<rect x=\"" << fixed(x) << "\" y=\"" << fixed(y) << "\" width=\"" << fixed(width)
      << "\" height=\"" << fixed(height)
      << "\" fill=\"white\" fill-opacity=\"0.88\" stroke=\"#bbbbbb\"/>\n";
  for (std::size_t i = 0; i < entries.size(); ++i)
    entry(out, entries[i], x + 6, y + 4 + row * (static_cast<double>(i) + 0.5), sample_width,
          font_size);
}

inline void panel(std::ostringstream& out, const Plot& plot, int index, double width,
                  double height) {
  std::vector<BoxEntry> legend;
  for (const auto& band : plot.bands)
    if (!band.label.empty()) legend.push_back({band.label, nullptr, &band});
  for (const auto& line : plot.lines)
    if (!line.label.empty()) legend.push_back({line.label, &line, nullptr});
  // Under the x label: the legend in two columns (one if its texts are too long), then the
  // notes.
  constexpr double legend_row = 16, note_line = 14;
  double longest = 0;
  for (const auto& item : legend) longest = std::max(longest, text_width(item.text, 11));
  const std::size_t columns = 30 + longest + 12 < (width - 34) / 2 ? 2 : 1;
  const double legend_below =
      plot.legend == Position::below
          ? legend_row * static_cast<double>((legend.size() + columns - 1) / columns)
          : 0;
  const double notes_below =
      plot.notes_position == Position::below ? note_line * static_cast<double>(plot.notes.size()) : 0;
  const double left = 66, right = width - 16, top = 32;
  const double bottom = height - 50 - legend_below - notes_below;
  std::vector<double> xs, ys;
  for (const auto& line : plot.lines) {
    xs.insert(xs.end(), line.x.begin(), line.x.end());
    ys.insert(ys.end(), line.y.begin(), line.y.end());
  }
  for (const auto& band : plot.bands) {
    xs.insert(xs.end(), band.x.begin(), band.x.end());
    ys.insert(ys.end(), band.low.begin(), band.low.end());
    ys.insert(ys.end(), band.high.begin(), band.high.end());
  }
  for (const auto& guide : plot.guides)
    (guide.direction == Guide::Direction::horizontal ? ys : xs).push_back(guide.value);
  const AxisLayout x_axis = layout_axis(plot.x, xs), y_axis = layout_axis(plot.y, ys);
  auto px = [&](double v) {
    return left + (x_axis.transform(v) - x_axis.low) / (x_axis.high - x_axis.low) * (right - left);
  };
  auto py = [&](double v) {
    return bottom - (y_axis.transform(v) - y_axis.low) / (y_axis.high - y_axis.low) * (bottom - top);
  };
  auto visible = [&](double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && (!x_axis.log || x > 0) && (!y_axis.log || y > 0);
  };

  out << "<text x=\"" << fixed((left + right) / 2) << "\" y=\"20\" text-anchor=\"middle\" "
      << "font-size=\"13\" font-weight=\"bold\">" << escape(plot.title) << "</text>\n";
  // Grid and tick labels.
  for (double tick : x_axis.ticks) {
    const double x = px(tick);
    if (x < left - 0.5 || x > right + 0.5) continue;
    out << "<line x1=\"" << fixed(x) << "\" y1=\"" << fixed(top) << "\" x2=\"" << fixed(x)
        << "\" y2=\"" << fixed(bottom) << "\" stroke=\"#e6e6e6\"/>\n"
        << "<text x=\"" << fixed(x) << "\" y=\"" << fixed(bottom + 16)
        << "\" text-anchor=\"middle\" font-size=\"11\">" << escape(plot.x.format(tick))
        << "</text>\n";
  }
  for (double tick : y_axis.ticks) {
    const double y = py(tick);
    if (y < top - 0.5 || y > bottom + 0.5) continue;
    out << "<line x1=\"" << fixed(left) << "\" y1=\"" << fixed(y) << "\" x2=\"" << fixed(right)
        << "\" y2=\"" << fixed(y) << "\" stroke=\"#e6e6e6\"/>\n"
        << "<text x=\"" << fixed(left - 6) << "\" y=\"" << fixed(y + 4)
        << "\" text-anchor=\"end\" font-size=\"11\">" << escape(plot.y.format(tick)) << "</text>\n";
  }
  out << "<text x=\"" << fixed((left + right) / 2) << "\" y=\"" << fixed(bottom + 36)
      << "\" text-anchor=\"middle\">" << escape(plot.x.label) << "</text>\n"
      << "<text transform=\"translate(" << fixed(left - 48) << " " << fixed((top + bottom) / 2)
      << ") rotate(-90)\" text-anchor=\"middle\">" << escape(plot.y.label) << "</text>\n";

  // Data, clipped to the plot area (with room for markers on its edge).
  out << "<clipPath id=\"plot-area-" << index << "\"><rect x=\"" << fixed(left - 5) << "\" y=\""
      << fixed(top - 5) << "\" width=\"" << fixed(right - left + 10) << "\" height=\""
      << fixed(bottom - top + 10) << "\"/></clipPath>\n"
      << "<g clip-path=\"url(#plot-area-" << index << ")\">\n";
  for (const auto& band : plot.bands) {
    // One polygon per run of finite points: along `low`, then back along `high`.
    std::size_t i = 0;
    const std::size_t n = std::min({band.x.size(), band.low.size(), band.high.size()});
    while (i < n) {
      while (i < n && !(visible(band.x[i], band.low[i]) && visible(band.x[i], band.high[i]))) ++i;
      std::size_t end = i;
      while (end < n && visible(band.x[end], band.low[end]) && visible(band.x[end], band.high[end]))
        ++end;
      if (end > i) {
        out << "<path d=\"";
        for (std::size_t k = i; k < end; ++k)
          out << (k == i ? "M" : " L") << fixed(px(band.x[k])) << " " << fixed(py(band.low[k]));
        for (std::size_t k = end; k-- > i;)
          out << " L" << fixed(px(band.x[k])) << " " << fixed(py(band.high[k]));
        out << " Z\" fill=\"" << band.color << "\" fill-opacity=\"" << fixed(band.opacity)
            << "\" stroke=\"none\"/>\n";
      }
      i = end;
    }
  }
  for (const auto& guide : plot.guides) {
    const bool horizontal = guide.direction == Guide::Direction::horizontal;
    if (horizontal && !visible(x_axis.log ? 1 : 0, guide.value)) continue;
    if (!horizontal && !visible(guide.value, y_axis.log ? 1 : 0)) continue;
    const double a = horizontal ? py(guide.value) : px(guide.value);
    if (horizontal)
      out << "<line x1=\"" << fixed(left) << "\" y1=\"" << fixed(a) << "\" x2=\"" << fixed(right)
          << "\" y2=\"" << fixed(a) << "\"";
    else
      out << "<line x1=\"" << fixed(a) << "\" y1=\"" << fixed(top) << "\" x2=\"" << fixed(a)
          << "\" y2=\"" << fixed(bottom) << "\"";
    out << " stroke=\"" << guide.color << "\" stroke-width=\"1.2\" stroke-dasharray=\"3 3\"/>\n";
    if (!guide.label.empty()) {
      if (horizontal)
        out << "<text x=\"" << fixed(left + 4) << "\" y=\"" << fixed(a - 4)
            << "\" font-size=\"10\" fill=\"" << guide.color << "\">" << escape(guide.label)
            << "</text>\n";
      else
        out << "<text x=\"" << fixed(a + 4) << "\" y=\"" << fixed(top + 12)
            << "\" font-size=\"10\" fill=\"" << guide.color << "\">" << escape(guide.label)
            << "</text>\n";
    }
  }
  for (const auto& line : plot.lines) {
    const std::size_t n = std::min(line.x.size(), line.y.size());
    std::string path;
    bool pen_down = false;
    for (std::size_t k = 0; k < n; ++k) {
      if (!visible(line.x[k], line.y[k])) {
        pen_down = false;
        continue;
      }
      path += (pen_down ? " L" : " M") + fixed(px(line.x[k])) + " " + fixed(py(line.y[k]));
      pen_down = true;
    }
    if (line.width > 0 && !path.empty())
      out << "<path d=\"" << path << "\" fill=\"none\" stroke=\"" << line.color
          << "\" stroke-width=\"" << fixed(line.width) << "\" stroke-opacity=\""
          << fixed(line.opacity) << "\" stroke-linejoin=\"round\"" << dash(line.dashed) << "/>\n";
    for (std::size_t k = 0; k < n; ++k)
      if (visible(line.x[k], line.y[k]))
        marker(out, line.marker, px(line.x[k]), py(line.y[k]), line.color, line.opacity);
  }
  out << "</g>\n<rect x=\"" << fixed(left) << "\" y=\"" << fixed(top) << "\" width=\""
      << fixed(right - left) << "\" height=\"" << fixed(bottom - top)
      << "\" fill=\"none\" stroke=\"#333333\"/>\n";

  if (plot.legend == Position::below) {
    const double column = (right - left + 48) / 2;
    for (std::size_t i = 0; i < legend.size(); ++i)
      entry(out, legend[i], left - 48 + column * static_cast<double>(i % columns),
            bottom + 54 + legend_row * static_cast<double>(i / columns), 30, 11);
  } else {
    box(out, legend, plot.legend, left, right, top, bottom, 11);
  }
  if (plot.notes_position == Position::below) {
    for (std::size_t i = 0; i < plot.notes.size(); ++i)
      out << "<text x=\"" << fixed(left) << "\" y=\""
          << fixed(bottom + 52 + legend_below + note_line * static_cast<double>(i))
          << "\" font-size=\"10.5\" fill=\"#333333\">" << escape(plot.notes[i]) << "</text>\n";
  } else {
    std::vector<BoxEntry> notes;
    for (const auto& note : plot.notes) notes.push_back({note});
    box(out, notes, plot.notes_position, left, right, top, bottom, 10);
  }
}

}  // namespace detail

inline std::string Figure::render() const {
  const int count = std::max<int>(1, static_cast<int>(panels.size()));
  const int per_row = columns > 0 ? std::min(columns, count) : count;
  const int rows = (count + per_row - 1) / per_row;
  const double title_height = title.empty() ? 8 : 34, note_height = 16;
  const double width = per_row * panel_width + 8;
  const double height = title_height + rows * panel_height +
                        note_height * static_cast<double>(notes.size()) + (notes.empty() ? 4 : 12);
  std::ostringstream out;
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << detail::fixed(width)
      << "\" height=\"" << detail::fixed(height) << "\" viewBox=\"0 0 " << detail::fixed(width)
      << " " << detail::fixed(height)
      << "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!title.empty())
    out << "<text x=\"" << detail::fixed(width / 2)
        << "\" y=\"22\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">"
        << detail::escape(title) << "</text>\n";
  for (std::size_t i = 0; i < panels.size(); ++i) {
    const double x = 4 + static_cast<double>(static_cast<int>(i) % per_row) * panel_width;
    const double y = title_height + static_cast<double>(static_cast<int>(i) / per_row) * panel_height;
    out << "<g transform=\"translate(" << detail::fixed(x) << " " << detail::fixed(y) << ")\">\n";
    detail::panel(out, panels[i], static_cast<int>(i), panel_width, panel_height);
    out << "</g>\n";
  }
  for (std::size_t i = 0; i < notes.size(); ++i)
    out << "<text x=\"12\" y=\""
        << detail::fixed(title_height + rows * panel_height + 6 + note_height * (i + 0.5))
        << "\" font-size=\"11\" fill=\"#333333\">" << detail::escape(notes[i]) << "</text>\n";
  out << "</svg>\n";
  return out.str();
}

}  // namespace examples::svg
