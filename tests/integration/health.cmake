# Active health checks end to end: bgw-control checking real upstreams, a managed bgw-proxy following.
list(APPEND BGW_INTEGRATION_MODULES test_health_check)
