/* cloauth.c - OAuth tokens shared in cluster mode (cloauth.h).
 *
 * A worker about to refresh a provider's tokens holds the local flock on
 * "<token_file>.lock" and asks its master (FRAME_OAUTH_ASK). The master
 * runs one script on Redis: when the tokens of our file are known to be
 * consumed (their fingerprint is in PREFIXoauth:used:NAME) it answers
 * BUSY and hands the newer tokens (PREFIXoauth:tokens:NAME) to a worker
 * to save; else it takes PREFIXoauth:lock:NAME (SET NX PX, or ours
 * already) and answers GRANTED, or BUSY when another instance holds it.
 * A busy worker waits for its token file to change, as it does when
 * another process holds the flock. Without Redis the answer is ALONE:
 * the flock alone, as on a single instance.
 *
 * The master looks at each OAuth token file every CLOAUTH_CHECK_MS and
 * when a worker's refresh is over (FRAME_OAUTH_RELEASE): tokens that
 * changed here (a refresh, `pipelinectl login`) are stored as the
 * provider's record, the ones they replaced marked consumed, the lock
 * released and a notice published; every other instance whose tokens
 * are then consumed fetches the record and has one of its workers save
 * it to its own token file (the workers' safe writer, off their loop),
 * where all its workers find it. Tokens cross Redis and the worker
 * channels, never a log line. Called by cluster.c (the part's hooks)
 * and relay.c (the frames). */
#include "cloauth.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "chan.h"
#include "cluster_int.h"
#include "frame.h"
#include "oauthwire.h"

/* The token files are looked at this often (a stat; read when changed). */
#define CLOAUTH_CHECK_MS       500
/* The cluster lock's life: a worker's refresh and getUserInfo calls
 * (15 s each at most, worker/auth_state.h) and the save. A holder that
 * ends releases it at once, and so does the master of one that dies
 * (cloauth_worker_lost); an instance that dies whole frees it by
 * expiry. */
#define CLOAUTH_LOCK_MS        35000
/* Records and consumed marks are kept this long after the last change. */
#define CLOAUTH_KEEP_MS        (30LL * 24 * 3600 * 1000)
/* Consumed fingerprints kept per provider (one per refresh). */
#define CLOAUTH_USED_MAX       1000
/* Tokens handed to a worker to save are handed again after this when
 * the file still has the old ones (the worker may have died, or the file
 * cannot be written), the wait doubling with each try up to the most. */
#define CLOAUTH_PUSH_RETRY_MS      2000
#define CLOAUTH_PUSH_RETRY_MAX_MS  60000
#define CLOAUTH_NUM_MAX        24     /* a number as text */

/* Is the fingerprint of our tokens consumed? Then the current record;
 * else the lock: ours (taken or renewed), or busy. KEYS: lock, used,
 * tokens. ARGV: owner, lock ms, our fingerprint. */
static const char cloauth_lock_lua[] =
    "if redis.call('ZSCORE', KEYS[2], ARGV[3]) then "
    "  local r = redis.call('GET', KEYS[3]) "
    "  if r then return {'newer', r} end "
    "end "
    "local h = redis.call('GET', KEYS[1]) "
    "if h == false or h == ARGV[1] then "
    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
    "  return {'granted'} "
    "end "
    "return {'busy'}";

/* Stores new tokens unless they are consumed already ('old'): the
 * record, the consumed marks of the versions they replace, the lock
 * released when ours, the notice. KEYS: tokens, used, channel, lock.
 * ARGV: record, fingerprint, previous fingerprint or '-', notice, owner,
 * keep ms, marks kept, now, another replaced fingerprint or '-'. */
static const char cloauth_store_lua[] =
    "if redis.call('ZSCORE', KEYS[2], ARGV[2]) then return 'old' end "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[6]) "
    "for _, f in ipairs({ARGV[3], ARGV[9]}) do "
    "  if f ~= '-' then redis.call('ZADD', KEYS[2], ARGV[8], f) end "
    "end "
    "redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[7]) + 1)) "
    "redis.call('PEXPIRE', KEYS[2], ARGV[6]) "
    "if redis.call('GET', KEYS[4]) == ARGV[5] then "
    "  redis.call('DEL', KEYS[4]) "
    "end "
    "redis.call('PUBLISH', KEYS[3], ARGV[4]) "
    "return 'ok'";

