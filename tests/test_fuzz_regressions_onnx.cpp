// bnorm-test-needs: bnorm::onnx
// The ONNX reader on every committed fuzz input (fuzz/regressions/onnx/, among them the Gemm
// and MatMul whose weight input was "", and fuzz/corpus/onnx/), through the fuzzer's own
// target, under the unit stage's sanitizers (support/fuzz_replay.hpp).
#include "../fuzz/onnx_target.hpp"
#include "support/fuzz_replay.hpp"

#include <doctest/doctest.h>

TEST_CASE("Fuzz inputs: ONNX files") {
  CHECK(!bnorm_test::fuzz_inputs("regressions", "onnx").empty());
  CHECK(bnorm_test::replay_fuzz_inputs("onnx", bnorm_fuzz::onnx_target::run) > 0);
}
