# The config stream: JSON <-> protobuf conversion and the gRPC stream wrapper.
bgw_unit_test(config_pb SOURCES stream/test_config_pb.c LIBS bgw_stream)
bgw_unit_test(grpc_stream SOURCES stream/test_grpc_stream.c LIBS bgw_stream)
