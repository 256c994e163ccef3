// Fuzz target for the safetensors reader (run as fuzz_safetensors, fuzz_readers.cpp):
// load_safetensors on any bytes, into float and double twins of the fixture models (so that
// mutated fixtures reach the match with the network, not only the parser). A bnorm::Error is
// the expected answer to a bad file; anything else (a crash, a sanitizer report, another
// exception, a leak, a timeout) is a finding. scripts/fuzz.sh seeds it with the valid fixture
// files tests/reference/safetensors/*.safetensors.
#pragma once

#include <bnorm/safetensors.hpp>

#include "support/safetensors_models.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

namespace bnorm_fuzz::safetensors_target {

template <class T>
std::vector<double> state_values(bnorm::Sequential<T>& net) {
  std::vector<double> values;
  for (auto& parameter : net.parameters())
    for (bnorm::Index i = 0; i < parameter.size(); ++i) values.push_back(parameter.value().data()[i]);
  for (auto& buffer : net.buffers())
    if (buffer.kind() == bnorm::BufferKind::counter) values.push_back(double(buffer.counter()));
    else if (buffer.kind() == bnorm::BufferKind::values)
      for (bnorm::Index i = 0; i < buffer.values().size(); ++i) values.push_back(buffer.values().data()[i]);
  return values;
}

inline bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

template <class T>
void load_and_check(std::string_view bytes) {
  for (const char* name : bnorm_test::safetensors_model_names) {
    bnorm::Sequential<T> net = bnorm_test::safetensors_model<T>(name);
    const std::vector<double> before = state_values(net);
    try {
      bnorm::detail::load_safetensors_bytes(net, bytes, "fuzz input");
    } catch (const bnorm::Error&) {
      // Strong guarantee: a refused file leaves the network exactly as it was.
      if (!same_bits(state_values(net), before)) std::abort();
      continue;
    }
    // What loads saves and reloads to the same state, bit for bit (NaN payloads included).
    const std::string saved = bnorm::detail::encode_state_dict(net);
    bnorm::Sequential<T> reloaded = bnorm_test::safetensors_model<T>(name);
    bnorm::detail::load_safetensors_bytes(reloaded, saved, "saved fuzz input");
    if (!same_bits(state_values(reloaded), state_values(net))) std::abort();
  }
}

// One input; the entry point of fuzz_readers.cpp calls it.
inline int run(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  load_and_check<float>(bytes);
  load_and_check<double>(bytes);
  return 0;
}

}  // namespace bnorm_fuzz::safetensors_target
