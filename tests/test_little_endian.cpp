// ByteWriter and ByteReader (io/little_endian.hpp): the byte order is fixed, and no read
// goes past the end or trusts a size the data cannot back.
#include <bnorm/io/little_endian.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"

#include <limits>

using namespace bnorm;

TEST_CASE("Little-endian whatever the machine: known bytes for known values") {
  ByteWriter writer;
  writer.u8(0xAB);
  writer.u32(0x01020304u);
  writer.u64(0x1122334455667788ull);
  writer.i64(-2);
  writer.boolean(true);
  writer.scalar(1.0f);
  writer.scalar(-2.0);
  const std::string expected("\xAB"
                             "\x04\x03\x02\x01"
                             "\x88\x77\x66\x55\x44\x33\x22\x11"
                             "\xFE\xFF\xFF\xFF\xFF\xFF\xFF\xFF"
                             "\x01"
                             "\x00\x00\x80\x3F"
                             "\x00\x00\x00\x00\x00\x00\x00\xC0",
                             34);
  CHECK(writer.bytes() == expected);

  ByteReader reader(writer.bytes(), "test");
  CHECK(reader.u8("a") == 0xAB);
  CHECK(reader.u32("b") == 0x01020304u);
  CHECK(reader.u64("c") == 0x1122334455667788ull);
  CHECK(reader.i64("d") == -2);
  CHECK(reader.boolean("e"));
  CHECK(reader.scalar<float>("f") == 1.0f);
  CHECK(reader.scalar<double>("g") == -2.0);
  CHECK(reader.at_end());
}

TEST_CASE("Floats keep their exact bits, NaN payloads included") {
  const float values[] = {std::bit_cast<float>(0x7FC00123u), std::bit_cast<float>(0xFF800001u), -0.0f,
                          std::numeric_limits<float>::denorm_min()};
  ByteWriter writer;
  writer.scalars(values, 4);
  float back[4];
  ByteReader reader(writer.bytes(), "test");
  reader.scalars(back, 4, "values");
  for (int i = 0; i < 4; ++i) CHECK(std::bit_cast<std::uint32_t>(back[i]) == std::bit_cast<std::uint32_t>(values[i]));
}

TEST_CASE("Reads past the end fail with the source, the location, the field and the byte") {
  ByteWriter writer;
  writer.u32(7);
  writer.u8(2);
  ByteReader reader(writer.bytes(), "model file 'x'", 100);
  reader.set_location("layer 3 (Dense)");
  CHECK_ERROR_MENTIONS(reader.u64("weight"), "model file 'x': layer 3 (Dense): truncated: weight needs 8 bytes but only 5 remain (at byte 100)");
  CHECK(reader.u32("count") == 7);
  CHECK_ERROR_MENTIONS(reader.boolean("flag"), "flag must be 0 or 1, found 2 (at byte 104)");
  CHECK(reader.at_end());
  float values[2];
  CHECK_ERROR_MENTIONS(reader.scalars(values, 2, "gamma"), "truncated: gamma needs 2 x 4 bytes, but only 0 bytes remain");
  CHECK_ERROR_MENTIONS(reader.skip(1, "magic"), "truncated: magic");
}

TEST_CASE("A count is trusted only when the bytes it announces are there") {
  ByteWriter writer;
  writer.u64(3);
  writer.u64(~std::uint64_t{0});
  writer.u64(0);
  writer.raw(std::string(24, '\0'));
  ByteReader reader(writer.bytes(), "test");
  CHECK(reader.take_count("three", 8) == 3);  // 32 bytes remain: 3 x 8 fit
  CHECK_ERROR_MENTIONS(reader.take_count("huge", 4), "huge is 18446744073709551615, which needs",
                       "only 32 bytes remain", "(at byte 8)");
  ByteReader again(writer.bytes(), "test");
  again.skip(16, "skip");
  CHECK_ERROR_MENTIONS(again.take_count("features", 1, 1), "features must be at least 1, found 0");
}

TEST_CASE("A counter is read from 0 up to one below the largest i64") {
  ByteWriter writer;
  for (const std::int64_t value : {std::int64_t{0}, std::numeric_limits<std::int64_t>::max() - 1,
                                   std::int64_t{-1}, std::numeric_limits<std::int64_t>::max()})
    writer.i64(value);
  ByteReader reader(writer.bytes(), "test");
  CHECK(reader.counter("steps") == 0);
  CHECK(reader.counter("steps") == std::numeric_limits<std::int64_t>::max() - 1);
  CHECK_ERROR_MENTIONS(reader.counter("steps"), "steps must be >= 0, found -1", "(at byte 16)");
  CHECK_ERROR_MENTIONS(reader.counter("steps"), "steps is 9223372036854775807",
                       "counting one more would overflow", "(at byte 24)");
}

TEST_CASE("Empty arrays, whose data pointer may be null, write and read nothing") {
  ByteWriter writer;
  writer.scalars(static_cast<const float*>(nullptr), 0);
  CHECK(writer.size() == 0);
  ByteReader reader(writer.bytes(), "test");
  reader.scalars(static_cast<double*>(nullptr), 0, "nothing");
  CHECK(reader.at_end());
}