/* The record, when our tokens are consumed. KEYS: tokens, used. ARGV:
 * our fingerprint. */
static const char cloauth_fetch_lua[] =
    "if redis.call('ZSCORE', KEYS[2], ARGV[1]) then "
    "  return redis.call('GET', KEYS[1]) "
    "end "
    "return false";

/* Releases the lock when it is ours. KEYS: lock. ARGV: owner. */
static const char cloauth_release_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "  return redis.call('DEL', KEYS[1]) "
    "end "
    "return 0";

/* What this master knows of one provider's token file. */
struct cloauth_prov {
    char *token_file;          /* the path this is about (a copy) */
    bool read;                 /* id and fp are of a version read */
    struct oauth_file_id id;
    char fp[OW_FP_LEN + 1];    /* of the tokens there; "" unreadable */
    char pushed_fp[OW_FP_LEN + 1];   /* handed to a worker to save */
    int64_t pushed_ms;
    unsigned pushes;           /* times pushed_fp was handed over */
    int64_t next_check_ms;
    bool held;                 /* the cluster lock granted to a worker */
    int holder;                /* its slot, while held */
};

struct cloauth {
    struct cloauth_prov prov[CFG_MAX_PROVIDERS];
};

/* A command's context: which provider (by name: a reload may move it)
 * and, for an ask, which worker. Freed by the callback. */
struct cloauth_req {
    char provider[CFG_NAME_MAX];
    int slot;                  /* -1: no worker waits */
    pid_t pid;                 /* the worker that asked */
    char fp[OW_FP_LEN + 1];    /* a store: the version stored */
    char prev[OW_FP_LEN + 1];  /* and the one it replaces */
};

static bool cloauth_is_oauth(const struct cfg_provider *p)
{
    return p->auth == CFG_AUTH_OAUTH && p->token_file != NULL;
}

/* The index of the OAuth provider named name, or -1. */
static int cloauth_find(const struct master *m, const char *name)
{
    for (int p = 0; p < m->cfg->provider_count; p++)
        if (strcmp(m->cfg->providers[p].name, name) == 0 &&
            cloauth_is_oauth(&m->cfg->providers[p]))
            return p;
    return -1;
}

/* Provider p's state, made on first use and reset when its token file
 * changed with a reload. */
static struct cloauth_prov *cloauth_prov(struct cluster *c, int p)
{
    const char *path = c->m->cfg->providers[p].token_file;
    struct cloauth_prov *pr;

    if (c->oauth == NULL) {
        c->oauth = calloc(1, sizeof(*c->oauth));
        if (c->oauth == NULL)
            util_oom("the cluster's OAuth state");
    }
    pr = &c->oauth->prov[p];
    if (pr->token_file == NULL || strcmp(pr->token_file, path) != 0) {
        free(pr->token_file);
        memset(pr, 0, sizeof(*pr));
        pr->token_file = strdup(path);
        if (pr->token_file == NULL)
            util_oom("the cluster's OAuth state");
    }
    return pr;
}

static struct cloauth_req *cloauth_req_new(const struct master *m, int p,
                                           int slot)
{
    struct cloauth_req *rq = calloc(1, sizeof(*rq));

    if (rq == NULL)
        util_oom("a cluster OAuth command");
    util_strlcpy(rq->provider, m->cfg->providers[p].name,
                 sizeof(rq->provider));
    rq->slot = slot;
    rq->pid = slot >= 0 ? m->workers[slot].pid : 0;
    return rq;
}

static int cloauth_key(const struct cluster *c, char *out, const char *kind,
                       int p)
{
    return cw_key(out, CW_KEY_MAX, c->prefix, kind,
                  c->m->cfg->providers[p].name);
}

