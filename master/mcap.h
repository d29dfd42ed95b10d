/* mcap.h - the master's part of request capture (mcap.c): whether a
 * request is captured (the `capture` group, the run-time switch, the
 * X-Pipeline-Capture header), what the client sent and was sent, the
 * worker's attempts (CAPTURE frames), and the file DIR/REQUEST_ID.json
 * written when the request ends, on the offload thread (never on the
 * loop), with rotation beyond max_files. An uncaptured request costs a
 * NULL test per hook. */
#ifndef RCC_MASTER_MCAP_H
#define RCC_MASTER_MCAP_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>

struct master;
struct mreq;
struct http_req;

/* The header that asks for one request's capture, and its value. */
#define MCAP_HEADER      "x-pipeline-capture"
#define MCAP_HEADER_ON   "1"

/* Sets up m's capture state from m->cfg (the switch starts as
 * capture.enabled). 0, or -1 when out of memory. */
int mcap_init(struct master *m);
/* After a reload: the switch takes the new capture.enabled. */
void mcap_reconfigure(struct master *m);
/* The run-time switch (pipelinectl capture on|off). -1 when the
 * configuration has no capture group. */
int mcap_switch(struct master *m, bool on);
/* Is capture switched on (stats)? */
bool mcap_enabled(const struct master *m);
/* Waits for the files being written, then frees the state. */
void mcap_free(struct master *m);

/* Is the request in req to be captured? (Before its job is queued: the
 * job gets SHM_JOB_CAPTURE.) */
bool mcap_wanted(const struct master *m, const struct http_req *req);
/* The captured request mr starts: keeps the client's body (from req,
 * during the request callback). */
void mcap_begin(struct mreq *mr, const struct http_req *req);
/* A CAPTURE frame's len bytes, taken from in; more: pieces follow. */
void mcap_piece(struct mreq *mr, struct evbuffer *in, size_t len,
                bool more);
/* The client is sent len bytes (from in, not drained; or data). */
void mcap_sent_buf(struct mreq *mr, struct evbuffer *in, size_t len);
void mcap_sent(struct mreq *mr, const void *data, size_t len);
/* What the client was sent so far is void (its job runs again). */
void mcap_sent_reset(struct mreq *mr);
/* The request ends: its file is queued for writing, mr->cap freed. */
void mcap_finish(struct mreq *mr);
/* Frees mr->cap without a file (at exit). */
void mcap_discard(struct mreq *mr);

#endif
