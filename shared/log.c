/* log.c - stderr logging, one line per event, text or JSON (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *g_program = "bgw";
static enum bgw_log_format g_format = BGW_LOG_TEXT;
static enum bgw_log_level g_min = BGW_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void bgw_log_init(const char *program, enum bgw_log_format format, enum bgw_log_level min_level)
{
    g_program = program;
    g_format = format;
    g_min = min_level;
}

int bgw_log_format_parse(const char *s, enum bgw_log_format *out)
{
    if (strcmp(s, "text") == 0) { *out = BGW_LOG_TEXT; return 0; }
    if (strcmp(s, "json") == 0) { *out = BGW_LOG_JSON; return 0; }
    return -1;
}

/* Append s to buf as the inside of a JSON string. Returns the new length. */
static size_t json_escape(char *buf, size_t len, size_t cap, const char *s)
{
    for (; *s && len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { buf[len++] = '\\'; buf[len++] = (char)c; }
        else if (c == '\n') { buf[len++] = '\\'; buf[len++] = 'n'; }
        else if (c < 0x20) len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", c);
        else buf[len++] = (char)c;
    }
    return len;
}

void bgw_log(enum bgw_log_level level, const char *fmt, ...)
{
    if (level < g_min) return;
    char msg[2048], line[4608];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t w = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof when - w, ".%03ldZ", ts.tv_nsec / 1000000);

    size_t n;
    if (g_format == BGW_LOG_JSON) {
        n = (size_t)snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"program\":\"%s\",\"msg\":\"",
                             when, level_names[level], g_program);
        n = json_escape(line, n, sizeof line - 4, msg);
        memcpy(line + n, "\"}\n", 3);
        n += 3;
    } else {
        int k = snprintf(line, sizeof line, "%s %s %s: %s\n", when, level_names[level], g_program, msg);
        n = k < 0 ? 0 : (size_t)k >= sizeof line ? sizeof line - 1 : (size_t)k;
        if (n == sizeof line - 1) line[n - 1] = '\n';
    }
    ssize_t rc = write(STDERR_FILENO, line, n);
    (void)rc;
}
