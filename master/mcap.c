/* mcap.c - the master's part of request capture (mcap.h). A captured
 * request carries a struct mcap (mr->cap) from mreq_start to its
 * release: the client's body, the attempts the worker sent as CAPTURE
 * frames, and the first bytes the client was sent. At the release the
 * document is built on the loop (JSON, a few hundred KiB at most) and
 * handed to the offload thread, which writes DIR/.ID.tmp (0600), renames
 * it to DIR/ID.json and deletes the oldest files beyond max_files. A
 * failed write is logged once (until a write succeeds again) and never
 * touches the request. Owns struct mcap_state (m->capture), every
 * struct mcap and the write jobs. */
#include "mcap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "budgets.h"
#include "capture.h"
#include "master.h"
#include "offload.h"

/* Files queued for writing at most; beyond, captures are dropped (and
 * that is logged once) rather than memory growing with a slow disk. */
#define MCAP_MAX_PENDING   256
/* Rotation deletes down to max_files less a tenth of it, so that a full
 * directory is not listed again on every write. */
#define MCAP_ROTATE_SLACK  10
#define MCAP_DIR_MODE      0700
#define MCAP_FILE_MODE     0600
#define MCAP_PATH_MAX      (CFG_CAPTURE_DIR_MAX + 2 * CAP_ID_MAX)
#define MCAP_BEARER        "bearer "
/* Secrets masked in a capture by the master: the client's key, and each
 * provider's key and client secret. */
#define MCAP_SECRETS       (1 + 2 * CFG_MAX_PROVIDERS)

/* The offload thread's own: how many capture files the directory holds
 * (counted when the directory is first written or changes). */
struct mcap_disk {
    char dir[CFG_CAPTURE_DIR_MAX + 1];
    size_t files;
    bool counted;
};

struct mcap_state {
    bool on;                       /* capture every request */
    struct offload *offload;       /* made with the first file */
    bool failing;                  /* a failed write was logged */
    bool dropping;                 /* a dropped capture was logged */
    struct mcap_disk disk;         /* the offload thread's */
};

struct mcap {
    json_object *request;          /* the client's body, as JSON */
    json_object *attempts;         /* the worker's, in order */
    struct evbuffer *piece;        /* a CAPTURE frame's JSON so far */
    struct evbuffer *sent;         /* the first bytes the client got */
    size_t sent_total;
    char *client_key;              /* to mask; NULL when none */
};

/* One file to write; the thread's job. */
struct mcap_job {
    struct master *m;
    struct mcap_disk *disk;
    char dir[CFG_CAPTURE_DIR_MAX + 1];
    char name[CAP_ID_MAX + sizeof(CAP_SUFFIX)];
    size_t keep_files;             /* rotation's target */
    size_t max_files;
    char *text;
    size_t len;
    const char *step;              /* what failed */
    int err;                       /* and its errno */
};

/* ---- the switch ---- */

int mcap_init(struct master *m)
{
    m->capture = calloc(1, sizeof(*m->capture));
    if (m->capture == NULL)
        return -1;
    m->capture->on = m->cfg->capture.enabled;
    return 0;
}

void mcap_reconfigure(struct master *m)
{
    m->capture->on = m->cfg->capture.enabled;
}

int mcap_switch(struct master *m, bool on)
{
    if (!m->cfg->capture.configured)
        return -1;
    if (m->capture->on != on)
        log_msg(&m->log, LOG_INFO, NULL, "request capture switched %s by "
                "operator", on ? "on" : "off");
    m->capture->on = on;
    return 0;
}

bool mcap_enabled(const struct master *m)
{
    return m->capture != NULL && m->capture->on;
}

void mcap_free(struct master *m)
{
    if (m->capture == NULL)
        return;
    /* Runs the done callbacks of what is still queued: those log. */
    offload_free(m->capture->offload);
    free(m->capture);
    m->capture = NULL;
}

/* ---- a request ---- */

bool mcap_wanted(const struct master *m, const struct http_req *req)
{
    const struct hp_header *h;

    if (!m->cfg->capture.configured)
        return false;
    if (m->capture->on)
        return true;
    h = hp_find(req->head, MCAP_HEADER);
    return h != NULL && h->value_len == sizeof(MCAP_HEADER_ON) - 1 &&
           memcmp(h->value, MCAP_HEADER_ON, h->value_len) == 0;
}

/* The key the client presented (Bearer or x-api-key), malloc'd; NULL
 * when none. */
