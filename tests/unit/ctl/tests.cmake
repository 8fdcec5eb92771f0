# bgwctl's pure modules (controlplane/ctl/): YAML <-> JSON, tables and per-kind views.
bgw_unit_test(ctl_yamljson SOURCES ctl/test_yamljson.c LIBS bgw_ctl_core)
bgw_unit_test(ctl_views SOURCES ctl/test_views.c LIBS bgw_ctl_core)
