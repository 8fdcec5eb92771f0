# The config stream: a DiscoveryResponse from the wire through conversion and validation.
bgw_fuzz_target(config_pb bgw_stream)
