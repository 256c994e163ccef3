// Tests of data/idx.hpp: round trips, exact scaling, and a clear bnorm::Error for every kind
// of malformed file, plain and gzip-compressed.
#include <bnorm/data/idx.hpp>

#include <doctest/doctest.h>

#include "support/errors.hpp"
#include "support/idx_files.hpp"

#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>

using namespace bnorm_test;

namespace {

// Reading `path` with `read` throws a bnorm::Error whose message names the file and
// contains every one of `key_words`.
template <class Read>
void check_error(const std::filesystem::path& path, Read read,
                 std::initializer_list<std::string_view> key_words) {
  const std::string message = error_message([&] { read(path); });
  INFO("message: ", message);
  CHECK_MESSAGE(message.find(path.string()) != std::string::npos, "missing the file name");
  for (std::string_view word : key_words)
    CHECK_MESSAGE(message.find(word) != std::string::npos, "missing: ", word);
}

const auto read_images = [](const std::filesystem::path& path) {
  return bnorm::read_idx_images<float>(path);
};
const auto read_labels = [](const std::filesystem::path& path) {
  return bnorm::read_idx_labels(path);
};

// Two 2 x 3 images, pixels 0..11: image j is column j, its pixels in row-major order.
const Bytes two_images = idx_file({2, 2, 3}, counting_bytes(12));

// A label file of 3 labels {7, 0, 9}, gzip-compressed by Python's gzip.compress(mtime=0):
// a fixed input that does not depend on the zlib being tested.
const Bytes gzipped_labels = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x63,
                              0x60, 0xe0, 0x60, 0x64, 0x60, 0x60, 0x60, 0x66, 0x67, 0xe0, 0x04,
                              0x00, 0xa5, 0x12, 0xd3, 0x72, 0x0b, 0x00, 0x00, 0x00};

}  // namespace

TEST_CASE("images round trip: one column per image, pixels in row-major order") {
  TempDir dir;
  const auto path = write_bytes(dir / "images", two_images);
  const bnorm::Matrix<float> images = bnorm::read_idx_images<float>(path);
  REQUIRE(images.rows() == 6);
  REQUIRE(images.cols() == 2);
  for (bnorm::Index j = 0; j < 2; ++j)
    for (bnorm::Index i = 0; i < 6; ++i)
      CHECK(images(i, j) == static_cast<float>(6 * j + i) / 255.0f);
}

TEST_CASE("labels round trip") {
  TempDir dir;
  const auto path = write_bytes(dir / "labels", idx_file({4}, {3, 0, 255, 9}));
  const bnorm::Labels labels = bnorm::read_idx_labels(path);
  REQUIRE(labels.size() == 4);
  CHECK(labels(0) == 3);
  CHECK(labels(1) == 0);
  CHECK(labels(2) == 255);
  CHECK(labels(3) == 9);
}

TEST_CASE("an empty set reads as zero columns") {
  TempDir dir;
  const auto path = write_bytes(dir / "images", idx_file({0, 28, 28}, {}));
  const bnorm::Matrix<float> images = bnorm::read_idx_images<float>(path);
  CHECK(images.rows() == 784);
  CHECK(images.cols() == 0);
}

TEST_CASE("pixels scale to [0, 1] exactly as numpy's astype(float32) / float32(255)") {
  TempDir dir;
  const auto path = write_bytes(dir / "images", idx_file({1, 16, 16}, counting_bytes(256)));
  const bnorm::Matrix<float> as_float = bnorm::read_idx_images<float>(path);
  const bnorm::Matrix<double> as_double = bnorm::read_idx_images<double>(path);
  for (int byte = 0; byte < 256; ++byte) {
    // volatile: the reference quotient is a real float division at run time.
    volatile float numerator = static_cast<float>(byte);
    const float expected = numerator / 255.0f;
    const float actual = as_float(byte, 0);
    CHECK(std::memcmp(&expected, &actual, sizeof(float)) == 0);
    CHECK(as_double(byte, 0) == static_cast<double>(byte) / 255.0);
  }
  CHECK(as_float(0, 0) == 0.0f);
  CHECK(as_float(255, 0) == 1.0f);
}

TEST_CASE("missing and unreadable files") {
  TempDir dir;
  check_error(dir / "absent", read_images, {"no such file"});
  check_error(dir / "absent", read_labels, {"no such file"});
  check_error(dir.path(), read_images, {"is a directory"});
}

TEST_CASE("malformed headers") {
  TempDir dir;
  check_error(write_bytes(dir / "empty", {}), read_images, {"is empty"});
  check_error(write_bytes(dir / "short", {0, 0, 8}), read_images, {"truncated header"});
  check_error(write_bytes(dir / "text", {'h', 'e', 'l', 'l', 'o', '\n'}), read_labels,
              {"bad magic number", "0x68656c6c"});
  check_error(write_bytes(dir / "float", idx_file({1}, {0, 0, 0, 0}, 0x0D)), read_labels,
              {"unsupported type code 0x0d", "32-bit float", "0x08"});
  check_error(write_bytes(dir / "unknown", idx_file({1}, {0}, 0x42)), read_labels,
              {"unknown type code 0x42"});
  check_error(write_bytes(dir / "cut_dimensions", Bytes{0, 0, 8, 3, 0, 0, 0, 1, 0, 0}), read_images,
              {"truncated header", "dimension 2 of 3"});
}

TEST_CASE("images need 3 dimensions and labels 1") {
  TempDir dir;
  const auto labels = write_bytes(dir / "labels", idx_file({2}, {1, 2}));
  const auto images = write_bytes(dir / "images", two_images);
  check_error(labels, read_images,
              {"wrong number of dimensions", "says 1", "needs 3", "label file?"});
  check_error(images, read_labels,
              {"wrong number of dimensions", "says 3", "needs 1", "image file?"});
}

