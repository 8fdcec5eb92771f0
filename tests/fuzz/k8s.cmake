# Kubernetes: the watch stream splitter.
bgw_fuzz_target(json_splitter bgw_control)