static char *mcap_client_key(const struct http_req *req)
{
    const struct hp_header *h = hp_find(req->head, "authorization");
    size_t bl = sizeof(MCAP_BEARER) - 1;

    if (h != NULL && h->value_len > bl &&
        strncasecmp(h->value, MCAP_BEARER, bl) == 0)
        return strndup(h->value + bl, h->value_len - bl);
    h = hp_find(req->head, "x-api-key");
    if (h != NULL && h->value_len > 0)
        return strndup(h->value, h->value_len);
    return NULL;
}

/* The secret values the master knows, for cap_scrub; returns how many. */
static size_t mcap_secrets(const struct master *m, const struct mcap *cap,
                           const char **secrets)
{
    size_t n = 0;

    secrets[n++] = cap->client_key;
    for (int p = 0; p < m->cfg->provider_count; p++) {
        secrets[n++] = m->cfg->providers[p].api_key;
        secrets[n++] = m->cfg->providers[p].client_secret;
    }
    return n;
}

void mcap_begin(struct mreq *mr, const struct http_req *req)
{
    const char *secrets[MCAP_SECRETS];
    struct mcap *cap = calloc(1, sizeof(*cap));
    size_t n;

    if (cap == NULL || (cap->attempts = json_object_new_array()) == NULL ||
        (cap->piece = evbuffer_new()) == NULL ||
        (cap->sent = evbuffer_new()) == NULL)
        util_oom("a request's capture");
    cap->client_key = mcap_client_key(req);
    n = mcap_secrets(mr->m, cap, secrets);
    cap->request = cap_body_json(req->body, req->body_len,
                                 (size_t)mr->m->cfg->capture.max_body_bytes,
                                 secrets, n);
    mr->cap = cap;
}

/* A worker's attempt, parsed; NULL when it is not one JSON value. */
static json_object *mcap_parse(const char *text, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *o;

    if (tok == NULL)
        util_oom("a capture");
    o = len > 0 && len < INT32_MAX ? json_tokener_parse_ex(tok, text,
                                                           (int)len) : NULL;
    if (o != NULL && json_tokener_get_parse_end(tok) != len) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

void mcap_piece(struct mreq *mr, struct evbuffer *in, size_t len,
                bool more)
{
    struct mcap *cap = mr->cap;
    json_object *a;
    size_t total;

    if (cap == NULL) {
        evbuffer_drain(in, len);
        return;
    }
    UTIL_MUST(evbuffer_remove_buffer(in, cap->piece, len) == (int)len ?
              0 : -1, "a capture");
    if (more)
        return;
    total = evbuffer_get_length(cap->piece);
    a = mcap_parse((const char *)evbuffer_pullup(cap->piece, -1), total);
    evbuffer_drain(cap->piece, total);
    if (a == NULL) {
        log_msg(&mr->m->log, LOG_WARN, mr->m->shm.jobs[mr->job].request_id,
                "capture: an attempt from the worker is not JSON; left out");
        return;
    }
    json_object_array_add(cap->attempts, a);
}

void mcap_sent(struct mreq *mr, const void *data, size_t len)
{
    struct mcap *cap = mr->cap;
    /* One byte past the cap, so that the cut knows it was cut. */
    size_t keep = (size_t)mr->m->cfg->capture.max_body_bytes + 1, have;

    if (cap == NULL)
        return;
    have = evbuffer_get_length(cap->sent);
    if (have < keep && len > 0)
        UTIL_MUST(evbuffer_add(cap->sent, data,
                               len < keep - have ? len : keep - have),
                  "a capture");
    cap->sent_total += len;
}

void mcap_sent_buf(struct mreq *mr, struct evbuffer *in, size_t len)
{
    struct mcap *cap = mr->cap;
    size_t keep, have, n;

    if (cap == NULL)
        return;
    keep = (size_t)mr->m->cfg->capture.max_body_bytes + 1;
    have = evbuffer_get_length(cap->sent);
    n = have < keep ? keep - have : 0;
    n = len < n ? len : n;
    if (n > 0) {
        char *tmp = malloc(n);

        if (tmp == NULL || evbuffer_copyout(in, tmp, n) != (ev_ssize_t)n)
            util_oom("a capture");
        UTIL_MUST(evbuffer_add(cap->sent, tmp, n), "a capture");
        free(tmp);
    }
    cap->sent_total += len;
}

void mcap_sent_reset(struct mreq *mr)
{
    if (mr->cap == NULL)
        return;
    evbuffer_drain(mr->cap->sent, evbuffer_get_length(mr->cap->sent));
    mr->cap->sent_total = 0;
}

void mcap_discard(struct mreq *mr)
{
    struct mcap *cap = mr->cap;

    if (cap == NULL)
        return;
    json_object_put(cap->request);
    json_object_put(cap->attempts);
    evbuffer_free(cap->piece);
    evbuffer_free(cap->sent);
    if (cap->client_key != NULL)
        explicit_bzero(cap->client_key, strlen(cap->client_key));
    free(cap->client_key);
    free(cap);
    mr->cap = NULL;
}

/* ---- the file, on the offload thread ---- */

/* mkdir -p dir, the missing parts 0700. 0 or -1 with errno. */
static int mcap_mkdirs(const char *dir)
{
    char path[CFG_CAPTURE_DIR_MAX + 1];
    size_t len = strlen(dir);

    if (len >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        if (mkdir(path, MCAP_DIR_MODE) < 0 && errno != EEXIST)
            return -1;
        path[i] = dir[i];
    }
    return 0;
}

static bool mcap_is_capture(const char *name)
{
    size_t n = strlen(name), sl = sizeof(CAP_SUFFIX) - 1;

    return name[0] != '.' && n > sl && n < CAP_ID_MAX + sl &&
           strcmp(name + n - sl, CAP_SUFFIX) == 0;
}

/* Lists dir's capture files into *out (malloc'd; the caller frees).
 * Returns how many, or -1 with errno. */
static long mcap_list(const char *dir, struct cap_file **out)
{
    DIR *d = opendir(dir);
    struct cap_file *files = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;

    *out = NULL;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        struct stat st;

        if (!mcap_is_capture(e->d_name) ||
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            struct cap_file *grown;

            cap = cap ? 2 * cap : 64;
            grown = realloc(files, cap * sizeof(*files));
            if (grown == NULL) {
                free(files);
                closedir(d);
                errno = ENOMEM;
                return -1;
            }
            files = grown;
        }
        files[n].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL +
                            st.st_mtim.tv_nsec;
        util_strlcpy(files[n].name, e->d_name, sizeof(files[n].name));
        n++;
    }
    closedir(d);
    *out = files;
    return (long)n;
}

