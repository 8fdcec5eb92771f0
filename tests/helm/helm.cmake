# Chart tests of deploy/helm/baribhara-gateway (see docs/internals/testing.md): the chart rendered by
# tests/helm/render (Go text/template + sprig, built at test time into the build directory) and checked in
# Python. Label "helm":  ctest --test-dir build -L helm --output-on-failure
foreach(module test_renderer test_chart test_chart_flags test_chart_k8s)
  add_test(NAME helm_${module}
           COMMAND /usr/bin/python3 -m unittest -v ${module}
           WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
  set_tests_properties(helm_${module} PROPERTIES
    LABELS helm
    ENVIRONMENT "BGW_BIN_DIR=${CMAKE_BINARY_DIR}/bin;BGW_HELM_BUILD_DIR=${CMAKE_BINARY_DIR}/tests/helm;PYTHONDONTWRITEBYTECODE=1"
    TIMEOUT 300)
endforeach()
