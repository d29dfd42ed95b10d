/* worker_int.h - what the worker's modules share: the worker context, a
 * call (one job's life in the worker, over all its attempts), and the
 * provider interface. */
#ifndef RCC_WORKER_INT_H
#define RCC_WORKER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "apierror.h"
#include "chan.h"
#include "config.h"
#include "log.h"
#include "shm.h"
#include "sse.h"
#include "worker.h"

#include "call.h"
#include "httpc.h"
#include "outq.h"
#include "wcap.h"

#define WORKER_TARGET_WORDS    ((CFG_MAX_TARGETS + 63) / 64)
#define WORKER_MAX_UPSTREAM_BODY (16u * 1024 * 1024)
#define WORKER_MAX_SSE_EVENT   (1u * 1024 * 1024)
#define WORKER_EASY_POOL       64
#define WORKER_BUSY_WAIT_MS    5   /* re-check when every target is full */
/* Jobs one pull may set aside because every target of theirs is out of
 * rate budget (they go back to their place in the queue when the pull
 * ends, so the jobs behind them get their turn). */
#define WORKER_PARK_MAX        64
/* An OAuth call refused with 401/403 tries again with new tokens: first
 * those another process may have written meanwhile, then a refresh. */
#define WORKER_AUTH_RETRIES    2
/* Frames waiting for the master beyond the high mark pause the streams
 * that produce them, until the backlog is down to the low mark. A new
 * stream's first bytes are never paused and skip this backlog (they wait
 * behind one WORKER_OUT_WINDOW at most), so it only bounds memory. */
#define WORKER_OUT_HIGH_WATER  (1024 * 1024)
#define WORKER_OUT_LOW_WATER   (256 * 1024)
/* Frames written to the master at a time; a stream's first chunk skips
 * the backlog beyond this window (outq_queue). */
#define WORKER_OUT_WINDOW      (64 * 1024)
/* Frames from the master are a few control frames at a time. */
#define WORKER_READ_MAX        (16 * 1024)

struct call;
struct worker;
struct auth_provider;
struct probe_set;

/* What a curl transfer reports to when it ends: CURLINFO_PRIVATE of
 * every easy handle on the multi points to one, inside whatever owns the
 * transfer (a call's attempt, an OAuth refresh). upstream.c calls done
 * and knows nothing else of the owner. */
struct upstream_xfer {
    void (*done)(struct upstream_xfer *x, CURLcode result);
};

/* A provider adapter: the runtime part of a provider kind (its static
 * part, the descriptor, is provkind.h). The call logic reaches adapters
 * only through these pointers; adapters call the call_, outq and
 * upstream_ functions directly. */
struct provider_ops {
    const char *type;
    /* Sets up the adapter's per-worker state for every provider of its
     * kind in w->cfg (once per worker, NULL when none). 0 or -1. */
    int (*init)(struct worker *w);
    /* Frees it; its transfers leave the multi first. NULL when none. */
    void (*free)(struct worker *w);
    /* Starts one attempt of c on c->target. 0 when started (the outcome
     * arrives later through call_* functions), -1 when it failed at
     * once (the adapter has reported it with call_attempt_failed). */
    int (*start)(struct call *c);
};

extern const struct provider_ops provider_mock_ops;
extern const struct provider_ops provider_openai_ops;
extern const struct provider_ops provider_anthropic_ops;

/* provider_openai.c's curl header callback, for every HTTP adapter (its
 * data a struct call): the status line resets, Content-Type sets
 * json_type, retry-after (seconds or an HTTP date) retry_after_ms. */
size_t provider_header_cb(char *buf, size_t size, size_t n, void *arg);

const struct provider_ops *provider_for(const struct cfg_provider *p);
/* Runs every adapter's init (provider_free undoes it; safe after a
 * failed init). 0 or -1. */
int provider_init(struct worker *w);
void provider_free(struct worker *w);

