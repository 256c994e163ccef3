// Asserting that a statement throws bnorm::Error whose message mentions given words.
#pragma once

#include <bnorm/core/error.hpp>
#include <doctest/doctest.h>

#include <string>
#include <string_view>

namespace bnorm_test {

// The message of the bnorm::Error that `statement` throws, or a marker saying it did not.
template <class Statement>
std::string error_message(Statement&& statement) {
  try {
    statement();
  } catch (const bnorm::Error& error) {
    return error.what();
  } catch (const std::exception& error) {
    return std::string("<not a bnorm::Error: ") + error.what() + ">";
  }
  return "<no exception>";
}

}  // namespace bnorm_test

// CHECK_ERROR_MENTIONS(net.forward(x, Mode::train), "layer 1", "784 x batch");
#define CHECK_ERROR_MENTIONS(statement, ...)                                                 \
  do {                                                                                       \
    const std::string bnorm_message_ = bnorm_test::error_message([&] { (void)(statement); }); \
    INFO("message: ", bnorm_message_);                                                       \
    CHECK(bnorm_message_.rfind("<", 0) != 0);                                                \
    for (std::string_view bnorm_word_ : {__VA_ARGS__})                                       \
      CHECK_MESSAGE(bnorm_message_.find(bnorm_word_) != std::string::npos,                   \
                    "missing: ", bnorm_word_);                                               \
  } while (0)
