// CRC-32C (Castagnoli), the checksum of bnorm model files.
//
// Chosen over the CRC-32 of zip and PNG for its larger minimum Hamming distance at these
// lengths (Castagnoli, Braeuer & Herrmann 1993). Like every CRC it detects each single-bit
// error, each burst of up to 32 bits and, with the generator polynomial below, any odd
// number of bit errors. It is a guard against corruption, not against forgery.
//
// Reflected form, polynomial 0x82F63B78, initial value and final XOR 0xFFFFFFFF; the check
// value of the ASCII string "123456789" is 0xE3069283. The table is computed at compile time.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace bnorm {

namespace detail {

inline constexpr std::uint32_t crc32c_polynomial = 0x82F63B78u;

// table[b] is the CRC register after shifting byte b through it: eight steps of the
// bitwise algorithm, each dividing by the polynomial when the low bit is set.
constexpr std::array<std::uint32_t, 256> make_crc32c_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t byte = 0; byte < 256; ++byte) {
    std::uint32_t crc = byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? crc32c_polynomial : 0u);
    table[byte] = crc;
  }
  return table;
}

inline constexpr std::array<std::uint32_t, 256> crc32c_table = make_crc32c_table();

}  // namespace detail

// The CRC-32C of `bytes`. Chains: crc32c(b, crc32c(a)) == crc32c(a followed by b).
constexpr std::uint32_t crc32c(std::string_view bytes, std::uint32_t previous = 0) {
  std::uint32_t crc = ~previous;
  for (const char c : bytes)
    crc = (crc >> 8) ^ detail::crc32c_table[(crc ^ static_cast<std::uint8_t>(c)) & 0xFFu];
  return ~crc;
}

static_assert(crc32c("123456789") == 0xE3069283u, "CRC-32C check value");

}  // namespace bnorm
