# ctest script: trains examples/distributed_fashion_mnist briefly, in double, on 1 and on 2
# processes and fails unless both print the same test accuracy (the same network, trained
# data-parallel). Called with -DMPIEXEC=... -DFLAGS=... (a ;-list) -DEXAMPLE=...
foreach(processes 1 2)
  execute_process(
    COMMAND ${MPIEXEC} -np ${processes} ${FLAGS} ${EXAMPLE} --epochs 1 --train-examples 3200 --double
    OUTPUT_VARIABLE output ERROR_VARIABLE errors RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${processes} process(es): exit status ${status}\n${output}\n${errors}")
  endif()
  if(NOT output MATCHES "test_accuracy=([0-9.]+)")
    message(FATAL_ERROR "${processes} process(es): no test_accuracy line in\n${output}")
  endif()
  set(accuracy_${processes} ${CMAKE_MATCH_1})
endforeach()
message(STATUS "test accuracy after 50 steps: ${accuracy_1} on 1 process, ${accuracy_2} on 2")
if(NOT accuracy_1 STREQUAL accuracy_2)
  message(FATAL_ERROR "1 and 2 processes should train the same network")
endif()
