/* oauth_file.c - the token file: strict load with the identity of the
 * version read, atomic save (temporary file, fsync, rename, directory
 * fsync), as root through a child that became the path's owner, and
 * iFlow's settings file. Blocking: see oauth_file.h. */
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

#define OAUTH_DIR_MODE        0700
#define OAUTH_TMP_SUFFIX      ".tmp.XXXXXX"
#define OAUTH_NS_PER_S        1000000000LL

/* ---- files --------------------------------------------------------- */

static void oauth_file_id_from(const struct stat *st, struct oauth_file_id *id)
{
    id->dev = st->st_dev;
    id->ino = st->st_ino;
    id->mtime_ns = (int64_t)st->st_mtim.tv_sec * OAUTH_NS_PER_S +
                   st->st_mtim.tv_nsec;
    id->size = (int64_t)st->st_size;
}

int oauth_file_stat(const char *path, struct oauth_file_id *id)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return -1;
    oauth_file_id_from(&st, id);
    return 0;
}

bool oauth_file_same(const struct oauth_file_id *a,
                     const struct oauth_file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino &&
           a->mtime_ns == b->mtime_ns && a->size == b->size;
}

/* Reads the regular file at path, at most OAUTH_FILE_MAX bytes, into a
 * malloc'd NUL-terminated buffer (*len bytes) that the caller frees with
 * oauth_secret_free; *id (when not NULL) is the version read. NULL with
 * "PATH: reason" in err. */
static char *oauth_read_file(const char *path, size_t *len,
                             struct oauth_file_id *id, char *err,
                             size_t errlen)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    int fd;

    /* O_NONBLOCK: a FIFO put there must not stop the event loop. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        oauth_fail(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        oauth_fail(err, errlen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        oauth_fail(err, errlen, "%s: not a regular file", path);
        goto fail;
    }
    if (st.st_size > OAUTH_FILE_MAX) {
        oauth_fail(err, errlen, "%s: larger than %d bytes", path,
                   OAUTH_FILE_MAX);
        goto fail;
    }
    /* One byte more than allowed, to see a file that grew since fstat. */
    buf = malloc(OAUTH_FILE_MAX + 2);
    if (buf == NULL) {
        oauth_fail(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, OAUTH_FILE_MAX + 1 - n);

        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            oauth_fail(err, errlen, "%s: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > OAUTH_FILE_MAX) {
            oauth_fail(err, errlen, "%s: larger than %d bytes", path,
                       OAUTH_FILE_MAX);
            goto fail;
        }
    }
    buf[n] = '\0';
    close(fd);
    if (id != NULL)
        oauth_file_id_from(&st, id);
    *len = n;
    return buf;
fail:
    if (buf != NULL) {
        explicit_bzero(buf, n);
        free(buf);
    }
    close(fd);
    return NULL;
}

int oauth_tokens_load(const char *path, struct oauth_tokens *t,
                      struct oauth_file_id *id, char *err, size_t errlen)
{
    char reason[OAUTH_ERR_MAX];
    char *text;
    size_t len = 0;
    int rc;

    memset(t, 0, sizeof(*t));
    text = oauth_read_file(path, &len, id, err, errlen);
    if (text == NULL)
        return -1;
    rc = oauth_tokens_parse(text, len, t, reason, sizeof(reason));
    if (rc < 0)
        oauth_fail(err, errlen, "%s: %s", path, reason);
    explicit_bzero(text, len);
    free(text);
    return rc;
}

/* The directory part of path (malloc'd, the caller frees): "." for a bare
 * name, "/" for a file in the root. NULL on ENOMEM. */
