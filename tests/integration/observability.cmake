# Observability: the alert rules' unit tests (promtool, from Debian's prometheus package) and the end-to-end
# test with a real Prometheus scraping both daemons.
add_test(NAME deploy_alert_rules
         COMMAND promtool test rules tests/bgw-alerts.test.yml
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}/deploy/prometheus)
set_tests_properties(deploy_alert_rules PROPERTIES LABELS unit TIMEOUT 60)
list(APPEND BGW_INTEGRATION_MODULES test_observability)
