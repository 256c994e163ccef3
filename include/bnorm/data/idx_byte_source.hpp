// The bytes of an IDX file, plain or gzip-compressed (data/idx.hpp reads the format on top).
//
// A file that starts with the gzip magic bytes 1f 8b is decompressed on the fly. That needs
// zlib: link the CMake target bnorm::gzip (it defines BNORM_WITH_ZLIB). Without it, only
// reading a .gz file fails, with a bnorm::Error that says so.
#pragma once

#include "../core/error.hpp"
#include "../io/open_file.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string>

#ifdef BNORM_WITH_ZLIB
#include <zlib.h>
#endif

// Everything that reads files (this reader, data/idx.hpp, load_idx_dataset, load_fashion_mnist)
// lives in an inline namespace named after the zlib setting, so translation units built with
// and without zlib link distinct functions instead of silently breaking the one-definition rule.
#ifdef BNORM_WITH_ZLIB
#define BNORM_IDX_NAMESPACE idx_with_zlib
#else
#define BNORM_IDX_NAMESPACE idx_without_zlib
#endif

namespace bnorm {
namespace detail {
inline namespace BNORM_IDX_NAMESPACE {

// "IDX file 'path': " — the start of every message, so the user knows which file is bad.
inline std::string idx_context(const std::filesystem::path& path) {
  return "IDX file '" + path.string() + "': ";
}

// The bytes of a file, decompressed when it is gzip; read() fills what it can and returns
// how many bytes it wrote (fewer than asked only at the end of the data).
class IdxByteSource {
 public:
  explicit IdxByteSource(const std::filesystem::path& path) : path_(path) {
    file_ = open_for_reading(path, idx_context(path));
    unsigned char magic[2] = {0, 0};
    const std::size_t got = read_file(magic, 2);
    is_gzip_ = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (is_gzip_) {
      start_gzip(magic);
    } else {
      std::copy(magic, magic + got, pending_);
      pending_count_ = got;
    }
  }

  IdxByteSource(const IdxByteSource&) = delete;
  IdxByteSource& operator=(const IdxByteSource&) = delete;

  // The most bytes this source can deliver: the file's size, or for gzip 1032 times it
  // (deflate's largest expansion), so a header's claim can be checked before allocating.
  std::uint64_t size_bound() const {
    std::error_code error;
    const std::uint64_t file_size = std::filesystem::file_size(path_, error);
    if (error) return std::numeric_limits<std::uint64_t>::max();
    return is_gzip_ ? file_size * 1032 + 1024 : file_size;
  }

  ~IdxByteSource() {
#ifdef BNORM_WITH_ZLIB
    if (is_gzip_) inflateEnd(&stream_);
#endif
  }

  std::size_t read(unsigned char* out, std::size_t count) {
#ifdef BNORM_WITH_ZLIB
    if (is_gzip_) return read_gzip(out, count);
#endif
    // The two bytes read to look for the gzip magic come first.
    const std::size_t from_pending = std::min(count, pending_count_);
    std::copy(pending_, pending_ + from_pending, out);
    std::copy(pending_ + from_pending, pending_ + pending_count_, pending_);
    pending_count_ -= from_pending;
    return from_pending + read_file(out + from_pending, count - from_pending);
  }

 private:
  std::size_t read_file(unsigned char* out, std::size_t count) {
    std::size_t total = 0;
    // istream::read takes a std::streamsize; read in pieces so any count fits.
    constexpr std::size_t piece = std::size_t{1} << 30;
    while (total < count && file_) {
      const std::size_t want = std::min(piece, count - total);
      file_.read(reinterpret_cast<char*>(out + total), static_cast<std::streamsize>(want));
      total += static_cast<std::size_t>(file_.gcount());
    }
    if (file_.bad()) fail(idx_context(path_), "read error");
    return total;
  }

#ifdef BNORM_WITH_ZLIB
  void start_gzip(const unsigned char (&magic)[2]) {
    // 16 + MAX_WBITS: expect a gzip wrapper and check its CRC-32 and length.
    if (inflateInit2(&stream_, 16 + MAX_WBITS) != Z_OK) {
      is_gzip_ = false;  // nothing for the destructor to end
      fail(idx_context(path_), "zlib could not start decompressing (out of memory?)");
    }
    std::copy(magic, magic + 2, input_.get());
    stream_.next_in = input_.get();
    stream_.avail_in = 2;
  }

  std::size_t read_gzip(unsigned char* out, std::size_t count) {
    std::size_t total = 0;
    while (total < count && !gzip_finished_) {
      if (stream_.avail_in == 0) {
        const std::size_t input_size = read_file(input_.get(), input_capacity);
        stream_.next_in = input_.get();
        stream_.avail_in = static_cast<uInt>(input_size);
        if (input_size == 0) {
          if (at_member_end_) {
            gzip_finished_ = true;
            break;
          }
          if (later_member_ && stream_.total_out == 0)
            fail(idx_context(path_),
                 "trailing garbage after the gzip stream (a few bytes that do not start "
                 "another gzip member)");
          fail(idx_context(path_),
               "truncated gzip stream: the file ends before the compressed "
               "data does (incomplete download?)");
        }
      }
      if (at_member_end_) {
        // gzip allows several members one after another; more input means another member.
        inflateReset(&stream_);
        at_member_end_ = false;
        later_member_ = true;
      }
      // avail_out is a uInt: hand out at most 1 GiB per call.
      const std::size_t want = std::min(count - total, std::size_t{1} << 30);
      stream_.next_out = out + total;
      stream_.avail_out = static_cast<uInt>(want);
      const int status = inflate(&stream_, Z_NO_FLUSH);
      total += want - stream_.avail_out;
      if (status == Z_STREAM_END) {
        at_member_end_ = true;
      } else if (status == Z_DATA_ERROR || status == Z_NEED_DICT || status == Z_STREAM_ERROR) {
        const std::string reason = stream_.msg ? stream_.msg : "invalid data";
        if (later_member_ && stream_.total_out == 0)  // not even a member's header decoded
          fail(idx_context(path_), "trailing garbage after the gzip stream (zlib: ", reason, ")");
        fail(idx_context(path_), "corrupt gzip stream (zlib: ", reason, ")");
      } else if (status == Z_MEM_ERROR) {
        fail(idx_context(path_), "zlib ran out of memory while decompressing");
      }
      // Z_OK, or Z_BUF_ERROR when this input is used up: go round for more.
    }
    return total;
  }

  static constexpr std::size_t input_capacity = std::size_t{1} << 16;
  z_stream stream_{};  // zero: zalloc, zfree, opaque are Z_NULL, zlib's defaults
  std::unique_ptr<unsigned char[]> input_ = std::make_unique<unsigned char[]>(input_capacity);
  bool at_member_end_ = false;
  bool later_member_ = false;
  bool gzip_finished_ = false;
#else
  [[noreturn]] void start_gzip(const unsigned char (&)[2]) {
    fail(idx_context(path_),
         "is gzip-compressed, but bnorm was built without zlib; link the "
         "CMake target bnorm::gzip (or define BNORM_WITH_ZLIB and link zlib), "
         "or decompress the file with gunzip");
  }
#endif

  std::filesystem::path path_;
  std::ifstream file_;
  unsigned char pending_[2] = {0, 0};
  std::size_t pending_count_ = 0;
  bool is_gzip_ = false;
};

}  // namespace BNORM_IDX_NAMESPACE
}  // namespace detail
}  // namespace bnorm
