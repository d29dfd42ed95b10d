/* relay.h - the master's end of each worker's channel (relay.c): frames
 * in, to the requests they are for; control frames out. */
#ifndef RCC_RELAY_H
#define RCC_RELAY_H

#include <stdint.h>

#include "chan.h"

struct master;

/* The channel's read callback: relays every whole frame in ch->in. */
void relay_read_cb(struct chan *ch, void *arg);
/* Sends a header-only frame (CANCEL, PAUSE, RESUME, SHUTDOWN) to worker
 * slot at once; nothing when it has no channel. */
void relay_send(struct master *m, int slot, uint8_t type, uint32_t job,
                uint32_t gen);
/* Worker slot is gone: relays the frames it left (unless it was killed
 * for a bad one), then runs its jobs again or fails them. Its channel
 * is still open; the supervisor frees it afterwards. */
void relay_worker_lost(struct master *m, int slot);

#endif