/* ---- the workers ---- */

static bool cloauth_worker_ok(const struct master *m, int slot)
{
    return slot >= 0 && slot < CFG_MAX_WORKERS && m->workers[slot].pid > 0 &&
           m->workers[slot].chan != NULL && !m->workers[slot].broken;
}

/* A FRAME_OAUTH to the worker in slot, with len bytes of payload. */
static void cloauth_send(struct master *m, int slot, unsigned op,
                         uint32_t provider, const void *payload, size_t len)
{
    struct frame f = { (uint32_t)len, FRAME_OAUTH, 0, (uint16_t)op,
                       provider, 0, NULL };
    uint8_t hdr[FRAME_HDR_SIZE];

    if (!cloauth_worker_ok(m, slot))
        return;
    frame_encode_hdr(hdr, &f);
    UTIL_MUST(evbuffer_add(m->workers[slot].chan->out, hdr, sizeof(hdr)),
              "a frame to a worker");
    if (len > 0)
        UTIL_MUST(evbuffer_add(m->workers[slot].chan->out, payload, len),
                  "a frame to a worker");
    chan_flush(m->workers[slot].chan);
}

/* The answer to an ask, to the worker that asked if it is still there:
 * true when sent. */
static bool cloauth_answer(struct master *m, const struct cloauth_req *rq,
                           unsigned op)
{
    int p = cloauth_find(m, rq->provider);

    if (p < 0 || !cloauth_worker_ok(m, rq->slot) ||
        m->workers[rq->slot].pid != rq->pid)
        return false;
    cloauth_send(m, rq->slot, op, (uint32_t)p, NULL, 0);
    return true;
}

/* How long after the last hand-over of pushed_fp it is handed again. */
static int64_t cloauth_push_wait(const struct cloauth_prov *pr)
{
    int64_t wait = CLOAUTH_PUSH_RETRY_MS;

    for (unsigned i = 1; i < pr->pushes && wait < CLOAUTH_PUSH_RETRY_MAX_MS;
         i++)
        wait *= 2;
    return wait < CLOAUTH_PUSH_RETRY_MAX_MS ? wait : CLOAUTH_PUSH_RETRY_MAX_MS;
}

/* Hands the cluster's newer tokens r to a worker (the one in prefer when
 * it can take them) to save in the token file, unless they were handed
 * over too recently (cloauth_push_wait). */
static void cloauth_push(struct cluster *c, int p, const struct ow_record *r,
                         int prefer)
{
    struct master *m = c->m;
    struct cloauth_prov *pr = cloauth_prov(c, p);
    int64_t now = util_now_ms();
    int slot = cloauth_worker_ok(m, prefer) ? prefer : -1;
    bool again = strcmp(r->fp, pr->pushed_fp) == 0;
    char *text;

    if (strcmp(r->fp, pr->fp) == 0 ||
        (again && now - pr->pushed_ms < cloauth_push_wait(pr)))
        return;
    for (int i = 0; i < CFG_MAX_WORKERS && slot < 0; i++)
        if (cloauth_worker_ok(m, i) && !m->workers[i].retiring)
            slot = i;
    if (slot < 0)
        return;                 /* none yet: the poll tries again */
    text = oauth_tokens_format(&r->tok);
    if (text == NULL)
        util_oom("tokens for a worker");
    cloauth_send(m, slot, FRAME_OAUTH_TOKENS, (uint32_t)p, text,
                 strlen(text));
    oauth_secret_free(&text);
    util_strlcpy(pr->pushed_fp, r->fp, sizeof(pr->pushed_fp));
    pr->pushed_ms = now;
    pr->pushes = again && pr->pushes < UINT_MAX ? pr->pushes + 1 : 1;
    if (pr->pushes == 1)
        log_msg(&m->log, LOG_INFO, NULL, "cluster: provider %s: newer "
                "tokens from instance %s, saved to its token file",
                m->cfg->providers[p].name, r->origin);
    else
        log_msg(&m->log, LOG_WARN, NULL, "cluster: provider %s: its token "
                "file still holds consumed tokens: the cluster's handed to "
                "a worker to save again (try %u; the next in %lld s at the "
                "earliest)", m->cfg->providers[p].name, pr->pushes,
                (long long)(cloauth_push_wait(pr) / 1000));
}

