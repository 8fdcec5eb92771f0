# Check suites of the observability modules: metrics tables, trace context, access log, control-plane counters.
bgw_unit_test(stats SOURCES observability/test_stats.c LIBS bgw_dataplane)
bgw_unit_test(tracecontext SOURCES observability/test_tracecontext.c LIBS bgw_dataplane)
bgw_unit_test(access_log SOURCES observability/test_access_log.c LIBS bgw_dataplane)
bgw_unit_test(cp_metrics SOURCES observability/test_cp_metrics.c LIBS bgw_control)
