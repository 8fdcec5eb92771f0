# End-to-end tests of bgw-control (the real binary on free ports); see control_harness.py.
list(APPEND BGW_INTEGRATION_MODULES
  test_control_api         # every admin API call and error, If-Match writers, rejected requests change nothing
  test_control_durability  # kill -9 after a 2xx, restarts, corrupt state, bootstrap
  test_control_cli         # flags, environment, token file, loopback-only rule, signals, log format
)