/* A reply holding a record (a bulk string): decoded and pushed. */
static void cloauth_take_record(struct cluster *c, int p,
                                const redisReply *e, int prefer)
{
    struct ow_record r;

    if (e->type != REDIS_REPLY_STRING)
        return;
    if (ow_record_decode(e->str, e->len, &r) < 0) {
        log_msg(&c->m->log, LOG_WARN, NULL, "cluster: provider %s: the "
                "stored tokens are malformed; ignored",
                c->m->cfg->providers[p].name);
        return;
    }
    cloauth_push(c, p, &r, prefer);
    oauth_tokens_free(&r.tok);
}

/* ---- Redis ---- */

static void cloauth_fetch_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = ac->data;
    struct cloauth_req *rq = priv;
    redisReply *reply = c != NULL ? cluster_reply(c, r) : NULL;
    int p;

    if (reply != NULL && (p = cloauth_find(c->m, rq->provider)) >= 0)
        cloauth_take_record(c, p, reply, -1);
    free(rq);
}

/* Our tokens consumed? Then the cluster's are fetched and saved here. */
static void cloauth_fetch(struct cluster *c, int p)
{
    struct cloauth_prov *pr = cloauth_prov(c, p);
    char tokens[CW_KEY_MAX], used[CW_KEY_MAX];
    struct cloauth_req *rq;

    if (c->state != CLUSTER_UP || c->cmd == NULL || pr->fp[0] == '\0' ||
        cloauth_key(c, tokens, "oauth:tokens", p) < 0 ||
        cloauth_key(c, used, "oauth:used", p) < 0)
        return;
    rq = cloauth_req_new(c->m, p, -1);
    if (redisAsyncCommand(c->cmd, cloauth_fetch_cb, rq, "EVAL %s 2 %s %s %s",
                          cloauth_fetch_lua, tokens, used,
                          pr->fp) != REDIS_OK) {
        free(rq);
        return;
    }
    cluster_sent(c);
}

/* A store that did not happen (Redis lost or refusing): the version is
 * announced again at the next look, unless a newer one came meanwhile. */
static void cloauth_unstored(struct cluster *c, int p,
                             const struct cloauth_req *rq)
{
    struct cloauth_prov *pr = cloauth_prov(c, p);

    if (strcmp(pr->fp, rq->fp) != 0)
        return;
    util_strlcpy(pr->fp, rq->prev, sizeof(pr->fp));
    memset(&pr->id, 0, sizeof(pr->id));
}

static void cloauth_store_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = ac->data;
    struct cloauth_req *rq = priv;
    redisReply *reply = r;
    int p;

    if (c == NULL || c->closing ||
        (p = cloauth_find(c->m, rq->provider)) < 0) {
        free(rq);
        return;
    }
    if (reply != NULL)
        cluster_answered(c);
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        if (reply != NULL)
            log_msg(&c->m->log, LOG_WARN, NULL, "cluster: Redis refused "
                    "the tokens of provider %s: %s", rq->provider,
                    reply->str);
        cloauth_unstored(c, p, rq);
    } else if ((reply->type == REDIS_REPLY_STATUS ||
                reply->type == REDIS_REPLY_STRING) &&
               strcmp(reply->str, "old") == 0) {
        cloauth_fetch(c, p);       /* ours are consumed: take theirs */
    } else {
        log_msg(&c->m->log, LOG_INFO, NULL, "cluster: provider %s: new "
                "tokens shared with the other instances", rq->provider);
    }
    free(rq);
}

/* Stores tok (whose fingerprint is fp, replacing the versions prev and
 * also, "" for none) as provider p's record and announces it. */
