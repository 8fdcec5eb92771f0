# The config stream: Python grpcio against the real bgw-proxy and bgw-control, and TLS between the two.
list(APPEND BGW_INTEGRATION_MODULES
  test_stream_proxy
  test_stream_control
  test_stream_tls
)
