/*
 * log.h - one line per event on stderr, text or JSON.
 *
 * Thread-safe: each line is formatted into a local buffer and written with one write(2).
 */
#ifndef BGW_LOG_H
#define BGW_LOG_H

enum bgw_log_level { BGW_LOG_DEBUG = 0, BGW_LOG_INFO, BGW_LOG_WARN, BGW_LOG_ERROR };
enum bgw_log_format { BGW_LOG_TEXT = 0, BGW_LOG_JSON };

/* Set once at start, before threads. */
void bgw_log_init(const char *program, enum bgw_log_format format, enum bgw_log_level min_level);

/* Parse "text" / "json"; returns 0 or -1. */
int bgw_log_format_parse(const char *s, enum bgw_log_format *out);

void bgw_log(enum bgw_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define bgw_log_debug(...) bgw_log(BGW_LOG_DEBUG, __VA_ARGS__)
#define bgw_log_info(...) bgw_log(BGW_LOG_INFO, __VA_ARGS__)
#define bgw_log_warn(...) bgw_log(BGW_LOG_WARN, __VA_ARGS__)
#define bgw_log_error(...) bgw_log(BGW_LOG_ERROR, __VA_ARGS__)

#endif
