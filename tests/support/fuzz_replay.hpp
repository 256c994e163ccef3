// Replays committed fuzz inputs through the fuzzers' own targets (fuzz/*_target.hpp), for
// tests/test_fuzz_regressions*.cpp: every input a fuzzer has crashed on
// (fuzz/regressions/<reader>/) and the corpus long runs grew (fuzz/corpus/<reader>/). A target
// aborts, or a sanitizer reports, on anything but a clean load or a bnorm::Error.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace bnorm_test {

inline const std::filesystem::path fuzz_folder =
    std::filesystem::path(BNORM_TEST_DATA_DIR).parent_path().parent_path() / "fuzz";

// The files of fuzz/<kind>/<reader>/, in name order (none if the folder does not exist).
inline std::vector<std::filesystem::path> fuzz_inputs(const char* kind, const char* reader) {
  std::vector<std::filesystem::path> files;
  const auto folder = fuzz_folder / kind / reader;
  if (std::filesystem::is_directory(folder))
    for (const auto& entry : std::filesystem::directory_iterator(folder))
      if (entry.is_regular_file() && entry.path().extension() != ".md") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

// Runs `target` on every regression and corpus input of `reader`; returns how many.
template <class Target>
std::size_t replay_fuzz_inputs(const char* reader, Target target) {
  std::size_t count = 0;
  for (const char* kind : {"regressions", "corpus"})
    for (const auto& path : fuzz_inputs(kind, reader)) {
      INFO("fuzz input ", path.string());
      std::ifstream file(path, std::ios::binary);
      const std::string bytes{std::istreambuf_iterator<char>(file), {}};
      target(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
      ++count;
    }
  return count;
}

}  // namespace bnorm_test
