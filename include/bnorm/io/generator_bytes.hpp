// A Generator's state in bytes, the one coding of it in every file bnorm writes (a Dropout's
// record and a registered layer's generator entry in model files, a checkpoint's
// generators): its four 64-bit words, the spare normal value (f64) and its flag (u8).
#pragma once

#include "../core/generator.hpp"
#include "little_endian.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace bnorm::detail {

inline void write_generator_state(ByteWriter& writer, const Generator::State& state) {
  for (const std::uint64_t word : state.words) writer.u64(word);
  writer.scalar(state.spare_normal);
  writer.boolean(state.has_spare_normal);
}

// Rejects what no generator can be in: all-zero words (a seeded generator never is; its
// stream would be all zero) and a spare normal that is not finite (Box-Muller draws only
// finite values; a NaN there would be the next normal drawn, e.g. a NaN initial weight).
inline Generator::State read_generator_state(ByteReader& reader) {
  Generator::State state;
  for (std::uint64_t& word : state.words) word = reader.u64("generator state");
  const std::size_t spare_at = reader.position();
  state.spare_normal = reader.scalar<double>("generator's spare normal");
  state.has_spare_normal = reader.boolean("generator's spare-normal flag");
  if (state.words == decltype(state.words){})
    reader.fail("the generator state is all zero, which no seeded generator has");
  if (!std::isfinite(state.spare_normal))
    reader.fail_at(spare_at, "the generator's spare normal is ", state.spare_normal,
                   "; a generator draws finite normals");
  return state;
}

}  // namespace bnorm::detail
