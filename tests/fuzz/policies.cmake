# Route policies: the JWT token path and the CORS / claim-header handling of a request head.
bgw_fuzz_target(jwt_token)
bgw_fuzz_target(cors_head)
