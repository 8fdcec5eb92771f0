# Kubernetes service discovery of bgw-control (controlplane/k8s/).
bgw_unit_test(json_splitter SOURCES k8s/test_json_splitter.c LIBS bgw_control)
bgw_unit_test(watch_policy SOURCES k8s/test_watch_policy.c LIBS bgw_control)
bgw_unit_test(k8s_endpoints SOURCES k8s/test_k8s_endpoints.c LIBS bgw_control)
bgw_unit_test(k8s_conn SOURCES k8s/test_k8s_conn.c LIBS bgw_control)
