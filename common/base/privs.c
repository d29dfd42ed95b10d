/* privs.c - switching a process to another user for good: the workers of
 * a daemon started as root with `user` set, `pipelinectl login` under
 * the same configuration, and a token file written on behalf of the user
 * who owns its directory (oauth.c). Lookups happen before the switch, in
 * the process that still can read what it needs; privs_become only makes
 * system calls. */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PRIVS_GROUPS_GUESS 16      /* memberships asked for at first */

static void privs_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void privs_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* name's memberships, gid among them, into id->groups. 0 or -1 (ENOMEM). */
static int privs_memberships(const char *name, gid_t gid, struct privs_id *id)
{
    int n = PRIVS_GROUPS_GUESS;

    for (;;) {
        gid_t *groups = realloc(id->groups, (size_t)n * sizeof(*groups));
        int want = n;

        if (groups == NULL)
            return -1;
        id->groups = groups;
        if (getgrouplist(name, gid, groups, &want) >= 0) {
            id->group_count = want;
            return 0;
        }
        if (want <= n)              /* cannot grow: keep what came */
            want = n * 2;
        n = want;
    }
}

enum privs_lookup privs_resolve(const char *user, const char *group,
                                struct privs_id *id, char *err,
                                size_t errlen)
{
    const struct passwd *pw;
    const struct group *gr = NULL;
    char *name;

    memset(id, 0, sizeof(*id));
    errno = 0;
    pw = getpwnam(user);
    if (pw == NULL) {
        privs_fail(err, errlen, "no such user \"%s\"%s%s", user,
                   errno ? ": " : "", errno ? strerror(errno) : "");
        return PRIVS_NO_USER;
    }
    id->uid = pw->pw_uid;
    id->gid = pw->pw_gid;
    /* getgrnam below may reuse the static passwd storage. */
    name = strdup(pw->pw_name);
    if (name == NULL) {
        privs_fail(err, errlen, "out of memory");
        return PRIVS_NO_USER;
    }
    if (group != NULL) {
        errno = 0;
        gr = getgrnam(group);
        if (gr == NULL) {
            privs_fail(err, errlen, "no such group \"%s\"%s%s", group,
                       errno ? ": " : "", errno ? strerror(errno) : "");
            free(name);
            return PRIVS_NO_GROUP;
        }
        id->gid = gr->gr_gid;
    }
    if (privs_memberships(name, id->gid, id) < 0) {
        free(name);
        privs_id_free(id);
        privs_fail(err, errlen, "out of memory");
        return PRIVS_NO_USER;
    }
    free(name);
    return PRIVS_OK;
}

int privs_resolve_uid(uid_t uid, gid_t fallback_gid, struct privs_id *id,
                      char *err, size_t errlen)
{
    const struct passwd *pw;
    char *name;

    memset(id, 0, sizeof(*id));
    id->uid = uid;
    id->gid = fallback_gid;
    pw = getpwuid(uid);
    if (pw == NULL)
        return 0;                   /* a bare number: no memberships */
    id->gid = pw->pw_gid;
    name = strdup(pw->pw_name);
    if (name == NULL || privs_memberships(name, id->gid, id) < 0) {
        free(name);
        privs_id_free(id);
        privs_fail(err, errlen, "out of memory");
        return -1;
    }
    free(name);
    return 0;
}

void privs_id_free(struct privs_id *id)
{
    if (id == NULL)
        return;
    free(id->groups);
    id->groups = NULL;
    id->group_count = 0;
}

int privs_become(const struct privs_id *id, char *err, size_t errlen)
{
    /* Groups first: once the user is not root, they cannot change. */
    if (setgroups((size_t)id->group_count, id->groups) < 0 ||
        setresgid(id->gid, id->gid, id->gid) < 0 ||
        setresuid(id->uid, id->uid, id->uid) < 0) {
        privs_fail(err, errlen, "cannot become uid %ld gid %ld: %s",
                   (long)id->uid, (long)id->gid, strerror(errno));
        return -1;
    }
    if (id->uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        privs_fail(err, errlen, "uid %ld could take root back",
                   (long)id->uid);
        return -1;
    }
    return 0;
}
