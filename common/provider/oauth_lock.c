/* oauth_lock.c - the refresh lock: "<token_file>.lock", flock'd. */
#include "oauth.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "jsonscan.h"
#include "oauth_json.h"
#include "privs.h"
#include "util.h"

/* ---- the refresh lock ---------------------------------------------- */

int oauth_lock_open(const char *token_file, char *err, size_t errlen)
{
    char path[OAUTH_PATH_MAX];
    struct stat st;
    int fd;

    if (snprintf(path, sizeof(path), "%s%s", token_file, OAUTH_LOCK_SUFFIX)
        >= (int)sizeof(path)) {
        oauth_fail(err, errlen, "%s: path too long", token_file);
        return -1;
    }
    /* Never through a symlink, and only a plain file of our own: anyone
     * who can write the directory must not make us truncate another. */
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
                    O_NONBLOCK, OAUTH_FILE_MODE);
    if (fd < 0) {
        oauth_fail(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_uid != geteuid() || st.st_nlink != 1) {
        oauth_fail(err, errlen, "%s: not a regular file of ours with one "
                   "link; refusing to use it", path);
        close(fd);
        return -1;
    }
    return fd;
}

int oauth_lock_wait(int fd, int timeout_ms)
{
    const struct timespec step = { 0, OAUTH_LOCK_STEP_MS * 1000000L };

    for (int waited = 0;; waited += OAUTH_LOCK_STEP_MS) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return 0;
        if (errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        if (waited >= timeout_ms) {
            errno = ETIMEDOUT;
            return -1;
        }
        nanosleep(&step, NULL);
    }
}
