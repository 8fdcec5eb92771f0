/*
 * store.c - the durable store of bgw-control (see store.h).
 *
 * In memory, each kind is a JSON array of entries {"revision": R, "object": {...}} in document order;
 * entries are never modified once made, so a change copies the arrays (not the objects), edits the copy,
 * validates the document the copy describes, writes it to disk and only then swaps it in. The state file
 * dir/state.json has the same shape: {"format": 1, "version": V, "services": [entries], ...}.
 *
 * Instead of a directory the state can live in a backend (struct bgw_store_backend, e.g. a ConfigMap): the
 * same text, saved with the token last seen; a save that finds a newer stored state makes the change load
 * that state and run again on top of it (see retry_loop()).
 */
#include "store.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define STATE_FILE "state.json"
#define STATE_TMP "state.json.tmp"
#define LOCK_FILE "lock"
#define STATE_FORMAT 1

struct bgw_store {
    pthread_mutex_t lock;
    char *dir;                          /* NULL: in memory only */
    int dir_fd, lock_fd;
    uint64_t version;
    json_t *kinds[BGW_KIND_COUNT];      /* arrays of entries */
    struct bgw_config *cfg;             /* the validated current document */
    bgw_store_listener listener;
    void *listener_arg;
    bool has_be;                        /* the state lives in be, not in dir */
    struct bgw_store_backend be;
    char token[BGW_STORE_TOKEN_MAX];    /* the backend's name of the state last loaded or saved */
    bool absent;                        /* the backend had no state at open, none saved since */
    bool stale;                         /* the last save found a newer stored state */
};

static const char *const kind_names[BGW_KIND_COUNT] = {"services", "routes", "rate_limits", "auth_policies"};

int bgw_store_kind_parse(const char *s, enum bgw_store_kind *out)
{
    for (int k = 0; k < BGW_KIND_COUNT; k++) {
        if (strcmp(s, kind_names[k]) == 0) {
            *out = (enum bgw_store_kind)k;
            return 0;
        }
    }
    return -1;
}

const char *bgw_store_kind_name(enum bgw_store_kind kind)
{
    return kind >= 0 && kind < BGW_KIND_COUNT ? kind_names[kind] : "?";
}

bool bgw_store_name_valid(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-'))
            return false;
    }
    return n >= 1 && n <= BGW_NAME_MAX;
}

/* ---- errors ---- */

static int fail(struct bgw_store_error *err, enum bgw_store_status status, const char *field, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

static int fail(struct bgw_store_error *err, enum bgw_store_status status, const char *field, const char *fmt,
                ...)
{
    va_list ap;

    if (!err)
        return -1;
    err->status = status;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

/*
 * A validator line "PATH: what is wrong" about the merged document, reported against the request:
 * maps[k] (may be NULL) is an array giving, for each index of kind k in the merged document, the index of
 * the same object in the request (or -1). relative: the request is one object (a PUT body), so its path
 * prefix "kind[i]" is dropped; otherwise it becomes "kind[request index]".
 */
static int fail_validation(struct bgw_store_error *err, const char *line, json_t *const maps[], bool relative)
{
    const char *sep = strstr(line, ": ");
    char path[256], out[256];

    if (!sep || (size_t)(sep - line) >= sizeof path)
        return fail(err, BGW_STORE_INVALID, "", "%s", line);
    memcpy(path, line, (size_t)(sep - line));
    path[sep - line] = '\0';
    snprintf(out, sizeof out, "%s", path);
    for (int k = 0; maps && k < BGW_KIND_COUNT; k++) {
        size_t kl = strlen(kind_names[k]);
        char *end;
        unsigned long idx;

        if (strncmp(path, kind_names[k], kl) != 0 || path[kl] != '[' || !maps[k])
            continue;
        idx = strtoul(path + kl + 1, &end, 10);
        if (*end != ']')
            break;
        json_int_t to = json_integer_value(json_array_get(maps[k], idx));
        if (!json_array_get(maps[k], idx) || to < 0)
            break;
        end++;
        if (relative)
            snprintf(out, sizeof out, "%s", *end == '.' ? end + 1 : end);
        else
            snprintf(out, sizeof out, "%s[%lld]%s", kind_names[k], (long long)to, end);
        break;
    }
    if (out[0])
        return fail(err, BGW_STORE_INVALID, out, "%s: %s", out, sep + 2);
    return fail(err, BGW_STORE_INVALID, "", "%s", sep + 2);
}

/* ---- entries and documents ---- */

static json_t *entry_object(const json_t *entry)
{
    return json_object_get(entry, "object");
}

static uint64_t entry_revision(const json_t *entry)
{
    return (uint64_t)json_integer_value(json_object_get(entry, "revision"));
}

static const char *entry_name(const json_t *entry)
{
    return json_string_value(json_object_get(entry_object(entry), "name"));
}

static json_t *entry_new(json_t *obj, uint64_t revision)
{
    return json_pack("{s:I,s:o}", "revision", (json_int_t)revision, "object", obj);
}

static long find(const json_t *arr, const char *name)
{
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *n = entry_name(json_array_get(arr, i));
        if (n && strcmp(n, name) == 0)
            return (long)i;
    }
    return -1;
}

static void version_text(uint64_t v, char *buf, size_t cap)
{
    snprintf(buf, cap, "%" PRIu64, v);
}

/* The object of entry with its revision: a new object sharing the members. */
static json_t *with_revision(const json_t *entry)
{
    json_t *o = json_copy(entry_object(entry));
    char rev[32];

    if (!o)
        return NULL;
    version_text(entry_revision(entry), rev, sizeof rev);
    json_object_set_new(o, "revision", json_string(rev));
    return o;
}

/* The config document of kinds (objects shared, not copied). */
static json_t *document(json_t *const kinds[])
{
    json_t *doc = json_object();

    for (int k = 0; doc && k < BGW_KIND_COUNT; k++) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < json_array_size(kinds[k]); i++)
            json_array_append(arr, entry_object(json_array_get(kinds[k], i)));
        if (!arr || json_object_set_new(doc, kind_names[k], arr) < 0) {
            json_decref(doc);
            return NULL;
        }
    }
    return doc;
}

