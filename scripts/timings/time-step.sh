#!/bin/sh
# A compiler and linker launcher that records each step's wall and CPU time, to see where a
# build's time goes (per test: compile vs link). Used through CMake's launcher variables,
# which CMake also reads from the environment when it configures a new build folder:
#   BNORM_STEP_TIMES=/abs/steps.tsv CMAKE_CXX_COMPILER_LAUNCHER=$PWD/scripts/timings/time-step.sh \
#   CMAKE_CXX_LINKER_LAUNCHER=$PWD/scripts/timings/time-step.sh bash scripts/test.sh unit
# Appends to BNORM_STEP_TIMES: kind (compile or link), output file, wall, user, sys seconds.
# scripts/timings/summarize-steps.sh sums them per test.
kind=link
output=?
previous=
for argument in "$@"; do
  [ "$argument" = -c ] && kind=compile
  [ "$previous" = -o ] && output=$argument
  previous=$argument
done
exec /usr/bin/time -a -o "${BNORM_STEP_TIMES:?set BNORM_STEP_TIMES to a file}" \
  -f "$kind	$output	%e	%U	%S" "$@"
