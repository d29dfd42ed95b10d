/* privs.h - switching a process to another user for good. */
#ifndef PRIVS_H
#define PRIVS_H

#include <stddef.h>
#include <sys/types.h>

/* Who to become: a user, its group and its supplementary groups. */
struct privs_id {
    uid_t uid;
    gid_t gid;
    gid_t *groups;           /* malloc'd; privs_id_free frees it */
    int group_count;
};

enum privs_lookup {
    PRIVS_OK = 0,
    PRIVS_NO_USER = -1,      /* no such user (or out of memory) */
    PRIVS_NO_GROUP = -2,     /* no such group */
};

/* Looks up user (a name) and group (a name, or NULL for the user's own
 * group) in the password and group databases, with the user's
 * supplementary groups (its memberships, as initgroups sets them). On
 * PRIVS_OK *id is filled (free it with privs_id_free); otherwise *id is
 * empty and err says what is unknown. */
enum privs_lookup privs_resolve(const char *user, const char *group,
                                struct privs_id *id, char *err,
                                size_t errlen);
/* The same for a user known by number: its own group and memberships
 * when the password database knows it, else fallback_gid and no
 * supplementary group. 0, or -1 (out of memory) with err. */
int privs_resolve_uid(uid_t uid, gid_t fallback_gid, struct privs_id *id,
                      char *err, size_t errlen);
/* Frees id's groups; NULL-safe. */
void privs_id_free(struct privs_id *id);

/* Becomes id for good: supplementary groups, group, then user (the saved
 * ids too), and checks that root cannot be taken back. Needs root. 0, or
 * -1 with err (the process must then not go on). */
int privs_become(const struct privs_id *id, char *err, size_t errlen);

#endif