static void cloauth_store(struct cluster *c, int p,
                          const struct oauth_tokens *tok, const char *fp,
                          const char *prev, const char *also)
{
    struct ow_record rec = { .stamp_ms = util_wall_ms() };
    struct ow_msg msg;
    char tokens[CW_KEY_MAX], used[CW_KEY_MAX], lock[CW_KEY_MAX];
    char keep[CLOAUTH_NUM_MAX], marks[CLOAUTH_NUM_MAX], now[CLOAUTH_NUM_MAX];
    char text[OW_MSG_MAX];
    struct cloauth_req *rq;
    char *record;

    memset(&msg, 0, sizeof(msg));
    util_strlcpy(rec.origin, c->instance, sizeof(rec.origin));
    util_strlcpy(rec.fp, fp, sizeof(rec.fp));
    util_strlcpy(rec.prev, prev[0] ? prev : OW_FP_NONE, sizeof(rec.prev));
    util_strlcpy(msg.origin, c->instance, sizeof(msg.origin));
    util_strlcpy(msg.fp, fp, sizeof(msg.fp));
    util_strlcpy(msg.provider, c->m->cfg->providers[p].name,
                 sizeof(msg.provider));
    if (c->state != CLUSTER_UP || c->cmd == NULL ||
        ow_msg_encode(text, sizeof(text), &msg) < 0 ||
        cloauth_key(c, tokens, "oauth:tokens", p) < 0 ||
        cloauth_key(c, used, "oauth:used", p) < 0 ||
        cloauth_key(c, lock, "oauth:lock", p) < 0)
        return;
    /* rec.tok borrows tok's strings: encode reads them, nothing frees. */
    rec.tok = *tok;
    record = ow_record_encode(&rec);
    if (record == NULL)
        return;
    snprintf(keep, sizeof(keep), "%lld", (long long)CLOAUTH_KEEP_MS);
    snprintf(marks, sizeof(marks), "%d", CLOAUTH_USED_MAX);
    snprintf(now, sizeof(now), "%lld", (long long)rec.stamp_ms);
    rq = cloauth_req_new(c->m, p, -1);
    util_strlcpy(rq->fp, fp, sizeof(rq->fp));
    util_strlcpy(rq->prev, prev, sizeof(rq->prev));
    if (redisAsyncCommand(c->cmd, cloauth_store_cb, rq,
                          "EVAL %s 4 %s %s %s %s %s %s %s %s %s %s %s %s %s",
                          cloauth_store_lua, tokens, used,
                          c->channels[CLUSTER_PART_OAUTH], lock, record, fp,
                          rec.prev, text, c->instance, keep, marks, now,
                          also[0] ? also : OW_FP_NONE) == REDIS_OK)
        cluster_sent(c);
    else
        free(rq);
    oauth_secret_free(&record);
}

/* ---- the token files ---- */

/* Reads provider p's token file when it changed since last read, Redis
 * up. Tokens new here (not the ones a worker just saved for the
 * cluster) are stored and announced. */
static void cloauth_check(struct cluster *c, int p)
{
    struct cloauth_prov *pr = cloauth_prov(c, p);
    struct oauth_file_id id;
    struct oauth_tokens tok;
    char fp[OW_FP_LEN + 1], prev[OW_FP_LEN + 1], err[OAUTH_ERR_MAX];
    bool first = !pr->read;

    pr->next_check_ms = util_now_ms() + CLOAUTH_CHECK_MS;
    /* Without Redis nothing is read: what changes meanwhile is found,
     * and announced, once it is back. */
    if (c->state != CLUSTER_UP || c->cmd == NULL)
        return;
    if (oauth_file_stat(pr->token_file, &id) < 0 ||
        (pr->read && oauth_file_same(&id, &pr->id)))
        return;
    memset(&tok, 0, sizeof(tok));
    if (oauth_tokens_load(pr->token_file, &tok, &id, err, sizeof(err)) < 0 ||
        ow_fingerprint(&tok, fp) < 0) {
        /* Being rewritten, perhaps: looked at again next time. */
        oauth_tokens_free(&tok);
        return;
    }
    pr->read = true;
    pr->id = id;
    util_strlcpy(prev, pr->fp, sizeof(prev));
    util_strlcpy(pr->fp, fp, sizeof(pr->fp));
    /* The version handed to a worker for the cluster may have been on
     * disk between two looks: replaced now too. */
    if (!first && strcmp(prev, fp) != 0 &&
        strcmp(fp, pr->pushed_fp) != 0)
        cloauth_store(c, p, &tok, fp, prev,
                      strcmp(pr->pushed_fp, prev) != 0 ? pr->pushed_fp : "");
    oauth_tokens_free(&tok);
}

