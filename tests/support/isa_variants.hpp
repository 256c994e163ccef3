// The instruction-set variants of core/isa.hpp in tests: which ones this build and processor
// can run, and forcing one for a scope.
#pragma once

#include <bnorm/core/isa.hpp>

#include <optional>
#include <vector>

namespace bnorm_test {

// Restores the environment's choice of variant when a scope ends.
struct ForcedIsa {
  explicit ForcedIsa(bnorm::detail::Isa isa) { bnorm::detail::force_isa(isa); }
  ~ForcedIsa() { bnorm::detail::force_isa(std::nullopt); }
  ForcedIsa(const ForcedIsa&) = delete;
  ForcedIsa& operator=(const ForcedIsa&) = delete;
};

inline std::vector<bnorm::detail::Isa> supported_variants() {
  std::vector<bnorm::detail::Isa> variants;
  for (bnorm::detail::Isa isa : bnorm::detail::every_isa)
    if (bnorm::detail::isa_supported(isa)) variants.push_back(isa);
  return variants;
}

}  // namespace bnorm_test
