# Sourced by bench/run.sh and bench/covariate_shift_timing.sh: the OpenBLAS kernels the peers
# get. OpenBLAS 0.3.21 does not know every processor: on one it cannot name (this machine's
# Zen 5) it falls back to its SSE3 (Prescott) kernels, several times slower than its AVX2 or
# AVX-512 ones. The peers get the kernels of the widest vectors the processor has;
# BNORM_PEER_OPENBLAS_CORETYPE overrides (set and empty: OpenBLAS's own choice).
if [[ -z ${BNORM_PEER_OPENBLAS_CORETYPE+set} ]]; then
  if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then BNORM_PEER_OPENBLAS_CORETYPE=SkylakeX
  elif grep -qw avx2 /proc/cpuinfo 2>/dev/null; then BNORM_PEER_OPENBLAS_CORETYPE=Haswell
  else BNORM_PEER_OPENBLAS_CORETYPE=
  fi
fi
