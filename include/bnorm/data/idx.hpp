// Reader for IDX files, the format of MNIST and Fashion-MNIST, plain or gzip-compressed.
//
//   bnorm::Matrix<float> images = bnorm::read_idx_images<float>("train-images-idx3-ubyte.gz");
//   bnorm::Labels labels = bnorm::read_idx_labels("train-labels-idx1-ubyte.gz");
//
// An IDX file is a big-endian header, then the data, row-major:
//   bytes 0-1  zero
//   byte  2    type code (0x08 unsigned byte, the only one these readers need)
//   byte  3    number of dimensions d
//   4 * d      each dimension as a big-endian uint32 (images: count, rows, columns)
//   then       the product of the dimensions, one byte each for type 0x08
//
// A file that starts with the gzip magic bytes 1f 8b is decompressed on the fly. That needs
// zlib: link the CMake target bnorm::gzip (it defines BNORM_WITH_ZLIB). Without it, only
// reading a .gz file fails, with a bnorm::Error that says so.
//
// Every malformed file (missing, unreadable, bad magic, unsupported type, wrong number of
// dimensions, truncated, trailing bytes, corrupt gzip) throws bnorm::Error naming the file
// and the problem. Memory grows with the data actually read, never with what a header
// claims, so a corrupt header cannot make the reader allocate gigabytes.
#pragma once

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../io/open_file.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#ifdef BNORM_WITH_ZLIB
#include <zlib.h>
#endif

// Everything that reads files (here, load_idx_dataset, load_fashion_mnist) lives in an inline
// namespace named after the zlib setting, so translation units built with and without zlib
// link distinct functions instead of silently breaking the one-definition rule.
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

inline const char* idx_type_name(unsigned code) {
  switch (code) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "16-bit integer";
    case 0x0C:
      return "32-bit integer";
    case 0x0D:
      return "32-bit float";
    case 0x0E:
      return "64-bit float";
    default:
      return nullptr;
  }
}

inline std::string hex_string(unsigned long value, int digits) {
  std::ostringstream text;
  text << "0x" << std::hex;
  text.width(digits);
  text.fill('0');
  text << value;
  return text.str();
}

// The dimensions and the bytes of an unsigned-byte IDX file.
struct IdxBytes {
  std::vector<std::uint32_t> dimensions;
  std::vector<unsigned char> data;
};