struct worker {
    const struct cfg *cfg;
    const struct slots_map *slots; /* where cfg's targets live in shm */
    struct shm_view shm;
    struct shm_worker *self;
    int slot;
    struct log log;
    struct event_base *base;
    struct chan master;            /* socketpair to the master */
    struct event *flush_ev;        /* writes the frames a loop turn made */
    bool flush_pending;            /* flush_ev is active */
    bool master_ok;                /* master is set up (chan_free it) */
    /* The open CHUNK frame: answer bytes of one call not framed yet */
    struct evbuffer *stage;
    uint32_t stage_job, stage_gen;
    bool stage_open;
    bool stage_first;              /* it holds a stream's first bytes */
    struct evbuffer *bulk;         /* whole frames behind the window */
    bool urgent;                   /* a stream's first bytes are staged */
    struct event *wake_ev;
    struct event *term_ev;
    int wake_fd;
    CURLM *multi;
    struct event *curl_timer;
    /* upstream.c's: the client of its own for plain-HTTP upstreams at an
     * address (httpc.c); libcurl serves every other. */
    struct httpc *httpc;
    CURL *easy_pool[WORKER_EASY_POOL];
    int easy_pool_len;
    /* upstream.c's: the proxy environment as libcurl would read it,
     * read once (NULL: none), so no transfer looks it up again. */
    char *proxy_http, *proxy_https, *no_proxy;
    /* upstream.c's: what it keeps per socket curl watches, by fd (NULL:
     * none), socks_cap entries. */
    struct upstream_sock **socks;
    int socks_cap;
    /* provider_openai.c's: request headers per provider, [2p] plain and
     * [2p+1] streaming, built once (they hold the provider's key), and
     * its chat URL, parsed once, and the httpc destination of that URL
     * when httpc serves it (else NULL; owned by w->httpc). */
    struct curl_slist **headers;
    CURLU **urls;
    struct httpc_dest **dests;
    struct auth_provider *auth;    /* per provider: OAuth state (auth.c) */
    /* Scratch for an answer's translated events (door_anthropic.c and
     * the anthropic adapter), emptied after each event; provider.c's. */
    struct evbuffer *door_out;
    struct probe_set *probes;      /* health probes (probe.c) */
    struct call **calls;           /* by job index */
    int active;
    int max_active;
    int paused_local;              /* calls waiting for the backlog */
    bool stopping;
    bool pulling;                  /* inside worker_pull */
    bool blocked;                  /* the queue's head found every target
                                      full; wait for a slot */
    uint64_t rng;                  /* xorshift state for jitter */
    /* Hooks, so that call.c and outq.c never call the loop back: */
    const struct provider_ops **provider_ops; /* per provider (the loop's
                                                 provider_for) */
    void (*call_ended)(struct worker *w);     /* a call ended: pull more */
    void (*resume_reading)(struct call *c);   /* the backlog drained */
    /* A fresh job must wait for a rate budget until at_ms (monotonic):
     * the loop puts it back in the queue and pulls again then. */
    void (*park)(struct call *c, int64_t at_ms);
    struct call *parked[WORKER_PARK_MAX];    /* this pull's, see park */
    int parked_count;
    struct event *budget_timer;    /* pulls again when a budget refills */
    int64_t budget_at_ms;          /* when it fires; INT64_MAX: idle */
};

struct call {
    struct worker *w;
    uint32_t job;
    uint32_t gen;
    struct shm_job *sj;
    int vmodel;                    /* index in w->cfg (not a slot) */
    int direct_target;             /* the one target it may use, or -1 */
    int target;                    /* current attempt's target, or -1 */
    bool stream;
    int attempts;                  /* upstream calls made for the job */
    int inherited;                 /* of those, made before this call
                                      (by a worker that died) */
    uint64_t tried[WORKER_TARGET_WORDS];
    int64_t start_ms;
    int64_t deadline_ms;
    int64_t attempt_start_ms;
    int64_t last_delay_ms;         /* decorrelated jitter state */
    bool head_sent;
    bool finished;
    bool unhealthy_seen;           /* the last pick skipped an unhealthy
                                      provider's target */
    bool paused;                   /* the master asked: its client is slow */
    bool paused_local;             /* our output to the master is full */
    struct event *timer;           /* backoff before the next attempt */
    struct event *adapter_timer;   /* owned by the adapter (mock latency) */
    struct event *idle_timer;      /* no upstream bytes for too long */
    int64_t touch_ms;              /* when the last upstream bytes came */
    const char *proto_error;       /* why a transfer was aborted by us */
    /* Set by whoever holds the call parked outside the multi (auth.c):
     * takes it off its list when the call ends or moves on. */
    void (*unpark)(struct call *c);
    /* the attempt in flight */
    struct upstream_xfer xfer;     /* its CURLINFO_PRIVATE */
    CURL *easy;
    struct httpc_xfer hx;          /* its transfer when httpc makes it */
    bool native;                   /* the attempt is httpc's (else curl's) */
    char *req_body;                /* owned */
    /* The translation state of an answer made in another shape than the
     * target's (door_anthropic.c, provider_anthropic.c): malloc'd plain
     * memory, freed with the attempt. NULL when none. */
    void *door_state;
    size_t req_len;
    struct evbuffer *resp;         /* plain answer or error body */
    long http_status;
    bool json_type;                /* Content-Type said JSON */
    int retry_after_ms;            /* from the upstream, -1 if none */
    struct sse_parser sse;
    bool sse_done;                 /* saw data: [DONE] */
    bool sse_finished;             /* saw a finish_reason */
    bool strip_usage;              /* we asked for include_usage, not the
                                      client: its usage chunk is ours */
    bool too_large;
    char curl_err[CURL_ERROR_SIZE];
    /* How its last failed attempt failed: what it answers when no
     * target is left to try (apierr_final). */
    struct apierr_kept last_failure;
    /* OAuth (auth.c) */
    struct call *auth_next;        /* parked: waiting for tokens */
    bool auth_parked;
    int auth_retries;              /* retries after a 401/403 */
    uint32_t auth_gen;             /* the tokens this attempt was signed with */
    struct curl_slist *auth_headers; /* this attempt's, with its token */
    struct wcap *cap;              /* capture (wcap.c); NULL unless the
                                      job is captured */
    /* metrics */
    uint64_t bytes;
    uint32_t prompt_tokens;
    uint32_t completion_tokens;
    uint16_t upstream_status;
};

