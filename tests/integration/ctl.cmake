# bgwctl end-to-end tests: the real bgwctl against the real bgw-control (and a fake admin API).
list(APPEND BGW_INTEGRATION_MODULES test_bgwctl)
