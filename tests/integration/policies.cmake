# End-to-end tests of the route policies: JWT auth (keys and tokens made by the test) and CORS.
list(APPEND BGW_INTEGRATION_MODULES
  test_jwt    # every token rule: alg pinning, none, HS/RS confusion, kid, exp/nbf/skew, iss, aud, size, claims
  test_cors   # preflights answered (204/403), response headers, Vary, wildcard, preflight before auth
)
