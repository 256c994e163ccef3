// A seedable random generator whose streams are identical on every platform and compiler.
//
// std::mt19937's bits are portable but std::uniform_real_distribution and
// std::normal_distribution are not, so bnorm draws with its own conversions on top of
// xoshiro256** (Blackman & Vigna), seeded through SplitMix64.
#pragma once

#include "error.hpp"
#include "types.hpp"

#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>

namespace bnorm {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) { seed_with(seed); }

  void seed_with(std::uint64_t seed) {
    std::uint64_t mix = seed;
    for (auto& word : state_) word = split_mix(mix);
    has_spare_normal_ = false;
  }

  std::uint64_t next() {
    const std::uint64_t result = rotate_left(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotate_left(state_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  double uniform(double low, double high) { return low + (high - low) * uniform(); }

  // Standard normal by the Box-Muller transform; the second value of each pair is kept.
  double normal() {
    if (has_spare_normal_) {
      has_spare_normal_ = false;
      return spare_normal_;
    }
    const double u1 = 1.0 - uniform();  // in (0, 1]: log is finite
    const double u2 = uniform();
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 2.0 * std::numbers::pi * u2;
    spare_normal_ = radius * std::sin(angle);
    has_spare_normal_ = true;
    return radius * std::cos(angle);
  }

  double normal(double mean, double stddev) { return mean + stddev * normal(); }

  // Uniform integer in [0, bound): draws above the largest multiple of bound are rejected,
  // so there is no modulo bias.
  std::uint64_t below(std::uint64_t bound) {
    BNORM_ASSERT(bound > 0);
    const std::uint64_t max = ~std::uint64_t{0};
    const std::uint64_t limit = max - max % bound;
    std::uint64_t draw = next();
    while (draw >= limit) draw = next();
    return draw % bound;
  }

  bool bernoulli(double p) { return uniform() < p; }

  // Fisher-Yates shuffle of a contiguous range, same order on every platform.
  template <class Range>
  void shuffle(Range& range) {
    const auto n = static_cast<std::uint64_t>(range.size());
    for (std::uint64_t i = n; i > 1; --i) {
      const std::uint64_t j = below(i);
      using std::swap;
      swap(range[static_cast<Index>(i - 1)], range[static_cast<Index>(j)]);
    }
  }

  // The complete state, to save a generator and resume its stream exactly.
  struct State {
    std::array<std::uint64_t, 4> words{};
    double spare_normal = 0.0;
    bool has_spare_normal = false;
    friend bool operator==(const State&, const State&) = default;
  };
  State state() const { return {{state_[0], state_[1], state_[2], state_[3]}, spare_normal_, has_spare_normal_}; }
  void set_state(const State& state) {
    for (int i = 0; i < 4; ++i) state_[i] = state.words[static_cast<std::size_t>(i)];
    spare_normal_ = state.spare_normal;
    has_spare_normal_ = state.has_spare_normal;
  }

  friend bool operator==(const Generator&, const Generator&) = default;

 private:
  static std::uint64_t rotate_left(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  static std::uint64_t split_mix(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  std::uint64_t state_[4]{};
  double spare_normal_ = 0.0;
  bool has_spare_normal_ = false;
};

// The generator layers draw from when none is given, like PyTorch's default generator.
// Not thread-safe: build networks from one thread, or pass each layer its own Generator.
inline Generator& default_generator() {
  static Generator generator{0};
  return generator;
}

// Reseeds the default generator: the same seed then builds bit-identical networks.
inline void manual_seed(std::uint64_t seed) { default_generator().seed_with(seed); }

}  // namespace bnorm
