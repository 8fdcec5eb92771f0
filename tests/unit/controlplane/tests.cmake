# Check suites of bgw-control (controlplane/).
bgw_unit_test(store SOURCES controlplane/test_store.c LIBS bgw_control)
bgw_unit_test(store_backend SOURCES controlplane/test_store_backend.c LIBS bgw_control)
bgw_unit_test(admin_api SOURCES controlplane/test_admin_api.c LIBS bgw_control)
bgw_unit_test(snapshot_builder SOURCES controlplane/test_snapshot_builder.c LIBS bgw_control)
bgw_unit_test(health_check SOURCES controlplane/test_health_check.c LIBS bgw_control)
