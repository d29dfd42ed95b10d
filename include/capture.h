/* capture.h - the pure parts of request capture (common/formats/
 * capture.c): a request id made safe as a file name, which header names
 * carry secrets, masking known secret values in captured bytes, cutting
 * a body at a UTF-8 boundary, a captured body as JSON, and which capture
 * files rotation deletes. No I/O: the master writes the files
 * (master/capture.c), the worker gathers its attempts (worker/
 * capture.c). */
#ifndef RCC_CAPTURE_H
#define RCC_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "util.h"

/* A file-safe id: at most this many bytes with the NUL. */
#define CAP_ID_MAX        UTIL_REQUEST_ID_MAX
/* What a masked secret's bytes become. */
#define CAP_MASK_CHAR     '*'
/* Capture files end with this; rotation counts only those. */
#define CAP_SUFFIX        ".json"
/* The door a request came in through when nothing else says. */
#define CAP_DOOR_DEFAULT  "openai"
#define CAP_DOOR_ANTHROPIC "anthropic"   /* /v1/messages (SHM_JOB_ANTHROPIC) */
/* The client's name when clients have none. */
#define CAP_CLIENT_NONE   "-"
/* Shortest secret value worth masking: shorter ones would mask common
 * words (and no real key is this short). */
#define CAP_SECRET_MIN    8
/* A body's tail this long or longer that begins a secret is masked. */
#define CAP_TAIL_MIN      4

/* Writes id into out[cap] (cap >= 2) with every byte but [A-Za-z0-9._-]
 * turned into '_', a leading '.' too (no hidden files, no "..") and an
 * empty id as "_"; cut to cap - 1 bytes. Returns the length. */
size_t cap_file_id(const char *id, char *out, size_t cap);

/* True when a header named name (len bytes, any case) may carry a
 * secret: Authorization, Proxy-Authorization, X-Api-Key, Api-Key,
 * Cookie, Set-Cookie, and any name containing "token", "secret",
 * "auth", "key", "session" or "password" (but X-RateLimit-*, which
 * count tokens). */
bool cap_header_secret(const char *name, size_t len);

/* Masks with CAP_MASK_CHAR every occurrence in buf[len] of each of the
 * n secrets (NULL or shorter than CAP_SECRET_MIN: skipped), and a tail of
 * buf that begins one (a body cut in the middle of a key). */
void cap_scrub(char *buf, size_t len, const char *const *secrets, size_t n);

/* The length of s[len] cut to at most max bytes, never inside a UTF-8
 * sequence. */
size_t cap_cut(const char *s, size_t len, size_t max);

/* Replaces in s[len] every byte that is not part of a valid UTF-8
 * sequence (and NUL) with '?', so the capture stays valid JSON text. */
void cap_utf8_clean(char *s, size_t len);

/* A captured body: {"bytes": len, "truncated": len > max, "text": the
 * first max bytes (cut at a UTF-8 boundary), secrets masked, invalid
 * UTF-8 replaced}. A new object the caller owns (json_object_put). */
json_object *cap_body_json(const char *data, size_t len, size_t max,
                           const char *const *secrets, size_t n);

/* A capture file as rotation sees it. */
struct cap_file {
    int64_t mtime_ns;
    char name[CAP_ID_MAX + sizeof(CAP_SUFFIX)];
};

/* Sorts files[n] oldest first (by mtime, then name) and returns how many
 * of the first ones to delete so that at most max_files remain. */
size_t cap_rotate_pick(struct cap_file *files, size_t n, size_t max_files);

#endif
