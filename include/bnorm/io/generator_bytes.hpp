// A Generator's state in bytes, the one coding of it in every file bnorm writes (a Dropout's
// record and a registered layer's generator entry in model files, a checkpoint's
// generators): its four 64-bit words, the spare normal value (f64) and its flag (u8).
#pragma once

#include "../core/generator.hpp"
#include "little_endian.hpp"

#include <cstdint>

namespace bnorm::detail {

inline void write_generator_state(ByteWriter& writer, const Generator::State& state) {
  for (const std::uint64_t word : state.words) writer.u64(word);
  writer.scalar(state.spare_normal);
  writer.boolean(state.has_spare_normal);
}

// Rejects the all-zero words, which no seeded generator has (its stream would be all zero).
inline Generator::State read_generator_state(ByteReader& reader) {
  Generator::State state;
  for (std::uint64_t& word : state.words) word = reader.u64("generator state");
  state.spare_normal = reader.scalar<double>("generator's spare normal");
  state.has_spare_normal = reader.boolean("generator's spare-normal flag");
  if (state.words == decltype(state.words){})
    reader.fail("the generator state is all zero, which no seeded generator has");
  return state;
}

}  // namespace bnorm::detail