// Reads an IDX file of unsigned bytes with `expected_rank` dimensions. `rank_hint` ends the
// message for a wrong rank ("an image file needs 3 (count, rows, columns)").
inline IdxBytes read_idx_bytes(const std::filesystem::path& path, unsigned expected_rank,
                               const std::string& rank_hint) {
  const std::string context = idx_context(path);
  IdxByteSource source(path);

  unsigned char magic[4];
  const std::size_t magic_size = source.read(magic, 4);
  if (magic_size == 0) fail(context, "is empty");
  if (magic_size < 4)
    fail(context, "truncated header: only ", magic_size,
         " bytes, fewer than the 4 of the magic number");
  const unsigned long magic_number = (static_cast<unsigned long>(magic[0]) << 24) |
                                     (static_cast<unsigned long>(magic[1]) << 16) |
                                     (static_cast<unsigned long>(magic[2]) << 8) | magic[3];
  if (magic[0] != 0 || magic[1] != 0)
    fail(context, "bad magic number ", hex_string(magic_number, 8),
         ": an IDX file starts with two zero bytes, a type code and the number "
         "of dimensions (is this an IDX file?)");
  const unsigned type_code = magic[2];
  if (type_code != 0x08) {
    const char* type = idx_type_name(type_code);
    if (type)
      fail(context, "unsupported type code ", hex_string(type_code, 2), " (", type, "); only ",
           hex_string(0x08, 2), " (unsigned byte) is supported");
    fail(context, "bad magic number ", hex_string(magic_number, 8), ": unknown type code ",
         hex_string(type_code, 2), "; only ", hex_string(0x08, 2), " (unsigned byte) is supported");
  }
  const unsigned rank = magic[3];
  if (rank != expected_rank)
    fail(context, "wrong number of dimensions: the header says ", rank, ", but ", rank_hint);

  IdxBytes result;
  result.dimensions.resize(rank);
  std::uint64_t element_count = 1;
  bool too_large = false;
  // The data must fit in memory, and its size in an Eigen::Index.
  const std::uint64_t max_elements =
      static_cast<std::uint64_t>(std::numeric_limits<Index>::max() / 8);
  for (unsigned i = 0; i < rank; ++i) {
    unsigned char bytes[4];
    const std::size_t got = source.read(bytes, 4);
    if (got < 4) fail(context, "truncated header: it ends inside dimension ", i + 1, " of ", rank);
    const std::uint32_t dimension = (std::uint32_t{bytes[0]} << 24) |
                                    (std::uint32_t{bytes[1]} << 16) |
                                    (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]};
    result.dimensions[i] = dimension;
    if (dimension != 0 && element_count > max_elements / dimension)
      too_large = true;
    else
      element_count *= dimension;
  }
  auto dimensions_text = [&] {
    std::ostringstream text;
    for (unsigned i = 0; i < rank; ++i) text << (i ? " x " : "") << result.dimensions[i];
    return text.str();
  };
  if (too_large)
    fail(context, "absurd size in the header: ", dimensions_text(),
         " values, more than any real data set holds (corrupt header?)");

  // One allocation when the file can hold what the header says (an honest file). A header
  // claiming more than the file can deliver gets no more than the file's bound, and the
  // loop, growing the buffer with what actually arrives, reports the truncation.
  const auto expected = static_cast<std::size_t>(element_count);
  result.data.reserve(static_cast<std::size_t>(std::min(element_count, source.size_bound())));
  constexpr std::size_t min_step = std::size_t{1} << 20;
  while (result.data.size() < expected) {
    const std::size_t have = result.data.size();
    const std::size_t target = std::min(expected, have + std::max(have, min_step));
    result.data.resize(target);
    const std::size_t got = source.read(result.data.data() + have, target - have);
    if (got < target - have)
      fail(context, "truncated data: the header (", dimensions_text(), ") describes ", expected,
           " bytes of data, but the file holds only ", have + got);
  }
  unsigned char extra = 0;
  if (source.read(&extra, 1) != 0)
    fail(context, "trailing garbage: the file has more data than the ", expected,
         " bytes its header (", dimensions_text(), ") describes");
  return result;
}

}  // namespace BNORM_IDX_NAMESPACE
}  // namespace detail

inline namespace BNORM_IDX_NAMESPACE {

// Images of an unsigned-byte IDX file with 3 dimensions (count, rows, columns), as a
// (rows * columns) x count matrix: one column per image, pixels in row-major order, each
// scaled to [0, 1] as T(byte) / T(255). For float this equals numpy's and PyTorch's
// astype(float32) / float32(255) bit for bit (a correctly rounded IEEE division).
template <class T>
Matrix<T> read_idx_images(const std::filesystem::path& path) {
  const detail::IdxBytes bytes =
      detail::read_idx_bytes(path, 3,
                             "an image file needs 3 (count, rows, columns); "
                             "is this a label file?");
  const auto count = static_cast<Index>(bytes.dimensions[0]);
  const Index features =
      static_cast<Index>(bytes.dimensions[1]) * static_cast<Index>(bytes.dimensions[2]);
  if (features == 0)
    detail::fail(detail::idx_context(path), "images of ", bytes.dimensions[1], " x ",
                 bytes.dimensions[2], " pixels are empty");
  // Image j's bytes are contiguous, exactly column j of a column-major matrix.
  const Eigen::Map<const Eigen::Matrix<unsigned char, Eigen::Dynamic, Eigen::Dynamic>> pixels(
      bytes.data.data(), features, count);
  // A true division, never a multiplication by 1/255, which rounds differently.
  return pixels.template cast<T>() / T(255);
}

// Labels of an unsigned-byte IDX file with 1 dimension (count), one per example.
inline Labels read_idx_labels(const std::filesystem::path& path) {
  const detail::IdxBytes bytes =
      detail::read_idx_bytes(path, 1, "a label file needs 1 (count); is this an image file?");
  return Eigen::Map<const Eigen::Matrix<unsigned char, Eigen::Dynamic, 1>>(
             bytes.data.data(), static_cast<Index>(bytes.data.size()))
      .cast<int>();
}

}  // namespace BNORM_IDX_NAMESPACE
}  // namespace bnorm