/* Validate the document of kinds into *cfg; err gets the validator's line. */
static int validate(json_t *const kinds[], struct bgw_config **cfg, char *err, size_t errlen)
{
    json_t *doc = document(kinds);
    int rc;

    if (!doc) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rc = bgw_config_from_json(doc, cfg, err, errlen);
    json_decref(doc);
    return rc;
}

/* ---- disk ---- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Make (version, kinds) the state on disk: temp file, fsync, rename, fsync of the directory. */
/* The text of the state file for (version, kinds), or NULL (out of memory). */
static char *state_text(json_t *const kinds[], uint64_t version)
{
    json_t *state = json_pack("{s:i,s:I}", "format", STATE_FORMAT, "version", (json_int_t)version);
    char *text;

    for (int k = 0; state && k < BGW_KIND_COUNT; k++)
        json_object_set(state, kind_names[k], kinds[k]);
    text = state ? json_dumps(state, JSON_INDENT(1)) : NULL;
    json_decref(state);
    return text;
}

/* Save (version, kinds) in the backend with the token last seen. A newer stored state sets s->stale and
 * fails with BGW_STORE_CONFLICT (the callers' retry loop loads it and tries again). */
static int persist_backend(struct bgw_store *s, json_t *const kinds[], uint64_t version,
                           struct bgw_store_error *err)
{
    char *text = state_text(kinds, version);
    char token[BGW_STORE_TOKEN_MAX];
    int rc;

    if (!text)
        return fail(err, BGW_STORE_IO, "", "out of memory");
    memcpy(token, s->token, sizeof token);
    rc = s->be.save(s->be.impl, text, token, err);
    free(text);
    if (rc == 1) {
        s->stale = true;
        return fail(err, BGW_STORE_CONFLICT, "", "the stored state was changed by another writer");
    }
    if (rc < 0)
        return -1;
    memcpy(s->token, token, sizeof token);
    s->absent = false;
    return 0;
}

static int persist(struct bgw_store *s, json_t *const kinds[], uint64_t version, struct bgw_store_error *err)
{
    char *text;
    int fd, rc = 0;

    if (s->has_be)
        return persist_backend(s, kinds, version, err);
    if (!s->dir)
        return 0;
    text = state_text(kinds, version);
    if (!text)
        return fail(err, BGW_STORE_IO, "", "out of memory");
    fd = openat(s->dir_fd, STATE_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(text);
        return fail(err, BGW_STORE_IO, "", "%s/%s: cannot write: %s", s->dir, STATE_TMP, strerror(errno));
    }
    if (write_all(fd, text, strlen(text)) < 0 || write_all(fd, "\n", 1) < 0 || fsync(fd) < 0) {
        rc = fail(err, BGW_STORE_IO, "", "%s/%s: cannot write: %s", s->dir, STATE_TMP, strerror(errno));
        close(fd);
        unlinkat(s->dir_fd, STATE_TMP, 0);
        free(text);
        return rc;
    }
    free(text);
    if (close(fd) < 0) {
        unlinkat(s->dir_fd, STATE_TMP, 0);
        return fail(err, BGW_STORE_IO, "", "%s/%s: cannot write: %s", s->dir, STATE_TMP, strerror(errno));
    }
    if (renameat(s->dir_fd, STATE_TMP, s->dir_fd, STATE_FILE) < 0) {
        rc = fail(err, BGW_STORE_IO, "", "%s/%s: cannot rename: %s", s->dir, STATE_FILE, strerror(errno));
        unlinkat(s->dir_fd, STATE_TMP, 0);
        return rc;
    }
    if (fsync(s->dir_fd) < 0)
        return fail(err, BGW_STORE_IO, "", "%s: cannot sync the directory: %s", s->dir, strerror(errno));
    return 0;
}

/* Make (version, kinds, cfg) current (takes kinds' references and cfg). */
static void install(struct bgw_store *s, json_t *kinds[], uint64_t version, struct bgw_config *cfg)
{
    for (int k = 0; k < BGW_KIND_COUNT; k++) {
        json_decref(s->kinds[k]);
        s->kinds[k] = kinds[k];
        kinds[k] = NULL;
    }
    bgw_config_free(s->cfg);
    s->cfg = cfg;
    s->version = version;
}

