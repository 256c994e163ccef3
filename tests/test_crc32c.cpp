// crc32c (io/crc32c.hpp) against the published check values.
#include <bnorm/io/crc32c.hpp>

#include <doctest/doctest.h>

#include <string>

using namespace bnorm;

TEST_CASE("CRC-32C check values (the CRC catalogue and RFC 3720, appendix B.4)") {
  CHECK(crc32c("") == 0u);
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(crc32c(std::string(32, '\xFF')) == 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) {
    ascending += static_cast<char>(i);
    descending += static_cast<char>(31 - i);
  }
  CHECK(crc32c(ascending) == 0x46DD794Eu);
  CHECK(crc32c(descending) == 0x113FDB5Cu);
}

TEST_CASE("CRC-32C chains over pieces and notices every single-bit change") {
  const std::string text = "batch normalization keeps activations in range";
  for (std::size_t cut = 0; cut <= text.size(); ++cut)
    CHECK(crc32c(text.substr(cut), crc32c(text.substr(0, cut))) == crc32c(text));
  const std::uint32_t reference = crc32c(text);
  int detected = 0;
  for (std::size_t i = 0; i < text.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      std::string changed = text;
      changed[i] = static_cast<char>(changed[i] ^ (1 << bit));
      detected += crc32c(changed) != reference;
    }
  CHECK(detected == static_cast<int>(8 * text.size()));
}
