// Fuzz target for the model loader (run as fuzz_load, fuzz_readers.cpp): bnorm::load<float>
// and bnorm::load<double> on any bytes. A bnorm::Error is the expected answer to a bad file;
// anything else (a crash, a sanitizer report, another exception, a leak, a timeout) is a
// finding. scripts/fuzz.sh seeds it with valid model files written by make_seeds.cpp.
#pragma once

#include <bnorm/io/save_load.hpp>

#include "support/model_files.hpp"  // with_valid_checksum

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

namespace bnorm_fuzz::load_target {

template <class T>
void load_and_check(const std::string& bytes) {
  std::istringstream in(bytes, std::ios::binary);
  try {
    const bnorm::Sequential<T> net = bnorm::load<T>(in);
    // The encoding is canonical: a model that loads saves back to exactly the bytes it was
    // read from. A difference would mean a field lost or altered on the way.
    const auto consumed = static_cast<std::size_t>(in.tellg());
    std::ostringstream out(std::ios::binary);
    bnorm::save(net, out);
    if (out.str() != bytes.substr(0, consumed)) std::abort();
  } catch (const bnorm::Error&) {
  }
}

// One input; the entry point of fuzz_readers.cpp calls it.
inline int run(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  load_and_check<float>(bytes);
  load_and_check<double>(bytes);
  // The same bytes with the header's payload size and checksum made to fit them, so that
  // mutations reach the parser instead of stopping at the checksum.
  if (size >= bnorm::detail::model_header_size) {
    const std::string forged = bnorm_test::with_valid_checksum(bytes);
    load_and_check<float>(forged);
    load_and_check<double>(forged);
  }
  return 0;
}

}  // namespace bnorm_fuzz::load_target