/* ---- the part's hooks ---- */

void cloauth_sync(struct cluster *c)
{
    const struct cfg *cfg = c->m->cfg;

    for (int p = 0; p < cfg->provider_count; p++) {
        if (!cloauth_is_oauth(&cfg->providers[p]))
            continue;
        cloauth_check(c, p);
        cloauth_fetch(c, p);
    }
}

void cloauth_poll(struct cluster *c, int64_t now)
{
    const struct cfg *cfg = c->m->cfg;

    for (int p = 0; p < cfg->provider_count; p++) {
        struct cloauth_prov *pr;

        if (!cloauth_is_oauth(&cfg->providers[p]))
            continue;
        pr = cloauth_prov(c, p);
        if (now < pr->next_check_ms)
            continue;
        cloauth_check(c, p);
        /* Tokens handed to a worker that never saved them. */
        if (pr->pushed_fp[0] != '\0' && strcmp(pr->pushed_fp, pr->fp) != 0 &&
            now - pr->pushed_ms >= cloauth_push_wait(pr))
            cloauth_fetch(c, p);
    }
}

void cloauth_message(struct cluster *c, const char *payload, size_t len)
{
    struct ow_msg msg;
    int p;

    if (ow_msg_decode(payload, len, &msg) < 0) {
        log_msg(&c->m->log, LOG_DEBUG, NULL, "cluster: a malformed OAuth "
                "notice ignored");
        return;
    }
    if (strcmp(msg.origin, c->instance) == 0 ||
        (p = cloauth_find(c->m, msg.provider)) < 0)
        return;
    cloauth_check(c, p);
    if (strcmp(msg.fp, cloauth_prov(c, p)->fp) != 0)
        cloauth_fetch(c, p);
}

void cloauth_free(struct cluster *c)
{
    if (c == NULL || c->oauth == NULL)
        return;
    for (int p = 0; p < CFG_MAX_PROVIDERS; p++)
        free(c->oauth->prov[p].token_file);
    free(c->oauth);
    c->oauth = NULL;
}

/* ---- the workers' frames ---- */

static void cloauth_release(struct cluster *c, int p);

static void cloauth_lock_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = ac->data;
    struct cloauth_req *rq = priv;
    redisReply *reply = r;
    unsigned op = FRAME_OAUTH_ALONE;

    if (c == NULL || c->closing) {
        free(rq);
        return;
    }
    if (reply != NULL) {
        cluster_answered(c);
        if (reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
            reply->element[0]->type == REDIS_REPLY_STRING) {
            const char *what = reply->element[0]->str;

            if (strcmp(what, "granted") == 0) {
                op = FRAME_OAUTH_GRANTED;
            } else {
                int p = cloauth_find(c->m, rq->provider);

                op = FRAME_OAUTH_BUSY;
                if (strcmp(what, "newer") == 0 && reply->elements == 2 &&
                    p >= 0)
                    cloauth_take_record(c, p, reply->element[1], rq->slot);
            }
        }
    }
    /* No answer (Redis lost meanwhile, or refused): the flock alone. A
     * lock granted to a worker that is gone is released at once; one it
     * got is released when it says so, or when it dies. */
    if (op == FRAME_OAUTH_GRANTED) {
        int p = cloauth_find(c->m, rq->provider);

        if (p >= 0 && cloauth_answer(c->m, rq, op)) {
            struct cloauth_prov *pr = cloauth_prov(c, p);

            pr->held = true;
            pr->holder = rq->slot;
        } else if (p >= 0) {
            cloauth_release(c, p);
        }
    } else {
        (void)cloauth_answer(c->m, rq, op);
    }
    free(rq);
}

