# The examples in examples/ run as their READMEs say (test_examples.py).
list(APPEND BGW_INTEGRATION_MODULES test_examples)