/* Deletes the oldest files beyond the job's limit. */
static int mcap_rotate(struct mcap_job *j)
{
    struct cap_file *files;
    long n = mcap_list(j->dir, &files);
    size_t del;
    int dfd;

    if (n < 0) {
        j->step = "list the capture directory";
        return -1;
    }
    del = (size_t)n > j->max_files ?
          cap_rotate_pick(files, (size_t)n, j->keep_files) : 0;
    dfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    for (size_t i = 0; dfd >= 0 && i < del; i++)
        (void)unlinkat(dfd, files[i].name, 0);
    if (dfd >= 0)
        close(dfd);
    j->disk->files = (size_t)n - del;
    free(files);
    return 0;
}

static int mcap_write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int mcap_write_run(void *arg)
{
    struct mcap_job *j = arg;
    struct mcap_disk *disk = j->disk;
    char tmp[MCAP_PATH_MAX], path[MCAP_PATH_MAX];
    struct stat st;
    bool existed;
    int fd;

    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", j->dir, j->name);
    snprintf(path, sizeof(path), "%s/%s", j->dir, j->name);
    if (mcap_mkdirs(j->dir) < 0) {
        j->step = "create the capture directory";
        goto fail;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
              MCAP_FILE_MODE);
    if (fd < 0) {
        j->step = "create a capture file";
        goto fail;
    }
    /* A file left from an earlier owner keeps its mode: make it ours. */
    if (fchmod(fd, MCAP_FILE_MODE) < 0 ||
        mcap_write_all(fd, j->text, j->len) < 0) {
        j->step = "write a capture file";
        j->err = errno;
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) < 0) {
        j->step = "write a capture file";
        j->err = errno;
        unlink(tmp);
        return -1;
    }
    existed = stat(path, &st) == 0;
    if (rename(tmp, path) < 0) {
        j->step = "rename a capture file";
        j->err = errno;
        unlink(tmp);
        return -1;
    }
    if (!disk->counted || strcmp(disk->dir, j->dir) != 0) {
        /* A directory not counted yet: count it (and rotate) now. */
        util_strlcpy(disk->dir, j->dir, sizeof(disk->dir));
        disk->counted = true;
        disk->files = j->max_files + 1;
    } else if (!existed) {
        disk->files++;
    }
    if (disk->files > j->max_files && mcap_rotate(j) < 0) {
        j->err = errno;
        disk->counted = false;
        return -1;
    }
    return 0;
fail:
    j->err = errno;
    return -1;
}

