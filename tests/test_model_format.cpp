// The model file's header and integrity checks (io/model_format.hpp): every failure class
// of the header, and damage anywhere in a file, byte by byte and length by length.
#include <bnorm/io/model_format.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/model_files.hpp"

using namespace bnorm;
using namespace bnorm_test;

namespace {

std::string u32_bytes(std::uint32_t value) {
  ByteWriter writer;
  writer.u32(value);
  return writer.take();
}

// Loads `bytes` and sorts the outcome: loaded, rejected with bnorm::Error, or anything else
// (another exception type: a bug). Sanitizer builds turn memory errors into crashes.
struct Outcomes {
  int loaded = 0, rejected = 0, other = 0;
  std::string first_other;

  template <class T>
  void load(const std::string& bytes, const std::string& label) {
    const std::string message = error_message([&] { load_bytes<T>(bytes); });
    if (message == "<no exception>") ++loaded;
    else if (message.rfind("<", 0) != 0) ++rejected;
    else if (other++ == 0) first_other = label + ": " + message;
  }
  int total() const { return loaded + rejected + other; }
};

}  // namespace

TEST_CASE_TEMPLATE("The header is laid out as docs/model_format.md says", T, float, double) {
  const std::string bytes = save_bytes(small_network<T>());
  REQUIRE(bytes.size() > detail::model_header_size);
  const std::string_view payload = std::string_view(bytes).substr(28);
  CHECK(bytes.substr(0, 8) == std::string("\x89" "BNORM\r\n", 8));
  CHECK(bytes.substr(8, 4) == u32_bytes(1));
  CHECK(bytes.substr(12, 4) == u32_bytes(sizeof(T) == 4 ? 1 : 2));
  ByteWriter size;
  size.u64(payload.size());
  CHECK(bytes.substr(16, 8) == size.bytes());
  CHECK(bytes.substr(24, 4) == u32_bytes(crc32c(payload, crc32c(std::string_view(bytes).substr(0, 24)))));
  CHECK(payload[0] == 1);  // the network: a Sequential record
}

TEST_CASE_TEMPLATE("Every failure class of the header, with what and where", T, float, double) {
  using Other = std::conditional_t<std::is_same_v<T, float>, double, float>;
  const std::string valid = save_bytes(small_network<T>());
  const std::string payload = valid.substr(28);
  const std::uint32_t tag = sizeof(T) == 4 ? 1 : 2;

  CHECK_ERROR_MENTIONS(load_bytes<T>(""), "model stream", "is empty");
  CHECK_ERROR_MENTIONS(load_bytes<T>(valid.substr(0, 10)), "model stream", "truncated", "10 bytes",
                       "28-byte header");
  std::string magic = valid;
  magic[1] = 'X';
  CHECK_ERROR_MENTIONS(load_bytes<T>(magic), "not a bnorm model file", "wrong magic number",
                       "89 58 4E 4F 52 4D 0D 0A", "expected 89 42 4E 4F 52 4D 0D 0A");
  std::string text_mode = valid;  // a transfer that turned \r\n into \n
  text_mode.erase(6, 1);
  CHECK_ERROR_MENTIONS(load_bytes<T>(text_mode), "wrong magic number");
  CHECK_ERROR_MENTIONS(load_bytes<T>("PK\x03\x04 this is a zip file, not a model"), "wrong magic number");

  CHECK_ERROR_MENTIONS(load_bytes<T>(model_file(payload, tag, 3)),
                       "format version 3 is newer than this bnorm can read (up to 2)", "newer bnorm");
  // A version 1 file (what bnorm wrote before version 2) loads; version 2 is written, and
  // read, only for a network with a registered layer (test_layer_registry.cpp), so that
  // every network has one encoding.
  CHECK(load_bytes<T>(model_file(payload, tag, 1)).size() == load_bytes<T>(valid).size());
  CHECK_ERROR_MENTIONS(load_bytes<T>(model_file(payload, tag, 2)), "format version 2 but no registered layer",
                       "corrupt");
  CHECK_ERROR_MENTIONS(load_bytes<T>(model_file(payload, tag, 0xFFFFFFFFu)), "format version 4294967295 is newer");
  CHECK_ERROR_MENTIONS(load_bytes<T>(model_file(payload, tag, 0)), "header", "invalid format version 0",
                       "at byte 8");
  CHECK_ERROR_MENTIONS(load_bytes<T>(model_file(payload, 3)), "unknown scalar type tag 3", "at byte 12");
  CHECK_ERROR_MENTIONS(load_bytes<Other>(valid), "wrong scalar type", "was asked for");

  const std::string announced = "announces a " + std::to_string(payload.size()) + "-byte payload";
  const std::string follow = "only " + std::to_string(payload.size() - 1) + " bytes follow";
  CHECK_ERROR_MENTIONS(load_bytes<T>(valid.substr(0, valid.size() - 1)), std::string("truncated"), announced, follow);
  CHECK_ERROR_MENTIONS(load_bytes<T>(valid.substr(0, 28)), "truncated", "only 0 bytes follow");
  std::string huge = valid;  // a payload size no memory could hold: nothing is allocated for it
  huge.replace(16, 8, std::string(8, '\xFF'));
  CHECK_ERROR_MENTIONS(load_bytes<T>(huge), "truncated", "18446744073709551615-byte payload");

  std::string corrupt = valid;
  corrupt[40] ^= 0x04;
  CHECK_ERROR_MENTIONS(load_bytes<T>(corrupt), "model stream", "checksum mismatch", "stored 0x",
                       "computed 0x", "corrupt");
  std::string corrupt_header = valid;  // the checksum covers the header too
  corrupt_header[16] ^= 0x01;
  corrupt_header += '\0';
  CHECK_ERROR_MENTIONS(load_bytes<T>(corrupt_header), "checksum mismatch");
}

