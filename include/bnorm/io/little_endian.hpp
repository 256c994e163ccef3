// Fixed little-endian encoding of integers and IEEE-754 floats: the byte order of every
// bnorm model file, whatever the byte order of the machine that writes or reads it.
//
// ByteWriter appends to a byte string. ByteReader reads from one and checks every read
// against the bytes that remain: it never reads past the end, and a size read from the data
// is only trusted once the bytes it announces are known to be there (take_count), so a
// corrupt size can never make a caller allocate more than the input could fill.
#pragma once

#include "../core/error.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace bnorm {

// The floating-point types a model file can hold: IEEE-754 binary32 and binary64.
template <class T>
concept FileScalar = (std::same_as<T, float> || std::same_as<T, double>) &&
                     std::numeric_limits<T>::is_iec559;

class ByteWriter {
 public:
  void u8(std::uint8_t value) { bytes_.push_back(static_cast<char>(value)); }
  void u32(std::uint32_t value) { put(value, 4); }
  void u64(std::uint64_t value) { put(value, 8); }
  void i64(std::int64_t value) { put(static_cast<std::uint64_t>(value), 8); }
  void boolean(bool value) { u8(value ? 1 : 0); }

  // The IEEE bits, so every value (NaN payloads, -0, infinities) survives bit-exactly.
  template <FileScalar T>
  void scalar(T value) {
    if constexpr (sizeof(T) == 4) u32(std::bit_cast<std::uint32_t>(value));
    else u64(std::bit_cast<std::uint64_t>(value));
  }
  template <FileScalar T>
  void scalars(const T* values, std::size_t count) {
    if (count == 0) return;  // values may be null (an empty Eigen vector)
    if constexpr (std::endian::native == std::endian::little)  // the bytes are already in order
      bytes_.append(reinterpret_cast<const char*>(values), count * sizeof(T));
    else
      for (std::size_t i = 0; i < count; ++i) scalar(values[i]);
  }

  void raw(std::string_view bytes) { bytes_.append(bytes); }

  std::size_t size() const { return bytes_.size(); }
  const std::string& bytes() const { return bytes_; }
  std::string take() { return std::move(bytes_); }

 private:
  void put(std::uint64_t value, int width) {
    for (int i = 0; i < width; ++i) bytes_.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
  }

  std::string bytes_;
};

class ByteReader {
 public:
  // `source` starts every error message ("model file 'net.bnorm'"); `first_offset` is the
  // position of bytes[0] in that source, so messages give offsets in the whole file.
  ByteReader(std::string_view bytes, std::string source, std::size_t first_offset = 0)
      : bytes_(bytes), source_(std::move(source)), first_offset_(first_offset) {}

  std::uint8_t u8(std::string_view what) {
    need(1, what);
    return static_cast<std::uint8_t>(bytes_[position_++]);
  }
  std::uint32_t u32(std::string_view what) { return static_cast<std::uint32_t>(get(4, what)); }
  std::uint64_t u64(std::string_view what) { return get(8, what); }
  std::int64_t i64(std::string_view what) { return static_cast<std::int64_t>(get(8, what)); }
  // Strict: a byte other than 0 or 1 is corruption, not "true".
  bool boolean(std::string_view what) {
    const std::size_t at = position_;
    const std::uint8_t value = u8(what);
    if (value > 1) fail_at(at, what, " must be 0 or 1, found ", int(value));
    return value == 1;
  }

  void skip(std::size_t count, std::string_view what) {
    need(count, what);
    position_ += count;
  }

  template <FileScalar T>
  T scalar(std::string_view what) {
    if constexpr (sizeof(T) == 4) return std::bit_cast<T>(u32(what));
    else return std::bit_cast<T>(u64(what));
  }
  template <FileScalar T>
  void scalars(T* values, std::size_t count, std::string_view what) {
    need_items(count, sizeof(T), what);
    if (count == 0) return;  // values may be null (an empty Eigen vector)
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(values, bytes_.data() + position_, count * sizeof(T));
      position_ += count * sizeof(T);
    } else {
      for (std::size_t i = 0; i < count; ++i) values[i] = scalar<T>(what);
    }
  }

  // A count read from the data (a u64), accepted only if count * bytes_each bytes remain:
  // the caller may then allocate for `count` items. minimum > 0 rejects smaller counts.
  std::size_t take_count(std::string_view what, std::size_t bytes_each, std::uint64_t minimum = 0) {
    const std::size_t at = position_;
    const std::uint64_t count = u64(what);
    if (count < minimum) fail_at(at, what, " must be at least ", minimum, ", found ", count);
    if (bytes_each > 0 && count > remaining() / bytes_each)
      fail_at(at, what, " is ", count, ", which needs ", count, " x ", bytes_each,
              " bytes, but only ", remaining(), " bytes remain: the data is truncated or corrupt");
    return static_cast<std::size_t>(count);
  }

  // A count of events kept as an i64 (num_batches_tracked, a step count): from 0 up to one
  // below the largest i64, since the next event increments it and a signed overflow is
  // undefined behaviour.
  long long counter(std::string_view what) {
    const std::size_t at = position_;
    const std::int64_t value = i64(what);
    if (value < 0) fail_at(at, what, " must be >= 0, found ", value);
    if (value == std::numeric_limits<std::int64_t>::max())
      fail_at(at, what, " is ", value, ", the largest i64: counting one more would overflow");
    return static_cast<long long>(value);
  }

  // Fails unless count items of bytes_each bytes remain.
  void need_items(std::size_t count, std::size_t bytes_each, std::string_view what) {
    if (bytes_each > 0 && count > remaining() / bytes_each)
      fail_at(position_, "truncated: ", what, " needs ", count, " x ", bytes_each,
              " bytes, but only ", remaining(), " bytes remain");
  }

  // Bytes already read, e.g. a name after skip().
  std::string_view view(std::size_t first, std::size_t count) const { return bytes_.substr(first, count); }

  std::size_t remaining() const { return bytes_.size() - position_; }
  bool at_end() const { return position_ == bytes_.size(); }
  // The index of the next byte to read, for fail_at().
  std::size_t position() const { return position_; }

  // Where the data being read belongs ("layer 2 (BatchNorm)"), shown in every message.
  void set_location(std::string location) { location_ = std::move(location); }
  const std::string& location() const { return location_; }
  const std::string& source() const { return source_; }

  // Throws bnorm::Error: "<source>: <location>: <parts> (at byte N)", N counted in the
  // whole source; fail_at() gives the position of the data at fault.
  template <class... Parts>
  [[noreturn]] void fail(const Parts&... parts) const {
    fail_at(position_, parts...);
  }
  template <class... Parts>
  [[noreturn]] void fail_at(std::size_t position, const Parts&... parts) const {
    detail::fail(source_, ": ", location_, location_.empty() ? "" : ": ", parts..., " (at byte ",
                 first_offset_ + position, ")");
  }

 private:
  void need(std::size_t count, std::string_view what) {
    if (count > remaining())
      fail_at(position_, "truncated: ", what, " needs ", count, " bytes but only ", remaining(),
              " remain");
  }
  std::uint64_t get(int width, std::string_view what) {
    need(static_cast<std::size_t>(width), what);
    std::uint64_t value = 0;
    for (int i = 0; i < width; ++i)
      value |= std::uint64_t(static_cast<std::uint8_t>(bytes_[position_ + i])) << (8 * i);
    position_ += static_cast<std::size_t>(width);
    return value;
  }

  std::string_view bytes_;
  std::size_t position_ = 0;
  std::string source_;
  std::string location_;
  std::size_t first_offset_;
};

}  // namespace bnorm