static void cloauth_ask(struct cluster *c, int slot, int p)
{
    struct cloauth_prov *pr;
    char lock[CW_KEY_MAX], used[CW_KEY_MAX], tokens[CW_KEY_MAX];
    char ms[CLOAUTH_NUM_MAX];
    struct cloauth_req *rq = cloauth_req_new(c->m, p, slot);

    if (c->state != CLUSTER_UP || c->cmd == NULL)
        goto alone;
    cloauth_check(c, p);
    pr = cloauth_prov(c, p);
    if (pr->fp[0] == '\0' || cloauth_key(c, lock, "oauth:lock", p) < 0 ||
        cloauth_key(c, used, "oauth:used", p) < 0 ||
        cloauth_key(c, tokens, "oauth:tokens", p) < 0)
        goto alone;
    snprintf(ms, sizeof(ms), "%d", CLOAUTH_LOCK_MS);
    if (redisAsyncCommand(c->cmd, cloauth_lock_cb, rq,
                          "EVAL %s 3 %s %s %s %s %s %s", cloauth_lock_lua,
                          lock, used, tokens, c->instance, ms,
                          pr->fp) != REDIS_OK)
        goto alone;
    cluster_sent(c);
    return;
alone:
    (void)cloauth_answer(c->m, rq, FRAME_OAUTH_ALONE);
    free(rq);
}

static void cloauth_release_cb(redisAsyncContext *ac, void *r, void *priv)
{
    struct cluster *c = ac->data;

    (void)priv;
    if (c != NULL)
        (void)cluster_reply(c, r);
}

/* A worker's refresh is over: its new tokens (if any) go out first, then
 * the lock is released. */
static void cloauth_release(struct cluster *c, int p)
{
    char lock[CW_KEY_MAX];

    cloauth_check(c, p);
    if (c->state != CLUSTER_UP || c->cmd == NULL ||
        cloauth_key(c, lock, "oauth:lock", p) < 0)
        return;
    if (redisAsyncCommand(c->cmd, cloauth_release_cb, NULL, "EVAL %s 1 %s %s",
                          cloauth_release_lua, lock, c->instance) == REDIS_OK)
        cluster_sent(c);
}

void cloauth_worker_frame(struct master *m, int slot, unsigned op,
                          uint32_t provider)
{
    struct cluster *c = m->cluster;
    int p = provider < (uint32_t)m->cfg->provider_count ? (int)provider : -1;

    if (p >= 0 && !cloauth_is_oauth(&m->cfg->providers[p]))
        p = -1;
    if (op == FRAME_OAUTH_ASK) {
        /* Always answered: the worker waits for it. */
        if (c == NULL || p < 0)
            cloauth_send(m, slot, FRAME_OAUTH_ALONE, provider, NULL, 0);
        else
            cloauth_ask(c, slot, p);
    } else if (op == FRAME_OAUTH_RELEASE && c != NULL && p >= 0) {
        cloauth_prov(c, p)->held = false;
        cloauth_release(c, p);
    }
}

void cloauth_worker_lost(struct master *m, int slot)
{
    struct cluster *c = m->cluster;

    if (c == NULL || c->oauth == NULL)
        return;
    for (int p = 0; p < m->cfg->provider_count; p++) {
        struct cloauth_prov *pr;

        if (!cloauth_is_oauth(&m->cfg->providers[p]))
            continue;
        pr = cloauth_prov(c, p);
        if (!pr->held || pr->holder != slot)
            continue;
        pr->held = false;
        log_msg(&m->log, LOG_WARN, NULL, "cluster: provider %s: the worker "
                "refreshing its tokens died: the cluster's refresh lock "
                "is released", m->cfg->providers[p].name);
        cloauth_release(c, p);
    }
}