/* Check state (a parsed state file; path names it in errors): *version, kinds (new references) and *cfg. */
static int check_state(json_t *state, const char *path, uint64_t *version_out, json_t *kinds_out[],
                       struct bgw_config **cfg_out, struct bgw_store_error *err)
{
    char line[BGW_ERR_MAX];
    json_t *v;
    struct bgw_config *cfg = NULL;
    json_t *kinds[BGW_KIND_COUNT] = {0};
    uint64_t version;

    v = json_object_get(state, "format");
    if (!json_is_object(state) || !json_is_integer(v) || json_integer_value(v) != STATE_FORMAT) {
        return fail(err, BGW_STORE_INVALID, "", "%s: corrupt state file: format: must be %d", path, STATE_FORMAT);
    }
    v = json_object_get(state, "version");
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return fail(err, BGW_STORE_INVALID, "", "%s: corrupt state file: version: must be an integer >= 0", path);
    }
    version = (uint64_t)json_integer_value(v);
    for (int k = 0; k < BGW_KIND_COUNT; k++) {
        json_t *arr = json_object_get(state, kind_names[k]);
        if (!json_is_array(arr)) {
            return fail(err, BGW_STORE_INVALID, "", "%s: corrupt state file: %s: must be an array", path,
                        kind_names[k]);
        }
        for (size_t i = 0; i < json_array_size(arr); i++) {
            json_t *e = json_array_get(arr, i), *rev = json_object_get(e, "revision");
            if (!json_is_object(entry_object(e)) || !json_is_integer(rev) || json_integer_value(rev) < 1 ||
                (uint64_t)json_integer_value(rev) > version) {
                return fail(err, BGW_STORE_INVALID, "", "%s: corrupt state file: %s[%zu]: needs an object and a "
                            "revision in 1..version", path, kind_names[k], i);
            }
        }
        kinds[k] = arr;
    }
    if (validate(kinds, &cfg, line, sizeof line) < 0)
        return fail(err, BGW_STORE_INVALID, "", "%s: corrupt state file: %s", path, line);
    for (int k = 0; k < BGW_KIND_COUNT; k++)
        kinds_out[k] = json_incref(kinds[k]);
    *version_out = version;
    *cfg_out = cfg;
    return 0;
}

/* Parse and check the state text (len bytes; path names it in errors) into the out parameters. */
static int parse_state(const char *text, size_t len, const char *path, uint64_t *version, json_t *kinds[],
                       struct bgw_config **cfg, struct bgw_store_error *err)
{
    json_error_t jerr;
    json_t *state = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc;

    if (!state)
        return fail(err, BGW_STORE_INVALID, "", "%s: corrupt state file: line %d column %d: %s", path, jerr.line,
                    jerr.column, jerr.text);
    rc = check_state(state, path, version, kinds, cfg, err);
    json_decref(state);
    return rc;
}

/* Read and check dir/state.json into s. A missing file is an empty state. */
static int load(struct bgw_store *s, struct bgw_store_error *err)
{
    char path[4096];
    json_error_t jerr;
    json_t *state;
    struct bgw_config *cfg = NULL;
    json_t *kinds[BGW_KIND_COUNT] = {0};
    uint64_t version;
    int fd, rc;

    snprintf(path, sizeof path, "%s/%s", s->dir, STATE_FILE);
    fd = openat(s->dir_fd, STATE_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return fail(err, BGW_STORE_IO, "", "%s: cannot read: %s", path, strerror(errno));
    }
    state = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
    close(fd);
    if (!state)
        return fail(err, BGW_STORE_INVALID, "", "%s: corrupt state file: line %d column %d: %s", path, jerr.line,
                    jerr.column, jerr.text);
    rc = check_state(state, path, &version, kinds, &cfg, err);
    json_decref(state);
    if (rc == 0)
        install(s, kinds, version, cfg);
    return rc;
}

/* ---- open, close ---- */

static struct bgw_store *store_new(void)
{
    struct bgw_store *s = calloc(1, sizeof *s);

    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    s->dir_fd = s->lock_fd = -1;
    for (int k = 0; k < BGW_KIND_COUNT; k++)
        s->kinds[k] = json_array();
    if (bgw_config_parse("{}", 2, &s->cfg, NULL, 0) < 0 || !s->kinds[0] || !s->kinds[1] || !s->kinds[2] ||
        !s->kinds[3]) {
        bgw_store_close(s);
        return NULL;
    }
    return s;
}

struct bgw_store *bgw_store_open(const char *dir, struct bgw_store_error *err)
{
    struct bgw_store *s = store_new();

