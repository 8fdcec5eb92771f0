# Unit suites of the route policy modules (jwt_auth, cors).
bgw_unit_test(jwt_auth SOURCES dataplane/test_jwt_auth.c LIBS bgw_dataplane OpenSSL::Crypto)
bgw_unit_test(cors SOURCES dataplane/test_cors.c LIBS bgw_dataplane)