static void mcap_write_done(void *arg, int rc)
{
    struct mcap_job *j = arg;
    struct mcap_state *st = j->m->capture;

    if (rc < 0 && !st->failing) {
        st->failing = true;
        log_msg(&j->m->log, LOG_ERROR, NULL, "capture: cannot %s in %s: %s "
                "(requests go on; logged once until a capture is written)",
                j->step, j->dir, strerror(j->err));
    } else if (rc == 0 && st->failing) {
        st->failing = false;
        log_msg(&j->m->log, LOG_INFO, NULL, "capture: files are written "
                "to %s again", j->dir);
    }
    free(j->text);
    free(j);
}

/* Hands text (malloc'd; taken) to the thread as file name (ID.json). */
static void mcap_queue(struct master *m, const char *rid, char *text,
                       size_t len)
{
    struct mcap_state *st = m->capture;
    const struct cfg_capture *cc = &m->cfg->capture;
    struct mcap_job *j;
    size_t n;

    if (st->offload == NULL && (st->offload = offload_new(m->base)) == NULL)
        goto drop;
    if (offload_pending(st->offload) >= MCAP_MAX_PENDING)
        goto drop;
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        util_oom("a capture");
    j->m = m;
    j->disk = &st->disk;
    util_strlcpy(j->dir, cc->dir, sizeof(j->dir));
    n = cap_file_id(rid, j->name, CAP_ID_MAX);
    memcpy(j->name + n, CAP_SUFFIX, sizeof(CAP_SUFFIX));
    j->max_files = (size_t)cc->max_files;
    j->keep_files = j->max_files - j->max_files / MCAP_ROTATE_SLACK;
    j->text = text;
    j->len = len;
    if (offload_run(st->offload, mcap_write_run, mcap_write_done, j) < 0) {
        free(j);
        goto drop;
    }
    st->dropping = false;
    return;
drop:
    if (!st->dropping)
        log_msg(&m->log, LOG_ERROR, rid, "capture: too many files waiting "
                "to be written (or no writer thread); captures are dropped "
                "until they drain");
    st->dropping = true;
    free(text);
}

void mcap_finish(struct mreq *mr)
{
    struct master *m = mr->m;
    struct mcap *cap = mr->cap;
    const char *rid = m->shm.jobs[mr->job].request_id;
    const char *secrets[MCAP_SECRETS];
    size_t n, max = (size_t)m->cfg->capture.max_body_bytes, len;
    json_object *doc, *client, *sent;
    const char *text, *name;
    char *copy;

    if (cap == NULL)
        return;
    n = mcap_secrets(m, cap, secrets);
    doc = json_object_new_object();
    client = json_object_new_object();
    if (doc == NULL || client == NULL)
        util_oom("a capture");
    json_object_object_add(doc, "request_id", json_object_new_string(rid));
    json_object_object_add(doc, "time_ms", json_object_new_int64(
        util_wall_ms() - (util_now_us() - mr->received_us) / 1000));
    json_object_object_add(doc, "model", json_object_new_string(mr->model));
    json_object_object_add(doc, "door", json_object_new_string(
        mr->door != NULL ? mr->door : CAP_DOOR_DEFAULT));
    json_object_object_add(doc, "status", json_object_new_int(mr->status));
    name = budgets_name(m, m->shm.jobs[mr->job].client);
    json_object_object_add(doc, "client", json_object_new_string(
        name != NULL ? name : CAP_CLIENT_NONE));
    json_object_object_add(doc, "stream", json_object_new_boolean(
        mr->stream));
    json_object_object_add(doc, "request", cap->request);
    json_object_object_add(doc, "attempts", cap->attempts);
    cap->request = cap->attempts = NULL;     /* doc's now */
    len = evbuffer_get_length(cap->sent);
    sent = cap_body_json(len ? (const char *)evbuffer_pullup(cap->sent, -1)
                             : "", len, max, secrets, n);
    json_object_object_add(sent, "bytes", json_object_new_int64(
        (int64_t)cap->sent_total));
    json_object_object_add(client, "status", json_object_new_int(
        mr->status));
    json_object_object_add(client, "body", sent);
    json_object_object_add(doc, "response", client);
    text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
                                          JSON_C_TO_STRING_NOSLASHESCAPE);
    if (text == NULL || (copy = strdup(text)) == NULL)
        util_oom("a capture");
    len = strlen(copy);
    /* The last word: whatever the worker or an upstream echoed. */
    cap_scrub(copy, len, secrets, n);
    json_object_put(doc);
    mcap_discard(mr);
    mcap_queue(m, rid, copy, len);
}