    if (!s) {
        fail(err, BGW_STORE_IO, "", "out of memory");
        return NULL;
    }
    if (!dir)
        return s;
    s->dir = strdup(dir);
    if (!s->dir) {
        fail(err, BGW_STORE_IO, "", "out of memory");
        goto fail;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        fail(err, BGW_STORE_IO, "", "%s: cannot create the state directory: %s", dir, strerror(errno));
        goto fail;
    }
    s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0) {
        fail(err, BGW_STORE_IO, "", "%s: cannot open the state directory: %s", dir, strerror(errno));
        goto fail;
    }
    s->lock_fd = openat(s->dir_fd, LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        fail(err, BGW_STORE_IO, "", "%s/%s: cannot open: %s", dir, LOCK_FILE, strerror(errno));
        goto fail;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        fail(err, BGW_STORE_IO, "", "%s: state directory in use by another bgw-control (%s)", dir,
             errno == EWOULDBLOCK ? "locked" : strerror(errno));
        goto fail;
    }
    unlinkat(s->dir_fd, STATE_TMP, 0);      /* a write interrupted before its rename */
    if (load(s, err) < 0)
        goto fail;
    return s;
fail:
    bgw_store_close(s);
    return NULL;
}

void bgw_store_close(struct bgw_store *s)
{
    if (!s)
        return;
    if (s->has_be && s->be.close)
        s->be.close(s->be.impl);        /* first: nothing calls bgw_store_reload() after this */
    for (int k = 0; k < BGW_KIND_COUNT; k++)
        json_decref(s->kinds[k]);
    bgw_config_free(s->cfg);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    free(s->dir);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Tell the listener about the current state (lock held). */
static void notify(struct bgw_store *s)
{
    char v[32];
    json_t *doc;

    if (!s->listener)
        return;
    doc = bgw_config_to_json(s->cfg);
    if (!doc)
        return;
    version_text(s->version, v, sizeof v);
    s->listener(s->listener_arg, v, doc);
    json_decref(doc);
}

void bgw_store_set_listener(struct bgw_store *s, bgw_store_listener fn, void *arg)
{
    pthread_mutex_lock(&s->lock);
    s->listener = fn;
    s->listener_arg = arg;
    notify(s);
    pthread_mutex_unlock(&s->lock);
}

/* ---- changes ---- */

static void free_kinds(json_t *kinds[])
{
    for (int k = 0; k < BGW_KIND_COUNT; k++) {
        json_decref(kinds[k]);
        kinds[k] = NULL;
    }
}

/* Shallow copies of the current arrays (lock held). */
static int copy_kinds(struct bgw_store *s, json_t *kinds[], struct bgw_store_error *err)
{
    for (int k = 0; k < BGW_KIND_COUNT; k++) {
        kinds[k] = json_copy(s->kinds[k]);
        if (!kinds[k]) {
            free_kinds(kinds);
            return fail(err, BGW_STORE_IO, "", "out of memory");
        }
    }
    return 0;
}

/* Persist (version, kinds) and make them current; takes ownership of kinds and cfg either way. */
static int commit(struct bgw_store *s, json_t *kinds[], uint64_t version, struct bgw_config *cfg,
                  struct bgw_store_error *err)
{
    if (persist(s, kinds, version, err) < 0) {
        free_kinds(kinds);
        bgw_config_free(cfg);
        return -1;
    }
    install(s, kinds, version, cfg);
    notify(s);
    return 0;
}

/* Load the backend's stored state into s after a save found it newer (lock held). A backend without a
 * state keeps the current one (the next save creates it again); an invalid stored state is logged and
 * overwritten by the next save. */
static int refresh(struct bgw_store *s, struct bgw_store_error *err)
{
    char token[BGW_STORE_TOKEN_MAX] = "", *text = NULL;
    json_t *kinds[BGW_KIND_COUNT] = {0};
    struct bgw_config *cfg = NULL;
    struct bgw_store_error perr;
    uint64_t version;

    s->stale = false;
    if (s->be.load(s->be.impl, &text, token, err) < 0)
        return -1;
    memcpy(s->token, token, sizeof token);
    s->absent = text == NULL;
    if (!text)
        return 0;
    if (parse_state(text, strlen(text), "stored state", &version, kinds, &cfg, &perr) < 0) {
        bgw_log_warn("store: %s; keeping the last good state, which the next change replaces it with",
                     perr.message);
        free(text);
        return 0;
    }
    free(text);
    install(s, kinds, version, cfg);
    notify(s);
    return 0;
}

/* After an attempt of a change (lock held) that returned rc: true when it should run again because its
 * save met a newer stored state, now loaded; at most BGW_STORE_RETRIES times again (*tries counts). */
static bool retry_after(struct bgw_store *s, int rc, int *tries, struct bgw_store_error *err)
{
    if (rc == 0 || !s->stale)
        return false;
    if (++*tries > BGW_STORE_RETRIES) {
        s->stale = false;
        fail(err, BGW_STORE_CONFLICT, "", "the stored state kept changing under this change (%d attempts): "
             "try again", *tries);
        return false;
    }
    return refresh(s, err) == 0;
}

/* Does If-Match value if_match match entry (NULL: no object)? */
static bool if_match_ok(const char *if_match, const json_t *entry)
{
    char want[32];
    const char *p = if_match;

    if (!if_match)
        return true;
    if (!entry)
        return false;
    version_text(entry_revision(entry), want, sizeof want);
    while (*p) {
        const char *start, *end;

        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        start = p;
        while (*p && *p != ',')
            p++;
        end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end - start == 1 && *start == '*')
            return true;
        if (end - start >= 2 && start[0] == 'W' && start[1] == '/')
            start += 2;
        if (end - start >= 2 && *start == '"' && end[-1] == '"') {
            start++;
            end--;
        }
        if ((size_t)(end - start) == strlen(want) && memcmp(start, want, strlen(want)) == 0)
            return true;
    }
    return false;
}

