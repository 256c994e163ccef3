// The one check before reading a file, shared by every reader (model files, IDX data): the
// same three failures, in the same words, whatever the format.
#pragma once

#include "../core/error.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>

namespace bnorm::detail {

// Opens `path` for binary reading. Throws bnorm::Error starting with `context` (the file
// and its kind, "model file 'net.bnorm': "): "no such file", "is a directory, not a file",
// "cannot be opened for reading (permissions?)".
inline std::ifstream open_for_reading(const std::filesystem::path& path, const std::string& context) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status)) fail(context, "no such file");
  if (std::filesystem::is_directory(status)) fail(context, "is a directory, not a file");
  std::ifstream file(path, std::ios::binary);
  if (!file) fail(context, "cannot be opened for reading (permissions?)");
  return file;
}

// The whole file, for formats parsed from memory (safetensors, ONNX); the same checks and
// words as open_for_reading, and "reading failed" on an I/O error.
inline std::string read_whole_file(const std::filesystem::path& path, const std::string& context) {
  std::ifstream file = open_for_reading(path, context);
  std::string bytes{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
  if (file.bad()) fail(context, "reading failed");
  return bytes;
}

}  // namespace bnorm::detail
