/* oauth_file.h - the token file on disk: load with the identity of the
 * version read, atomic save (0600, fsync'd, symlinks kept), the rules
 * for a save run as root (done by a child that became the path's owner),
 * and iFlow's settings file. These calls block on the disk: an event
 * loop runs oauth_tokens_save through offload.h. */
#ifndef RCC_OAUTH_FILE_H
#define RCC_OAUTH_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "oauth.h"

/* What identifies one version of a file on disk, to notice a change. */
struct oauth_file_id {
    dev_t dev;
    ino_t ino;
    int64_t mtime_ns;
    int64_t size;
};


/* Reads path (at most OAUTH_FILE_MAX bytes) into t and, when id is not
 * NULL, the identity of the version read. -1 with err. */
int oauth_tokens_load(const char *path, struct oauth_tokens *t,
                      struct oauth_file_id *id, char *err, size_t errlen);
/* Writes t to path atomically: a temporary file in the same directory
 * created with mode 0600, written, fsync'd, renamed over path, and the
 * directory fsync'd. The directory is created when missing, with every
 * missing parent (like mkdir -p), each component made 0700. A path that
 * is a symlink stays one (the file it points to is replaced). -1 with
 * err; no temporary file is left behind.
 * Run as root, the path belongs to the owner of the last directory on it
 * that is not root's (that user can replace anything below): the save
 * is refused when oauth_save_check says so, and otherwise done by a
 * child process that has become that user, so no link the user planted
 * can make root write elsewhere. In a path of root's own, the replaced
 * file's owner and group are kept. */
int oauth_tokens_save(const char *path, const struct oauth_tokens *t,
                      char *err, size_t errlen);

/* What a save as root knows about the token file (oauth_tokens_save
 * gathers it with lstat, never following the last link). */
struct oauth_save_facts {
    uid_t dir_owner;         /* the path's owner, as above; 0: root's */
    bool dir_open_gap;       /* its directories are still to be made,
                              * inside a world-writable one (/tmp) */
    bool link;               /* the token file is a symlink */
    uid_t link_owner;
    bool target_exists;      /* what the link's text names exists */
    bool target_link;        /* and is a symlink itself */
    uid_t target_owner;
    uid_t target_dir_owner;  /* the owner of the path the link names */
};
/* The rule for a save as root: a symlinked token file is written through
 * only when the link, the file it names and that file's path all belong
 * to the owner of the link's directory (a dangling link is replaced by
 * the file); root makes no directory inside a world-writable one. 0, or
 * -1 with the reason in err. */
int oauth_save_check(const struct oauth_save_facts *f, const char *path,
                     char *err, size_t errlen);
/* 0 and *id, or -1 (errno set) when path cannot be stat'd. */
int oauth_file_stat(const char *path, struct oauth_file_id *id);
bool oauth_file_same(const struct oauth_file_id *a,
                     const struct oauth_file_id *b);

/* iFlow's settings.json: "apiKey" and "baseUrl", either may be absent
 * or empty (NULL); both malloc'd, the caller frees (*api_key with
 * oauth_secret_free). -1 with err (both NULL) when unreadable, not a JSON
 * object, or one of them is not a string. */
int oauth_iflow_settings_load(const char *path, char **api_key,
                              char **base_url, char *err, size_t errlen);

#endif
