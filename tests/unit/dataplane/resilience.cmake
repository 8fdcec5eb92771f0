# Check suites of the resilience policies (dataplane/retry.c, circuit_breaker.c, outlier.c) and of lb.c.
bgw_unit_test(retry SOURCES dataplane/test_retry.c LIBS bgw_dataplane)
bgw_unit_test(circuit_breaker SOURCES dataplane/test_circuit_breaker.c LIBS bgw_dataplane)
bgw_unit_test(outlier SOURCES dataplane/test_outlier.c LIBS bgw_dataplane)
bgw_unit_test(lb SOURCES dataplane/test_lb.c LIBS bgw_dataplane)