/* upstream.c: an attempt's transfer, made by httpc.c for a plain-HTTP
 * URL at an address and by libcurl's multi, driven by the worker's event
 * loop, for every other. */
int upstream_init(struct worker *w);
void upstream_free(struct worker *w);
/* What an adapter's attempt sends, and to whom its answer goes. */
struct upstream_req {
    int provider;                  /* whose prebuilt URL (w->urls) */
    const char *url;               /* or this one (an OAuth token's) */
    const struct curl_slist *headers;
    curl_write_callback write_cb;  /* their data c */
    curl_write_callback header_cb;
    void (*done)(struct upstream_xfer *x, CURLcode result);
};
/* Starts c's attempt: POSTs c->req_body as r says, to end by c's
 * deadline. httpc makes it when the provider's URL has a destination
 * (w->dests) and r->url is NULL, else libcurl, with the proxy for the
 * URL's scheme from the proxy environment read at start (http_proxy,
 * https_proxy/HTTPS_PROXY, all_proxy/ALL_PROXY, as libcurl reads them:
 * no lookup per transfer). 0, or -1 when it could not start (nothing
 * reported). */
int upstream_start(struct call *c, const struct upstream_req *r);
/* The httpc destination for url, or NULL when libcurl must call it (not
 * plain HTTP at an address, or an HTTP proxy is set). */
struct httpc_dest *upstream_dest(struct worker *w, const char *url);
/* The status of c's current answer once its head came, else 0. */
long upstream_status(const struct call *c);
/* Stops or restarts reading c's answer (the bytes stay in the socket,
 * so TCP slows the upstream down in turn). */
void upstream_pause(struct call *c, bool pause);
/* Does c make its attempts over HTTP (libcurl or httpc)? */
bool upstream_used(const struct call *c);
/* A pooled handle, or a new one with the options every attempt shares
 * (upstream_attempt_options). */
CURL *upstream_easy_get(struct worker *w);
void upstream_easy_put(struct worker *w, CURL **easy);
/* Adds easy to the multi; its CURLINFO_PRIVATE must point to a struct
 * upstream_xfer (told when it ends). 0 or -1. */
int upstream_add(struct worker *w, CURL *easy);
/* Takes easy off the multi (NULL-safe); it is not told. */
void upstream_remove(struct worker *w, CURL *easy);
void upstream_abort(struct worker *w, struct call *c);
/* Releases the attempt's request and answer buffers. */
void upstream_attempt_clear(struct call *c);

/* auth.c: OAuth providers' tokens (used by provider_openai.c). */
int auth_init(struct worker *w);
void auth_free(struct worker *w);
/* Before an attempt to an OAuth provider: 1 when its tokens are ready
 * (auth_secret / auth_chat_url give them), 0 when the call is parked
 * until a refresh ends (restart(c) then starts its attempt again), -1
 * when the attempt failed (reported with call_attempt_failed). */
int auth_prepare(struct call *c, int (*restart)(struct call *c));
/* For a health probe of OAuth provider p (worker/probe.c): 1 with the
 * tokens' key and chat URL (owned by the auth state, valid until the
 * loop runs again) and their generation, 0 when a refresh is under way (started now if
 * needed: skip this round), -1 when they are not usable (expired and not
 * refreshable, refused, unreadable). */
int auth_probe_credentials(struct worker *w, int provider,
                           const char **bearer, const char **chat_url,
                           uint32_t *gen);
/* The API refused (401/403) a probe signed with the tokens of generation
 * gen (from auth_probe_credentials): they are marked for a refresh, as
 * a refused call's are. */
void auth_probe_refused(struct worker *w, int provider, uint32_t gen);
/* The key the attempt is signed with (the kind's sign puts it in its
 * header lines); the chat URL the tokens give. */
const char *auth_secret(const struct call *c);
const char *auth_chat_url(const struct call *c);
/* The API refused the tokens c was signed with: true when another try
 * may help (newer tokens were read meanwhile, or these are marked for a
 * refresh), false when they are fresh and a refresh would not help. */
bool auth_rejected(struct call *c);
/* The API took the tokens c was signed with. */
void auth_accepted(const struct call *c);
/* A FRAME_OAUTH from the master (cluster mode): op an enum
 * frame_oauth_op, provider an index of the configuration, payload the
 * cluster's newer tokens (FRAME_OAUTH_TOKENS). Anything unexpected is
 * ignored. */
void auth_cluster_frame(struct worker *w, unsigned op, uint32_t provider,
                        const uint8_t *payload, size_t len);

#endif
