// Test helpers for the data module: IDX files built byte by byte, and gzip compression (with
// zlib only); TempDir for the folders they go in.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "temp_dir.hpp"

#ifdef BNORM_WITH_ZLIB
#include <zlib.h>
#endif

namespace bnorm_test {

using Bytes = std::vector<unsigned char>;

inline void append_big_endian(Bytes& bytes, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    bytes.push_back(static_cast<unsigned char>(value >> shift));
}

// An IDX file: zero, zero, type code, dimension count, big-endian dimensions, then data.
inline Bytes idx_file(const std::vector<std::uint32_t>& dimensions, const Bytes& data,
                      unsigned char type_code = 0x08) {
  Bytes bytes = {0, 0, type_code, static_cast<unsigned char>(dimensions.size())};
  for (std::uint32_t dimension : dimensions) append_big_endian(bytes, dimension);
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

inline std::filesystem::path write_bytes(const std::filesystem::path& path, const Bytes& bytes) {
  std::ofstream file(path, std::ios::binary);
  file.write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  REQUIRE(file.good());
  return path;
}

// `count` bytes 0, 1, 2, ... wrapping at 256.
inline Bytes counting_bytes(std::size_t count, unsigned start = 0) {
  Bytes bytes(count);
  for (std::size_t i = 0; i < count; ++i) bytes[i] = static_cast<unsigned char>(start + i);
  return bytes;
}

#ifdef BNORM_WITH_ZLIB
// The gzip file gzip(1) would write for `bytes`.
inline Bytes gzip(const Bytes& bytes) {
  z_stream stream{};
  // 16 + MAX_WBITS: gzip wrapper instead of zlib's.
  REQUIRE(deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                       Z_DEFAULT_STRATEGY) == Z_OK);
  Bytes compressed(deflateBound(&stream, static_cast<uLong>(bytes.size())));
  stream.next_in = const_cast<unsigned char*>(bytes.data());
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = compressed.data();
  stream.avail_out = static_cast<uInt>(compressed.size());
  const int status = deflate(&stream, Z_FINISH);
  compressed.resize(stream.total_out);
  deflateEnd(&stream);
  REQUIRE(status == Z_STREAM_END);
  return compressed;
}
#endif

}  // namespace bnorm_test
