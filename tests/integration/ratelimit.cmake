# Rate limits: local buckets shared by workers, keys, 429 headers, reloads, global limits through Redis.
list(APPEND BGW_INTEGRATION_MODULES test_ratelimit)