TEST_CASE("zero-sized images are rejected") {
  TempDir dir;
  check_error(write_bytes(dir / "images", idx_file({3, 0, 28}, {})), read_images,
              {"0 x 28", "empty"});
}

TEST_CASE("truncated data and trailing garbage") {
  TempDir dir;
  Bytes short_images = two_images;
  short_images.pop_back();
  check_error(write_bytes(dir / "short", short_images), read_images,
              {"truncated data", "2 x 2 x 3", "12 bytes", "only 11"});
  Bytes long_images = two_images;
  long_images.push_back(0);
  check_error(write_bytes(dir / "long", long_images), read_images, {"trailing garbage", "12 bytes"});
}

TEST_CASE("a header claiming huge sizes fails without allocating them") {
  TempDir dir;
  // Would overflow 64 bits.
  check_error(write_bytes(dir / "overflow", idx_file({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {})),
              read_images, {"absurd size", "4294967295 x 4294967295 x 4294967295"});
  // Fits in 64 bits (a few terabytes), but the file is tiny: read what is there, then fail.
  check_error(write_bytes(dir / "huge", idx_file({0xFFFFFFFF, 28, 28}, counting_bytes(100))),
              read_images, {"truncated data", "only 100"});
  check_error(write_bytes(dir / "huge_labels", idx_file({0xFFFFFFFF}, counting_bytes(5))),
              read_labels, {"truncated data", "only 5"});
}

#ifdef BNORM_WITH_ZLIB

TEST_CASE("gzip: a fixed gzip file from another compressor reads as its content") {
  TempDir dir;
  const bnorm::Labels labels =
      bnorm::read_idx_labels(write_bytes(dir / "labels.gz", gzipped_labels));
  REQUIRE(labels.size() == 3);
  CHECK(labels(0) == 7);
  CHECK(labels(1) == 0);
  CHECK(labels(2) == 9);
}

TEST_CASE("gzip: round trip, detected by the magic bytes whatever the name") {
  TempDir dir;
  const Bytes big = idx_file({300, 28, 28}, counting_bytes(300 * 784, 17));
  const bnorm::Matrix<float> plain = read_images(write_bytes(dir / "plain", big));
  const bnorm::Matrix<float> compressed = read_images(write_bytes(dir / "no_extension", gzip(big)));
  CHECK(compressed.cols() == 300);
  CHECK(compressed == plain);
}

TEST_CASE("gzip: concatenated members read as one stream, as gunzip does") {
  TempDir dir;
  const Bytes whole = idx_file({4}, {1, 2, 3, 4});
  Bytes members = gzip(Bytes(whole.begin(), whole.begin() + 9));
  const Bytes rest = gzip(Bytes(whole.begin() + 9, whole.end()));
  members.insert(members.end(), rest.begin(), rest.end());
  const bnorm::Labels labels = read_labels(write_bytes(dir / "labels.gz", members));
  CHECK(labels == (bnorm::Labels(4) << 1, 2, 3, 4).finished());
}

TEST_CASE("gzip: corrupt, truncated and padded streams") {
  TempDir dir;
  const Bytes compressed = gzip(two_images);

  Bytes corrupt = compressed;
  for (std::size_t i = 12; i < corrupt.size() - 8; ++i) corrupt[i] ^= 0x5a;
  check_error(write_bytes(dir / "corrupt.gz", corrupt), read_images, {"corrupt gzip stream"});

  Bytes bad_checksum = compressed;
  bad_checksum[bad_checksum.size() - 6] ^= 0xff;  // inside the CRC-32
  check_error(write_bytes(dir / "checksum.gz", bad_checksum), read_images,
              {"corrupt gzip stream", "check"});

  const Bytes truncated(compressed.begin(), compressed.end() - 5);
  check_error(write_bytes(dir / "truncated.gz", truncated), read_images, {"truncated gzip"});

  Bytes padded = compressed;
  padded.insert(padded.end(), {'j', 'u', 'n', 'k'});
  check_error(write_bytes(dir / "padded.gz", padded), read_images,
              {"trailing garbage after the gzip stream"});
  // One byte is too short for zlib to see it is not a gzip header.
  Bytes one_more = compressed;
  one_more.push_back(0);
  check_error(write_bytes(dir / "one_more.gz", one_more), read_images,
              {"trailing garbage after the gzip stream"});
}

TEST_CASE("gzip: malformed IDX content is reported as for a plain file") {
  TempDir dir;
  Bytes short_images = two_images;
  short_images.pop_back();
  check_error(write_bytes(dir / "short.gz", gzip(short_images)), read_images,
              {"truncated data", "only 11"});
  Bytes long_images = two_images;
  long_images.push_back(0);
  check_error(write_bytes(dir / "long.gz", gzip(long_images)), read_images, {"trailing garbage"});
  check_error(write_bytes(dir / "huge.gz", gzip(idx_file({0xFFFFFFFF, 28, 28}, {1, 2, 3}))),
              read_images, {"truncated data", "only 3"});
  check_error(write_bytes(dir / "labels.gz", gzip(idx_file({2}, {1, 2}))), read_images,
              {"wrong number of dimensions"});
}

#else

TEST_CASE("without zlib, a gzip file names the target that reads it") {
  TempDir dir;
  check_error(write_bytes(dir / "labels.gz", gzipped_labels), read_labels, {"gzip", "bnorm::gzip"});
}

#endif
