// One libFuzzer program for bnorm's four file readers; it fuzzes the one it is named after
// (a multi-call program: scripts/fuzz.sh links fuzz_load, fuzz_checkpoint, fuzz_safetensors
// and fuzz_onnx to it). The readers share nearly all of bnorm's code, which separate
// programs compiled again each (scripts/timings/fuzz-compile.txt). The targets are in
// *_target.hpp; the ONNX one needs Debian's libonnx-dev and is compiled in with
// BNORM_FUZZ_ONNX=1, with its structure-aware mutator (onnx_mutator.hpp).
#ifndef BNORM_FUZZ_ONNX
#define BNORM_FUZZ_ONNX 0
#endif

#include "checkpoint_target.hpp"
#include "load_target.hpp"
#include "safetensors_target.hpp"
#if BNORM_FUZZ_ONNX
#include "onnx_mutator.hpp"
#include "onnx_target.hpp"
#endif

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

using Target = int (*)(const std::uint8_t*, std::size_t);
Target target = nullptr;

// The target whose name follows "fuzz_" in the program's file name (fuzz_load,
// fuzz_load_coverage, ...).
Target target_named_by(std::string_view program) {
  program = program.substr(program.find_last_of('/') + 1);
  const auto named = [&](std::string_view name) {
    return program.substr(0, 5 + name.size()) == std::string("fuzz_").append(name);
  };
  if (named("load")) return bnorm_fuzz::load_target::run;
  if (named("checkpoint")) return bnorm_fuzz::checkpoint_target::run;
  if (named("safetensors")) return bnorm_fuzz::safetensors_target::run;
#if BNORM_FUZZ_ONNX
  if (named("onnx")) return bnorm_fuzz::onnx_target::run;
#endif
  return nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  target = *argc > 0 ? target_named_by((*argv)[0]) : nullptr;
  if (target == nullptr) {
    std::fprintf(stderr,
                 "fuzz_readers: run me as fuzz_load, fuzz_checkpoint, fuzz_safetensors%s (a link "
                 "to me)\n",
                 BNORM_FUZZ_ONNX ? " or fuzz_onnx" : "");
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return target(data, size);
}

#if BNORM_FUZZ_ONNX
// libFuzzer's mutation hook, for every target of the program: ONNX inputs are mutated as
// models (fields, node inputs, attributes, tensor dimensions), the others byte-wise.
extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size,
                                               std::size_t max_size, unsigned int seed) {
  if (target == bnorm_fuzz::onnx_target::run)
    return bnorm_fuzz::onnx_mutator::mutate(data, size, max_size, seed);
  return LLVMFuzzerMutate(data, size, max_size);
}
#endif
