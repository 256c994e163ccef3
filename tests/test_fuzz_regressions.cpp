// bnorm-test-needs: bnorm::safetensors
// The model-file, checkpoint and safetensors readers on every committed fuzz input (fuzz/
// regressions/ and fuzz/corpus/), through the fuzzers' own targets, under the unit stage's
// AddressSanitizer and UndefinedBehaviorSanitizer (support/fuzz_replay.hpp). The ONNX reader's
// are in test_fuzz_regressions_onnx.cpp.
#include "../fuzz/checkpoint_target.hpp"
#include "../fuzz/load_target.hpp"
#include "../fuzz/safetensors_target.hpp"
#include "support/fuzz_replay.hpp"

#include <doctest/doctest.h>

TEST_CASE("Fuzz inputs: model files") {
  CHECK(bnorm_test::replay_fuzz_inputs("load", bnorm_fuzz::load_target::run) > 0);
}

TEST_CASE("Fuzz inputs: checkpoints") {
  CHECK(bnorm_test::replay_fuzz_inputs("checkpoint", bnorm_fuzz::checkpoint_target::run) > 0);
}

TEST_CASE("Fuzz inputs: safetensors files") {
  CHECK(bnorm_test::replay_fuzz_inputs("safetensors", bnorm_fuzz::safetensors_target::run) > 0);
}