TEST_CASE_TEMPLATE("Flipping any byte or any single bit of a model file makes loading fail", T, float, double) {
  const std::string valid = save_bytes(small_network<T>());
  Outcomes outcomes;
  for (std::size_t i = 0; i < valid.size(); ++i)
    for (const unsigned mask : {0xFFu, 0x01u, 0x02u, 0x04u, 0x08u, 0x10u, 0x20u, 0x40u, 0x80u}) {
      std::string damaged = valid;
      damaged[i] = static_cast<char>(static_cast<unsigned char>(damaged[i]) ^ mask);
      outcomes.load<T>(damaged, "byte " + std::to_string(i) + " ^ " + std::to_string(mask));
    }
  INFO(outcomes.first_other);
  CHECK(outcomes.rejected == outcomes.total());
  CHECK(outcomes.total() == 9 * static_cast<int>(valid.size()));
  MESSAGE(outcomes.total(), " damaged ", std::string(sizeof(T) == 4 ? "float" : "double"),
          " files (", valid.size(), " bytes x 9 flips), all rejected");
}

TEST_CASE_TEMPLATE("Truncating a model file at any length makes loading fail", T, float, double) {
  TempDir folder;
  const std::string valid = save_bytes(small_network<T>());
  int rejected = 0;
  for (std::size_t length = 0; length < valid.size(); ++length) {
    CAPTURE(length);
    const std::string prefix = valid.substr(0, length);
    CHECK_THROWS_AS(load_bytes<T>(prefix), Error);
    write_file(folder / "net.bnorm", prefix);
    CHECK_THROWS_AS(load<T>(folder / "net.bnorm"), Error);
    // The same with the header made consistent: the parser itself must notice.
    if (length > detail::model_header_size) {
      CHECK_ERROR_MENTIONS(load_bytes<T>(with_valid_checksum(prefix)), "truncated");
      ++rejected;
    }
    rejected += 2;
  }
  MESSAGE(rejected, " truncated ", std::string(sizeof(T) == 4 ? "float" : "double"), " files, all rejected");
}

TEST_CASE_TEMPLATE("Behind a forged checksum, every value of every payload byte is parsed safely", T, float, double) {
  // The checksum stops random damage; a file with a recomputed checksum reaches the parser,
  // which must then reject what is invalid and never read out of bounds or over-allocate.
  const std::string valid = save_bytes(small_network<T>());
  Outcomes outcomes;
  for (std::size_t i = detail::model_header_size; i < valid.size(); ++i)
    for (int value = 0; value < 256; ++value) {
      if (static_cast<unsigned char>(valid[i]) == value) continue;
      std::string damaged = valid;
      damaged[i] = static_cast<char>(value);
      outcomes.load<T>(with_valid_checksum(damaged),
                       "byte " + std::to_string(i) + " = " + std::to_string(value));
    }
  INFO(outcomes.first_other);
  CHECK(outcomes.other == 0);
  CHECK(outcomes.rejected > 0);
  CHECK(outcomes.loaded > 0);  // a changed weight is still a valid model
  MESSAGE(outcomes.total(), " forged ", std::string(sizeof(T) == 4 ? "float" : "double"), " files: ",
          outcomes.rejected, " rejected, ", outcomes.loaded, " valid (changed values)");
}