/* A request's object made ready to store: a deep copy with "name" first (name) and without "revision". */
static json_t *clean_object(const json_t *obj, const char *name)
{
    json_t *o = json_pack("{s:s}", "name", name), *v;
    const char *key;

    json_object_foreach((json_t *)obj, key, v) {
        if (!o)
            break;
        if (strcmp(key, "name") == 0 || strcmp(key, "revision") == 0)
            continue;
        if (json_object_set_new(o, key, json_deep_copy(v)) < 0) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

/* One attempt of bgw_store_put with the lock held; obj: the cleaned object (a new reference is taken). */
static int put_locked(struct bgw_store *s, enum bgw_store_kind kind, const char *name, json_t *obj_in,
                      const char *if_match, bool *created, json_t **out, struct bgw_store_error *err)
{
    json_t *kinds[BGW_KIND_COUNT] = {0}, *maps[BGW_KIND_COUNT] = {0};
    json_t *obj = json_incref(obj_in), *entry = NULL;
    struct bgw_config *cfg = NULL;
    char line[BGW_ERR_MAX];
    long at;
    int rc = -1;

    at = find(s->kinds[kind], name);
    const json_t *cur = at >= 0 ? json_array_get(s->kinds[kind], (size_t)at) : NULL;
    if (!if_match_ok(if_match, cur)) {
        if (cur)
            fail(err, BGW_STORE_PRECONDITION, "", "%s/%s is at revision %" PRIu64 ", not %s", kind_names[kind],
                 name, entry_revision(cur), if_match);
        else
            fail(err, BGW_STORE_PRECONDITION, "", "%s/%s does not exist (If-Match: %s)", kind_names[kind], name,
                 if_match);
        json_decref(obj);
        goto out;
    }
    if (cur && json_equal(entry_object(cur), obj)) {       /* nothing changes */
        json_decref(obj);
        if (created)
            *created = false;
        if (out)
            *out = with_revision(cur);
        rc = 0;
        goto out;
    }
    if (copy_kinds(s, kinds, err) < 0) {
        json_decref(obj);
        goto out;
    }
    entry = entry_new(obj, s->version + 1);
    if (!entry || (at >= 0 ? json_array_set(kinds[kind], (size_t)at, entry)
                           : json_array_append(kinds[kind], entry)) < 0) {
        fail(err, BGW_STORE_IO, "", "out of memory");
        goto out;
    }
    if (validate(kinds, &cfg, line, sizeof line) < 0) {
        size_t idx = at >= 0 ? (size_t)at : json_array_size(kinds[kind]) - 1;
        maps[kind] = json_array();
        for (size_t i = 0; maps[kind] && i < json_array_size(kinds[kind]); i++)
            json_array_append_new(maps[kind], json_integer(i == idx ? 0 : -1));
        fail_validation(err, line, maps, true);
        json_decref(maps[kind]);
        goto out;
    }
    if (commit(s, kinds, s->version + 1, cfg, err) < 0)
        goto out;
    if (created)
        *created = at < 0;
    if (out)
        *out = with_revision(entry);
    rc = 0;
out:
    free_kinds(kinds);
    json_decref(entry);
    return rc;
}

int bgw_store_put(struct bgw_store *s, enum bgw_store_kind kind, const char *name, const json_t *body,
                  const char *if_match, bool *created, json_t **out, struct bgw_store_error *err)
{
    json_t *obj, *named;
    int rc, tries = 0;

    if (kind < 0 || kind >= BGW_KIND_COUNT)
        return fail(err, BGW_STORE_NOT_FOUND, "", "no such kind");
    if (!bgw_store_name_valid(name))
        return fail(err, BGW_STORE_INVALID, "name", "name: must be 1-%d characters of A-Za-z0-9._-",
                    BGW_NAME_MAX);
    if (!json_is_object(body))
        return fail(err, BGW_STORE_INVALID, "", "the body must be a JSON object");
    named = json_object_get(body, "name");
    if (named && (!json_is_string(named) || strcmp(json_string_value(named), name) != 0))
        return fail(err, BGW_STORE_INVALID, "name", "name: must be \"%s\", the name in the URL", name);
    obj = clean_object(body, name);
    if (!obj)
        return fail(err, BGW_STORE_IO, "", "out of memory");
    pthread_mutex_lock(&s->lock);
    do
        rc = put_locked(s, kind, name, obj, if_match, created, out, err);
    while (retry_after(s, rc, &tries, err));
    pthread_mutex_unlock(&s->lock);
    json_decref(obj);
    return rc;
}

/* The first route of cfg that refers to kind/name, or NULL. */
static const char *referenced_by(const struct bgw_config *cfg, enum bgw_store_kind kind, const char *name,
                                 const char **field)
{
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const struct bgw_route *r = &cfg->routes[i];
        const char *ref = kind == BGW_KIND_SERVICES      ? r->service
                          : kind == BGW_KIND_RATE_LIMITS ? r->rate_limit
                          : kind == BGW_KIND_AUTH_POLICIES ? r->auth
                                                           : NULL;
        if (ref && strcmp(ref, name) == 0) {
            *field = kind == BGW_KIND_SERVICES ? "service" : kind == BGW_KIND_RATE_LIMITS ? "rate_limit" : "auth";
            return r->name;
        }
    }
    return NULL;
}

/* One attempt of bgw_store_delete with the lock held. */
static int delete_locked(struct bgw_store *s, enum bgw_store_kind kind, const char *name, const char *if_match,
                         struct bgw_store_error *err)
{
    json_t *kinds[BGW_KIND_COUNT] = {0};
    struct bgw_config *cfg = NULL;
    char line[BGW_ERR_MAX];
    const char *user, *field = "";
    long at;
    int rc = -1;

    at = bgw_store_name_valid(name) ? find(s->kinds[kind], name) : -1;
    if (at < 0) {
        fail(err, BGW_STORE_NOT_FOUND, "", "%s/%s not found", kind_names[kind], name);
        goto out;
    }
    const json_t *cur = json_array_get(s->kinds[kind], (size_t)at);
    if (!if_match_ok(if_match, cur)) {
        fail(err, BGW_STORE_PRECONDITION, "", "%s/%s is at revision %" PRIu64 ", not %s", kind_names[kind], name,
             entry_revision(cur), if_match);
        goto out;
    }
    user = referenced_by(s->cfg, kind, name, &field);
    if (user) {
        char f[64];
        long ri = find(s->kinds[BGW_KIND_ROUTES], user);
        snprintf(f, sizeof f, "routes[%ld].%s", ri, field);
        fail(err, BGW_STORE_CONFLICT, f, "%s/%s is used by route \"%s\" (%s)", kind_names[kind], name, user, f);
        goto out;
    }
    if (copy_kinds(s, kinds, err) < 0)
        goto out;
    json_array_remove(kinds[kind], (size_t)at);
    if (validate(kinds, &cfg, line, sizeof line) < 0) {
        fail_validation(err, line, NULL, false);
        goto out;
    }
    rc = commit(s, kinds, s->version + 1, cfg, err);
out:
    free_kinds(kinds);
    return rc;
}

int bgw_store_delete(struct bgw_store *s, enum bgw_store_kind kind, const char *name, const char *if_match,
                     struct bgw_store_error *err)
{
    int rc, tries = 0;

    if (kind < 0 || kind >= BGW_KIND_COUNT)
        return fail(err, BGW_STORE_NOT_FOUND, "", "no such kind");
    pthread_mutex_lock(&s->lock);
    do
        rc = delete_locked(s, kind, name, if_match, err);
    while (retry_after(s, rc, &tries, err));
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* Can doc be merged object by object (an object of known kinds, arrays of objects with valid, distinct
 * names)? When not, the validator's verdict on doc alone explains why. */
static int check_mergeable(const json_t *doc, struct bgw_store_error *err)
{
    const char *key;
    json_t *v;
    bool ok = json_is_object(doc);

    json_object_foreach((json_t *)doc, key, v) {
        enum bgw_store_kind k;
        if (!ok)
            break;
        if (strcmp(key, "version") == 0) {
            ok = json_is_string(v);
            continue;
        }
        if (bgw_store_kind_parse(key, &k) < 0 || !json_is_array(v)) {
            ok = false;
            break;
        }
        json_t *seen = json_object();            /* names so far: a hash, so large documents stay linear */
        ok = seen != NULL;
        for (size_t i = 0; ok && i < json_array_size(v); i++) {
            const char *n = json_string_value(json_object_get(json_array_get(v, i), "name"));
            ok = n && bgw_store_name_valid(n) && !json_object_get(seen, n) &&
                 json_object_set_new(seen, n, json_true()) == 0;
        }
        json_decref(seen);
    }
    if (ok)
        return 0;
    /* The validator's verdict on doc alone, without the "revision" members apply ignores. */
    char line[BGW_ERR_MAX];
    struct bgw_config *cfg = NULL;
    json_t *copy = json_deep_copy(doc);
    if (!copy)
        return fail(err, BGW_STORE_IO, "", "out of memory");
    json_object_foreach(copy, key, v) {
        for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++)
            json_object_del(json_array_get(v, i), "revision");
    }
    int rc = bgw_config_from_json(copy, &cfg, line, sizeof line);
    json_decref(copy);
    if (rc < 0)
        return fail_validation(err, line, NULL, false);
    bgw_config_free(cfg);
    return fail(err, BGW_STORE_INVALID, "", "the document must be an object of services, routes, rate_limits "
                "and auth_policies, each object with a distinct name");
}

static int apply_locked(struct bgw_store *s, const json_t *doc, json_t **summary, struct bgw_store_error *err)
{
    json_t *kinds[BGW_KIND_COUNT] = {0}, *maps[BGW_KIND_COUNT] = {0}, *items = json_array();
    struct bgw_config *cfg = NULL;
    uint64_t next = s->version + 1;
    bool changed = false;
    char line[BGW_ERR_MAX], v[32];
    int rc = -1;

    if (!items) {
        fail(err, BGW_STORE_IO, "", "out of memory");
        goto out;
    }
    if (check_mergeable(doc, err) < 0 || copy_kinds(s, kinds, err) < 0)
        goto out;
    for (int k = 0; k < BGW_KIND_COUNT; k++) {
        const json_t *arr = json_object_get(doc, kind_names[k]);
        json_t *index = json_object();            /* name -> position in kinds[k] */
        maps[k] = index ? json_array() : NULL;
        for (size_t i = 0; maps[k] && i < json_array_size(kinds[k]); i++) {
            json_array_append_new(maps[k], json_integer(-1));
            const char *n = entry_name(json_array_get(kinds[k], i));
            if (n) json_object_set_new(index, n, json_integer((json_int_t)i));
        }
        for (size_t i = 0; maps[k] && i < json_array_size(arr); i++) {
            const json_t *item = json_array_get(arr, i);
            const char *name = json_string_value(json_object_get(item, "name"));
            json_t *obj = clean_object(item, name), *entry;
            json_t *pos = json_object_get(index, name);
            long at = pos ? (long)json_integer_value(pos) : -1;
            const char *result = at < 0 ? "created" : "replaced";

            if (!obj) {
                json_decref(index);
                fail(err, BGW_STORE_IO, "", "out of memory");
                goto out;
            }
            if (at >= 0 && json_equal(entry_object(json_array_get(kinds[k], (size_t)at)), obj)) {
                entry = json_incref(json_array_get(kinds[k], (size_t)at));
                json_decref(obj);
                result = "unchanged";
            } else {
                entry = entry_new(obj, next);
                changed = true;
            }
            if (!entry) {
                json_decref(index);
                fail(err, BGW_STORE_IO, "", "out of memory");
                goto out;
            }
            if (at >= 0) {
                json_array_set(kinds[k], (size_t)at, entry);
                json_array_set_new(maps[k], (size_t)at, json_integer((json_int_t)i));
            } else {
                json_object_set_new(index, name, json_integer((json_int_t)json_array_size(kinds[k])));
                json_array_append(kinds[k], entry);
                json_array_append_new(maps[k], json_integer((json_int_t)i));
            }
            version_text(entry_revision(entry), v, sizeof v);
            json_array_append_new(items, json_pack("{s:s,s:s,s:s,s:s}", "kind", kind_names[k], "name",
                                                   entry_name(entry), "result", result, "revision", v));
            json_decref(entry);
        }
        json_decref(index);
        if (!maps[k]) {
            fail(err, BGW_STORE_IO, "", "out of memory");
            goto out;
        }
    }
    if (changed) {
        if (validate(kinds, &cfg, line, sizeof line) < 0) {
            fail_validation(err, line, maps, false);
            goto out;
        }
        if (commit(s, kinds, next, cfg, err) < 0)
            goto out;
    }
    if (summary) {
        version_text(s->version, v, sizeof v);
        *summary = json_pack("{s:s,s:O}", "version", v, "items", items);
    }
    rc = 0;
out:
    free_kinds(kinds);
    free_kinds(maps);
    json_decref(items);
    return rc;
}

int bgw_store_apply(struct bgw_store *s, const json_t *doc, json_t **summary, struct bgw_store_error *err)
{
    int rc, tries = 0;

    pthread_mutex_lock(&s->lock);
    do
        rc = apply_locked(s, doc, summary, err);
    while (retry_after(s, rc, &tries, err));
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int bgw_store_bootstrap(struct bgw_store *s, const char *file, bool *applied, struct bgw_store_error *err)
{
    struct bgw_config *cfg = NULL;
    char line[BGW_ERR_MAX];
    json_error_t jerr;
    json_t *doc;
    int rc = 0;

    *applied = false;
    if (bgw_config_load_file(file, &cfg, line, sizeof line) < 0)
        return fail(err, BGW_STORE_INVALID, "", "%s", line);
    bgw_config_free(cfg);
    doc = json_load_file(file, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return fail(err, BGW_STORE_INVALID, "", "%s: line %d column %d: %s", file, jerr.line, jerr.column,
                    jerr.text);
    pthread_mutex_lock(&s->lock);
    int tries = 0;
    bool ran = false;
    for (;;) {
        rc = 0;
        ran = s->version == 0;      /* a newer stored state with a history: left alone */
        if (!ran)
            break;
        rc = apply_locked(s, doc, NULL, err);
        if (!retry_after(s, rc, &tries, err))
            break;
    }
    if (ran) {
        if (rc < 0) {
            char msg[BGW_ERR_MAX];
            snprintf(msg, sizeof msg, "%s", err->message);
            snprintf(err->message, sizeof err->message, "%.200s: %.300s", file, msg);
        } else {
            *applied = true;
        }
    }
    pthread_mutex_unlock(&s->lock);
    json_decref(doc);
    return rc;
}

/* ---- backends ---- */

struct bgw_store *bgw_store_open_backend(const struct bgw_store_backend *b, struct bgw_store_error *err)
{
    struct bgw_store *s = store_new();
    char *text = NULL;

    if (!s) {
        if (b->close)
            b->close(b->impl);
        fail(err, BGW_STORE_IO, "", "out of memory");
        return NULL;
    }
    s->be = *b;
    s->has_be = true;
    if (b->load(b->impl, &text, s->token, err) < 0)
        goto fail;
    s->absent = text == NULL;
    if (text) {
        json_t *kinds[BGW_KIND_COUNT] = {0};
        struct bgw_config *cfg = NULL;
        uint64_t version;
        int rc = parse_state(text, strlen(text), "stored state", &version, kinds, &cfg, err);
        free(text);
        if (rc < 0)
            goto fail;
        install(s, kinds, version, cfg);
    }
    return s;
fail:
    bgw_store_close(s);
    return NULL;
}

int bgw_store_ensure_saved(struct bgw_store *s, struct bgw_store_error *err)
{
    int rc = 0, tries = 0;

    pthread_mutex_lock(&s->lock);
    while (s->has_be && s->absent) {
        json_t *kinds[BGW_KIND_COUNT] = {0};
        if (copy_kinds(s, kinds, err) < 0) {
            rc = -1;
            break;
        }
        s->stale = false;
        rc = persist(s, kinds, s->version, err);
        free_kinds(kinds);
        if (!retry_after(s, rc, &tries, err))
            break;                          /* else someone else saved one meanwhile: theirs is loaded */
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int bgw_store_reload(struct bgw_store *s, const char *text, const char *token, struct bgw_store_error *err)
{
    json_t *kinds[BGW_KIND_COUNT] = {0};
    struct bgw_config *cfg = NULL;
    uint64_t version;
    int rc = 0;

    pthread_mutex_lock(&s->lock);
    if (strcmp(token, s->token) == 0)
        goto out;
    if (parse_state(text, strlen(text), "stored state", &version, kinds, &cfg, err) < 0) {
        rc = -1;
        goto out;
    }
    if (version < s->version) {             /* an older write, already overtaken */
        free_kinds(kinds);
        bgw_config_free(cfg);
        goto out;
    }
    snprintf(s->token, sizeof s->token, "%s", token);
    s->absent = false;
    install(s, kinds, version, cfg);
    notify(s);
    rc = 1;
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- reads ---- */

uint64_t bgw_store_version(struct bgw_store *s)
{
    uint64_t v;

    pthread_mutex_lock(&s->lock);
    v = s->version;
    pthread_mutex_unlock(&s->lock);
    return v;
}

json_t *bgw_store_list(struct bgw_store *s, enum bgw_store_kind kind)
{
    json_t *items = json_array(), *out = NULL;
    char v[32];

    if (!items || kind < 0 || kind >= BGW_KIND_COUNT) {
        json_decref(items);
        return NULL;
    }
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < json_array_size(s->kinds[kind]); i++)
        json_array_append_new(items, with_revision(json_array_get(s->kinds[kind], i)));
    version_text(s->version, v, sizeof v);
    pthread_mutex_unlock(&s->lock);
    out = json_pack("{s:o,s:s}", "items", items, "version", v);
    return out;
}

json_t *bgw_store_get(struct bgw_store *s, enum bgw_store_kind kind, const char *name, uint64_t *revision)
{
    json_t *out = NULL;
    long at;

    if (kind < 0 || kind >= BGW_KIND_COUNT)
        return NULL;
    pthread_mutex_lock(&s->lock);
    at = find(s->kinds[kind], name);
    if (at >= 0) {
        const json_t *e = json_array_get(s->kinds[kind], (size_t)at);
        out = with_revision(e);
        if (revision)
            *revision = entry_revision(e);
    }
    pthread_mutex_unlock(&s->lock);
    return out;
}

json_t *bgw_store_snapshot(struct bgw_store *s)
{
    json_t *doc;
    char v[32];

    pthread_mutex_lock(&s->lock);
    doc = document(s->kinds);
    version_text(s->version, v, sizeof v);
    pthread_mutex_unlock(&s->lock);
    if (doc)
        json_object_set_new(doc, "version", json_string(v));
    return doc;
}

json_t *bgw_store_endpoints(struct bgw_store *s, const char *service)
{
    json_t *out = NULL;

    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->cfg->n_services; i++) {
        const struct bgw_service *svc = &s->cfg->services[i];
        if (strcmp(svc->name, service) != 0)
            continue;
        json_t *items = json_array();
        for (size_t j = 0; items && j < svc->n_endpoints; j++)
            json_array_append_new(items, json_pack("{s:s,s:b,s:s}", "address", svc->endpoints[j].address,
                                                   "healthy", svc->endpoints[j].healthy, "source", "static"));
        out = json_pack("{s:s,s:o}", "service", svc->name, "items", items);
        break;
    }
    pthread_mutex_unlock(&s->lock);
    return out;
}
