# Retries, circuit breaking and outlier detection, against upstreams that fail on purpose.
list(APPEND BGW_INTEGRATION_MODULES
  test_retry
  test_circuit_breaker
  test_outlier
)
