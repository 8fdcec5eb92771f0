/*
 * procstat.h - the standard Prometheus process_* families for the calling process, read from /proc.
 */
#ifndef BGW_PROCSTAT_H
#define BGW_PROCSTAT_H

#include <stddef.h>

/* Append process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_open_fds, process_max_fds and process_start_time_seconds. Returns 0 or -1. */
int bgw_procstat_render(char **buf, size_t *len, size_t *cap);

#endif
