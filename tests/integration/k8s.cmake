# Kubernetes: the API simulator (tests/k8s/k8s_sim.py) checked with kubectl and python3-kubernetes, and
# bgw-control's service discovery against it with managed proxies.
list(APPEND BGW_INTEGRATION_MODULES
  test_k8s_simulator   # the simulator speaks the real protocol: kubectl and the Python client list and watch it
  test_k8s_discovery   # bgw-control + managed proxy against the simulator: scaling, readiness, 410, failures, rollout
)
list(APPEND BGW_INTEGRATION_MODULES
  test_state_configmap # two bgw-control replicas on one ConfigMap: convergence, conflicts, restart, outage, limits
)
