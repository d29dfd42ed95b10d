/* oauth_lock.h - the refresh lock beside a token file. */
#ifndef RCC_OAUTH_LOCK_H
#define RCC_OAUTH_LOCK_H

#include <stddef.h>

/* The refresh lock: "<token_file>.lock", held with flock by whoever
 * refreshes or rewrites the token file. Opens (creating it 0600) and
 * returns its descriptor, refusing a symlink, anything but a regular file
 * owned by us with one link. -1 with err. */
int oauth_lock_open(const char *token_file, char *err, size_t errlen);
/* Takes the lock on fd, waiting at most timeout_ms (polling; for tools,
 * not for an event loop). 0, or -1 with errno (ETIMEDOUT). */
int oauth_lock_wait(int fd, int timeout_ms);

#endif
