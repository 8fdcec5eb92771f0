# bgw-control's fuzz targets: admin API bodies through the real request handling, in memory.
bgw_fuzz_target(admin_json bgw_control)
