// The bytes of a model file: a fixed header, then the network as one Sequential record.
// docs/model_format.md is the specification; this is its implementation.
//
//   offset  size  field
//   0       8     magic number 89 42 4E 4F 52 4D 0D 0A ("\x89BNORM\r\n")
//   8       4     format version, u32 (this bnorm reads 1 and 2; writes 2 only for a
//                 network with a registered layer of a user's, 1 otherwise)
//   12      4     scalar type, u32: 1 = float (IEEE binary32), 2 = double (binary64)
//   16      8     payload size in bytes, u64
//   24      4     CRC-32C of bytes 0-23 followed by the payload, u32
//   28      ...   payload: the Sequential record (layer_codec.hpp)
// Every number is little-endian.
//
// Reading checks, in order: header present, magic, version, scalar type, payload complete,
// checksum; only then is the payload parsed. So a corrupt file is reported as corrupt
// before any of its sizes is believed, and the parser still checks every size against the
// bytes that remain, for files whose checksum was forged (and for the fuzzer, which forges
// it).
#pragma once

#include "../core/error.hpp"
#include "../model/sequential.hpp"
#include "crc32c.hpp"
#include "layer_codec.hpp"
#include "little_endian.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iomanip>
#include <istream>
#include <sstream>
#include <string>
#include <string_view>

namespace bnorm::detail {

inline constexpr std::string_view model_magic{"\x89" "BNORM\r\n", 8};
// Version 2 added the registered-layer record (tag 10); a file without one is written as
// version 1, so that older readers still read it.
inline constexpr std::uint32_t model_format_version = 2;
inline constexpr std::size_t model_checksum_offset = 24;
inline constexpr std::size_t model_header_size = 28;

template <FileScalar T>
inline constexpr std::uint32_t scalar_type_tag = sizeof(T) == 4 ? 1 : 2;

inline std::string scalar_type_name(std::uint32_t tag) {
  return tag == 1 ? "float (32-bit)" : tag == 2 ? "double (64-bit)" : "unknown";
}

inline std::string hex_bytes(std::string_view bytes) {
  std::ostringstream text;
  text << std::hex << std::uppercase << std::setfill('0');
  for (std::size_t i = 0; i < bytes.size(); ++i)
    text << (i ? " " : "") << std::setw(2) << int(static_cast<std::uint8_t>(bytes[i]));
  return text.str();
}

// The checksum stored at model_checksum_offset: over the header before it, then the payload.
inline std::uint32_t model_checksum(std::string_view header, std::string_view payload) {
  return crc32c(payload, crc32c(header.substr(0, model_checksum_offset)));
}

// The whole file for `net`. Throws bnorm::Error, before producing anything, if a layer is
// neither built in nor registered (layer_registry.hpp).
template <FileScalar T>
std::string encode_model(const Sequential<T>& net) {
  ByteWriter payload;
  payload.u8(static_cast<std::uint8_t>(LayerTag::sequential));
  LayerCodec<Sequential<T>>::encode(payload, net, "");
  ByteWriter file;
  file.raw(model_magic);
  file.u32(holds_registered_layer(net) ? 2 : 1);
  file.u32(scalar_type_tag<T>);
  file.u64(payload.size());
  file.u32(model_checksum(file.bytes(), payload.bytes()));
  file.raw(payload.bytes());
  return file.take();
}

// Reads one model from `in`, which is left just after it. `source` starts every message
// ("model file 'net.bnorm'"). Memory grows with the bytes actually read, never with what
// the header claims.
template <FileScalar T>
Sequential<T> read_model(std::istream& in, const std::string& source) {
  std::string header(model_header_size, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header.size()));
  const auto header_read = static_cast<std::size_t>(in.gcount());
  if (header_read == 0) fail(source, ": is empty; a model file starts with a ", model_header_size, "-byte header");
  if (header_read < model_header_size)
    fail(source, ": truncated: ", header_read, " bytes, fewer than the ", model_header_size,
         "-byte header of a model file");
  if (std::string_view(header).substr(0, model_magic.size()) != model_magic)
    fail(source, ": not a bnorm model file: wrong magic number ",
         hex_bytes(std::string_view(header).substr(0, model_magic.size())), " (expected ",
         hex_bytes(model_magic), ")");

  ByteReader fields(header, source);
  fields.set_location("header");
  fields.skip(model_magic.size(), "magic number");
  const std::uint32_t version = fields.u32("format version");
  if (version == 0) fields.fail_at(8, "invalid format version 0");
  if (version > model_format_version)
    fail(source, ": format version ", version, " is newer than this bnorm can read (up to ",
         model_format_version, "); load it with a newer bnorm");
  const std::uint32_t scalar_type = fields.u32("scalar type");
  if (scalar_type != 1 && scalar_type != 2)
    fields.fail_at(12, "unknown scalar type tag ", scalar_type, " (1 = float, 2 = double)");
  if (scalar_type != scalar_type_tag<T>)
    fail(source, ": wrong scalar type: the file holds ", scalar_type_name(scalar_type),
         " values but ", scalar_type_name(scalar_type_tag<T>), " was asked for; load it as ",
         scalar_type == 1 ? "bnorm::load<float>" : "bnorm::load<double>");
  const std::uint64_t payload_size = fields.u64("payload size");
  const std::uint32_t stored_checksum = fields.u32("checksum");

  // Chunks that at most double what has arrived, so a huge claimed size costs nothing.
  std::string payload;
  while (payload.size() < payload_size) {
    const std::size_t old_size = payload.size();
    const auto chunk = static_cast<std::size_t>(std::min<std::uint64_t>(
        payload_size - old_size, std::max<std::size_t>(std::size_t{1} << 16, old_size)));
    payload.resize(old_size + chunk);
    in.read(payload.data() + old_size, static_cast<std::streamsize>(chunk));
    const auto got = static_cast<std::size_t>(in.gcount());
    if (got < chunk)
      fail(source, ": truncated: the header announces a ", payload_size,
           "-byte payload but only ", old_size + got, " bytes follow it");
  }

  const std::uint32_t checksum = model_checksum(header, payload);
  if (checksum != stored_checksum) {
    std::ostringstream values;
    values << std::hex << std::uppercase << "stored 0x" << stored_checksum << ", computed 0x"
           << checksum;
    fail(source, ": checksum mismatch (", values.str(),
         "): the file is corrupt; it was damaged after it was written");
  }

  ByteReader reader(payload, source, model_header_size);
  const std::uint8_t tag = reader.u8("network tag");
  if (tag != static_cast<std::uint8_t>(LayerTag::sequential))
    reader.fail_at(0, "the payload must start with a Sequential record (tag 1), found tag ", int(tag));
  Sequential<T> net = LayerCodec<Sequential<T>>::decode(reader, "", 1);
  reader.set_location("");
  if (!reader.at_end()) reader.fail(reader.remaining(), " bytes left over after the network");
  // One encoding per network (the fuzzer saves what loads and compares the bytes): version 2
  // exactly when a registered layer is present.
  if ((version >= 2) != holds_registered_layer(net))
    fail(source, ": format version ", version,
         version >= 2 ? " but no registered layer (tag 10), which bnorm writes as version 1"
                      : " holds a registered layer (tag 10), which needs version 2",
         "; the file is corrupt");
  return net;
}

}  // namespace bnorm::detail
