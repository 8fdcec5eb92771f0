# End-to-end tests of the route policies: JWT auth (keys and tokens made by the test), CORS, and the JWKS
# fetcher of bgw-control feeding a managed proxy.
list(APPEND BGW_INTEGRATION_MODULES
  test_jwt    # every token rule: alg pinning, none, HS/RS confusion, kid, exp/nbf/skew, iss, aud, size, claims
  test_cors   # preflights answered (204/403), response headers, Vary, wildcard, preflight before auth
  test_jwks   # jwks_uri fetched and pushed, rotation, a failing key server keeps the last good keys
)