static char *oauth_dirname(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Creates dir and every missing parent, each with mode 0700 (the
 * directories we make for a token file are nobody else's business). An
 * existing component is left as it is. */
static int oauth_mkdirs(const char *dir, char *err, size_t errlen)
{
    struct stat st;
    char *copy;

    if (stat(dir, &st) == 0)
        return 0;                   /* not a directory: the open fails */
    copy = strdup(dir);
    if (copy == NULL) {
        oauth_fail(err, errlen, "out of memory");
        return -1;
    }
    for (char *p = copy + 1;; p++) {
        char c = *p;

        if (c != '/' && c != '\0')
            continue;
        *p = '\0';
        if (mkdir(copy, OAUTH_DIR_MODE) < 0 && errno != EEXIST) {
            oauth_fail(err, errlen, "cannot create directory %s: %s", copy,
                       strerror(errno));
            free(copy);
            return -1;
        }
        *p = c;
        if (c == '\0')
            break;
    }
    free(copy);
    return 0;
}

/* Writes all of buf[0..len) to fd; 0 or -1 (errno set). */
static int oauth_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* The save itself, with the identity this process has: the checks of
 * oauth_tokens_save are done. follow: a symlink at path is written
 * through (resolved here); without it path is the file to replace, and
 * a link found there now is replaced, not followed (root's own path,
 * resolved by the caller: a link planted since in a sticky directory
 * cannot lead the rename elsewhere). */
static int oauth_save_file(const char *path, bool follow,
                           const struct oauth_tokens *t, char *err,
                           size_t errlen)
{
    char *text = NULL, *tmp = NULL, *dir = NULL, *real = NULL;
    int fd = -1, dir_fd = -1, rc = -1;
    bool tmp_exists = false, had_owner = false;
    size_t path_len;
    struct stat st;

    /* A token file that is a symlink (into a shared or synced place)
     * stays one: the file it points to is replaced. A dangling link is
     * replaced itself. */
    if (follow && lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        real = realpath(path, NULL);
        if (real != NULL)
            path = real;
    }
    /* The owner of the file replaced keeps it (a daemon run as root must
     * not leave the user's own token file root's). */
    had_owner = (follow ? stat(path, &st) : lstat(path, &st)) == 0 &&
                S_ISREG(st.st_mode);
    path_len = strlen(path);
    text = oauth_tokens_format(t);
    dir = oauth_dirname(path);
    tmp = malloc(path_len + sizeof(OAUTH_TMP_SUFFIX));
    if (text == NULL || dir == NULL || tmp == NULL) {
        oauth_fail(err, errlen, "%s: out of memory", path);
        goto out;
    }
    memcpy(tmp, path, path_len);
    memcpy(tmp + path_len, OAUTH_TMP_SUFFIX, sizeof(OAUTH_TMP_SUFFIX));
    if (oauth_mkdirs(dir, err, errlen) < 0)
        goto out;
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        oauth_fail(err, errlen, "cannot create a temporary file in %s: %s",
                   dir, strerror(errno));
        goto out;
    }
    tmp_exists = true;
    /* Only root can give a file away; for anyone else the file is theirs
     * already or cannot be. */
    if (had_owner && geteuid() == 0 && (st.st_uid != 0 || st.st_gid != 0) &&
        fchown(fd, st.st_uid, st.st_gid) < 0)
        errno = 0;      /* it stays root's: better than losing the tokens */
    if (fchmod(fd, OAUTH_FILE_MODE) < 0 ||
        oauth_write_all(fd, text, strlen(text)) < 0 || fsync(fd) < 0) {
        oauth_fail(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) < 0) {
        fd = -1;
        oauth_fail(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        oauth_fail(err, errlen, "cannot rename %s to %s: %s", tmp, path,
                   strerror(errno));
        goto out;
    }
    tmp_exists = false;
    /* The rename lasts only once the directory entry is on disk. */
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0 || fsync(dir_fd) < 0) {
        oauth_fail(err, errlen, "cannot sync directory %s: %s", dir,
                   strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (tmp_exists)
        unlink(tmp);
    if (dir_fd >= 0)
        close(dir_fd);
    oauth_secret_free(&text);
    free(tmp);
    free(dir);
    free(real);
    return rc;
}

/* Walks the directories of path from the top (each one lstat'd, so a
 * link on the way counts as its owner's) and gives the owner of the last
 * one not root's, with its group: whoever owns a directory can replace
 * anything below it, so that user decides where path leads. 0 (root)
 * when every one is root's. Stops at the first that does not exist;
 * *open_gap tells whether that one would be made in a world-writable
 * directory. */
static void oauth_path_owner(const char *path, uid_t *uid, gid_t *gid,
                             bool *open_gap)
{
    char *dir = oauth_dirname(path);
    bool open = false;
    struct stat st;

    *uid = 0;
    *gid = 0;
    *open_gap = false;
    if (dir == NULL)
        return;
    if (dir[0] != '/' && lstat(".", &st) == 0 && st.st_uid != 0) {
        *uid = st.st_uid;
        *gid = st.st_gid;
    }
    for (char *p = dir + 1;; p++) {
        char c = *p;

        if (c != '/' && c != '\0')
            continue;
        *p = '\0';
        if (lstat(dir, &st) < 0) {
            /* To be made below a directory anyone may add to: anyone
             * can make it first, a link to anywhere. */
            *open_gap = open;
            *p = c;
            break;
        }
        if (st.st_uid != 0) {
            *uid = st.st_uid;
            *gid = st.st_gid;
        }
        open = S_ISDIR(st.st_mode) && (st.st_mode & S_IWOTH);
        *p = c;
        if (c == '\0')
            break;
    }
    free(dir);
}

int oauth_save_check(const struct oauth_save_facts *f, const char *path,
                     char *err, size_t errlen)
{
    if (f->dir_open_gap && f->dir_owner == 0) {
        oauth_fail(err, errlen, "refusing to create the directories of %s "
                   "as root inside a world-writable directory: anyone "
                   "could make them first, as links", path);
        return -1;
    }
    if (!f->link)
        return 0;
    if (f->link_owner != f->dir_owner) {
        oauth_fail(err, errlen, "refusing to write through the symlink %s "
                   "as root: the link belongs to uid %ld, its directory to "
                   "uid %ld, so it may point anywhere", path,
                   (long)f->link_owner, (long)f->dir_owner);
        return -1;
    }
    if (!f->target_exists)
        return 0;                   /* dangling: the link is replaced */
    if (f->target_link) {
        oauth_fail(err, errlen, "refusing to write through the symlink %s "
                   "as root: it points to another symlink", path);
        return -1;
    }
    if (f->target_owner != f->dir_owner ||
        f->target_dir_owner != f->dir_owner) {
        oauth_fail(err, errlen, "refusing to write through the symlink %s "
                   "as root: it points to a file of uid %ld in a directory "
                   "of uid %ld, not to one of uid %ld, who owns the link's "
                   "directory", path, (long)f->target_owner,
                   (long)f->target_dir_owner, (long)f->dir_owner);
        return -1;
    }
    return 0;
}

/* What oauth_save_check needs to know about path, for a save as root. */
static int oauth_save_facts(const char *path, struct oauth_save_facts *f,
                            gid_t *dir_group, char *err, size_t errlen)
{
    char target[PATH_MAX], *full = NULL, *dir = NULL;
    struct stat st;
    gid_t unused;
    bool unused_gap;
    ssize_t n;

    memset(f, 0, sizeof(*f));
    oauth_path_owner(path, &f->dir_owner, dir_group, &f->dir_open_gap);
    if (lstat(path, &st) < 0 || !S_ISLNK(st.st_mode))
        return 0;
    f->link = true;
    f->link_owner = st.st_uid;
    n = readlink(path, target, sizeof(target) - 1);
    if (n < 0) {
        oauth_fail(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    target[n] = '\0';
    /* The link's text as it is, relative to the link's directory: the
     * directories it names are judged by their owners, before any link
     * of theirs is followed. */
    if (target[0] != '/') {
        dir = oauth_dirname(path);
        if (dir == NULL || asprintf(&full, "%s/%s", dir, target) < 0) {
            full = NULL;
            free(dir);
            oauth_fail(err, errlen, "%s: out of memory", path);
            return -1;
        }
        free(dir);
    }
    if (lstat(full ? full : target, &st) == 0) {
        f->target_exists = true;
        f->target_link = S_ISLNK(st.st_mode);
        f->target_owner = st.st_uid;
        oauth_path_owner(full ? full : target, &f->target_dir_owner,
                         &unused, &unused_gap);
    }
    free(full);
    return 0;
}

/* Saves path in a child process that has become uid (the owner of its
 * directory) for good: whatever that user pointed the path at, the write
 * can do no more than the user could. The child's error comes back
 * through a pipe into err. */
static int oauth_save_as(uid_t uid, gid_t gid, const char *path,
                         const struct oauth_tokens *t, char *err,
                         size_t errlen)
{
    char child_err[OAUTH_ERR_MAX] = "";
    struct privs_id id;
    size_t got = 0;
    int pipefd[2], status = 0;
    pid_t pid;

    if (privs_resolve_uid(uid, gid, &id, err, errlen) < 0)
        return -1;
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        oauth_fail(err, errlen, "%s: pipe: %s", path, strerror(errno));
        privs_id_free(&id);
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        int rc;

        close(pipefd[0]);
        rc = privs_become(&id, child_err, sizeof(child_err));
        if (rc == 0)
            rc = oauth_save_file(path, true, t, child_err,
                                 sizeof(child_err));
        /* A reason lost on the way: the parent says "the writer
         * failed" instead. */
        if (rc < 0 && oauth_write_all(pipefd[1], child_err,
                                      strlen(child_err)) < 0)
            _exit(1);
        _exit(rc < 0 ? 1 : 0);
    }
    close(pipefd[1]);
    privs_id_free(&id);
    if (pid < 0) {
        close(pipefd[0]);
        oauth_fail(err, errlen, "%s: fork: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        ssize_t r = read(pipefd[0], child_err + got,
                         sizeof(child_err) - 1 - got);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == sizeof(child_err) - 1)
            break;
    }
    child_err[got] = '\0';
    close(pipefd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    oauth_fail(err, errlen, "%s (written as uid %ld, the owner of its "
               "directory)", child_err[0] ? child_err : "the writer failed",
               (long)uid);
    return -1;
}

int oauth_tokens_save(const char *path, const struct oauth_tokens *t,
                      char *err, size_t errlen)
{
    struct oauth_save_facts f;
    gid_t dir_group = 0;

    if (path == NULL || path[0] == '\0' ||
        path[strlen(path) - 1] == '/') {
        oauth_fail(err, errlen, "'%s' is not a file path", path ? path : "");
        return -1;
    }
    if (t == NULL || t->access_token == NULL) {
        oauth_fail(err, errlen, "%s: no access_token to save", path);
        return -1;
    }
    /* Not root: the kernel stops us where the user would be stopped. */
    if (geteuid() != 0)
        return oauth_save_file(path, true, t, err, errlen);
    if (oauth_save_facts(path, &f, &dir_group, err, errlen) < 0 ||
        oauth_save_check(&f, path, err, errlen) < 0)
        return -1;
    if (f.dir_owner != 0)
        return oauth_save_as(f.dir_owner, dir_group, path, t, err, errlen);
    /* Root's own path: resolved now, once, by the rule just checked. */
    if (f.link && f.target_exists) {
        char *real = realpath(path, NULL);
        int rc;

        if (real == NULL) {
            oauth_fail(err, errlen, "%s: %s", path, strerror(errno));
            return -1;
        }
        rc = oauth_save_file(real, false, t, err, errlen);
        free(real);
        return rc;
    }
    return oauth_save_file(path, false, t, err, errlen);
}

int oauth_iflow_settings_load(const char *path, char **api_key,
                              char **base_url, char *err, size_t errlen)
{
    char reason[OAUTH_ERR_MAX];
    json_object *root = NULL;
    char *text;
    size_t len = 0;
    int rc = -1;

    *api_key = NULL;
    *base_url = NULL;
    text = oauth_read_file(path, &len, NULL, err, errlen);
    if (text == NULL)
        return -1;
    root = oauth_json_object(text, len, "settings file", reason,
                             sizeof(reason));
    if (root == NULL ||
        oauth_json_str(root, "apiKey", api_key, reason, sizeof(reason)) < 0 ||
        oauth_json_str(root, "baseUrl", base_url, reason,
                       sizeof(reason)) < 0) {
        oauth_fail(err, errlen, "%s: %s", path, reason);
        oauth_secret_free(api_key);
        free(*base_url);
        *base_url = NULL;
        goto out;
    }
    if (*api_key != NULL && (*api_key)[0] == '\0')
        oauth_secret_free(api_key);
    if (*base_url != NULL && (*base_url)[0] == '\0') {
        free(*base_url);
        *base_url = NULL;
    }
    rc = 0;
out:
    oauth_json_wipe_put(root);
    explicit_bzero(text, len);
    free(text);
    return rc;
}
