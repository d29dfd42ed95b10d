/* oauth.h - the OAuth pieces shared by the worker (token refresh) and
 * pipelinectl (device login): PKCE (RFC 7636), the API base rule for a
 * token's resource_url, the token file (the Qwen CLI's and iFlow CLI's
 * format) read and written atomically with mode 0600, iFlow's settings
 * file, the form bodies sent to authorization servers and the parsers of
 * their answers. No network I/O here: callers send the bodies with curl.
 * Every char * in these structs is malloc'd and owned by the struct;
 * secrets are wiped (explicit_bzero) when freed. */
#ifndef RCC_OAUTH_H
#define RCC_OAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define OAUTH_VERIFIER_BYTES   32
#define OAUTH_VERIFIER_LEN     43      /* base64url of 32 bytes, no '=' */
#define OAUTH_CHALLENGE_LEN    43      /* base64url of a SHA-256 digest */
#define OAUTH_URL_MAX          2048
#define OAUTH_FILE_MAX         (64 * 1024)
#define OAUTH_REFRESH_MARGIN_MS 30000  /* refresh this long before expiry */
#define OAUTH_ERR_MAX          256
#define OAUTH_DEFAULT_INTERVAL_S 5     /* RFC 8628 when the server says none */
#define OAUTH_DEFAULT_EXPIRES_S 600    /* a device code's life if unsaid */
#define OAUTH_MAX_INTERVAL_MS  10000   /* slow_down never waits longer */
#define OAUTH_QWEN_SCOPE       "openid profile email model.completion"
#define OAUTH_GRANT_DEVICE     "urn:ietf:params:oauth:grant-type:device_code"
#define OAUTH_LOCK_SUFFIX      ".lock"
#define OAUTH_PATH_MAX         4096
#define OAUTH_LOCK_STEP_MS     50

/* The token file's contents. NULL members are absent from the file. */
struct oauth_tokens {
    char *access_token;       /* required in a file */
    char *refresh_token;
    char *token_type;         /* "Bearer" */
    char *resource_url;       /* Qwen: the API host for these tokens */
    char *scope;              /* iFlow */
    char *api_key;            /* iFlow: "apiKey", the Bearer key it uses */
    int64_t expiry_ms;        /* "expiry_date", ms since the epoch; 0: none */
};

/* What identifies one version of a file on disk, to notice a change. */
struct oauth_file_id {
    dev_t dev;
    ino_t ino;
    int64_t mtime_ns;
    int64_t size;
};

/* The answer to a device authorization request (RFC 8628 3.2). */
struct oauth_device {
    char *device_code;
    char *user_code;
    char *verification_uri;
    char *verification_uri_complete;   /* may be NULL */
    int expires_in_s;
    int interval_s;                    /* OAUTH_DEFAULT_INTERVAL_S if absent */
};

/* How a token endpoint answered. */
enum oauth_result {
    OAUTH_OK,            /* tokens issued */
    OAUTH_PENDING,       /* authorization_pending: poll again */
    OAUTH_SLOW_DOWN,     /* slow_down: poll again, interval x 1.5 */
    OAUTH_EXPIRED,       /* expired_token: the device code is dead */
    OAUTH_DENIED,        /* access_denied: the user said no */
    OAUTH_REVOKED,       /* a refresh refused with 400/401: log in again */
    OAUTH_FAILED         /* anything else: malformed, 5xx, other 4xx */
};

/* Wipes (explicit_bzero) and frees the members of t, leaving it empty;
 * NULL-safe. */
void oauth_tokens_free(struct oauth_tokens *t);
/* Deep copy; dst is overwritten (not freed first). 0, or -1 (ENOMEM, dst
 * left empty). */
int oauth_tokens_copy(struct oauth_tokens *dst, const struct oauth_tokens *src);
void oauth_device_free(struct oauth_device *d);
/* Wipes and frees the string *s holds (a secret: a token, a form body
 * carrying one, a file text) and nulls *s; NULL-safe at both levels. */
void oauth_secret_free(char **s);

/* base64url of in[0..n) without padding into out, which must hold
 * (n * 4 + 2) / 3 + 1 bytes; returns the length written (NUL added). */
size_t oauth_base64url(const uint8_t *in, size_t n, char *out);
/* A fresh PKCE verifier: 32 random bytes (getrandom), base64url. 0 or -1. */
int oauth_pkce_verifier(char out[OAUTH_VERIFIER_LEN + 1]);
/* The S256 challenge: base64url(SHA-256(verifier)). 0 or -1. */
int oauth_pkce_challenge(const char *verifier,
                         char out[OAUTH_CHALLENGE_LEN + 1]);

/* The API base for a resource_url: surrounding blanks and trailing '/'
 * dropped, "https://" put in front when it names no scheme (a scheme is
 * letters and "://"), "/v1" appended unless the path already ends in it.
 * 0, or -1 when it is empty, has no host, holds a blank or a control
 * character inside, names a scheme other than https (http is taken for
 * a loopback host only: localhost, 127.x.x.x, [::1]), or does not fit in
 * outlen. */
int oauth_api_base(const char *resource_url, char *out, size_t outlen);

/* Parses token file text (JSON object; unknown members ignored; strings
 * where strings are due, expiry_date a number). -1 with a reason in err
 * (never containing a token) on anything else or a missing access_token.
 * *t is overwritten (not freed first); on -1 it is left empty. Every JSON
 * text read here (files and answers) must be strict RFC 8259, one object
 * with only whitespace after it, at most OAUTH_FILE_MAX bytes. */
int oauth_tokens_parse(const char *text, size_t len, struct oauth_tokens *t,
                       char *err, size_t errlen);
/* The file text for t (a JSON object, newline-terminated); malloc'd, the
 * caller frees (it holds secrets: explicit_bzero first). NULL on ENOMEM. */
char *oauth_tokens_format(const struct oauth_tokens *t);
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

/* Form bodies (application/x-www-form-urlencoded, every value
 * percent-encoded; RFC 3986 unreserved bytes kept, the rest %XX);
 * malloc'd, the caller frees (oauth_secret_free: they carry codes and
 * tokens). NULL on ENOMEM. */
char *oauth_form_device_code(const char *client_id, const char *scope,
                             const char *challenge);
char *oauth_form_device_poll(const char *client_id, const char *device_code,
                             const char *verifier);
/* client_secret may be NULL (Qwen); iFlow sends it too. */
char *oauth_form_refresh(const char *client_id, const char *client_secret,
                         const char *refresh_token);
/* Percent-encodes s for a form value or URL query into a malloc'd
 * string. NULL on ENOMEM. */
char *oauth_urlencode(const char *s);

/* Parses the device authorization answer (HTTP status, body). -1 with err
 * when it is not a 200 with device_code, user_code and verification_uri
 * (those shown to the user must be printable ASCII); expires_in_s is
 * OAUTH_DEFAULT_EXPIRES_S when absent. *d is overwritten; empty on -1. */
int oauth_parse_device(long status, const char *body, size_t len,
                       struct oauth_device *d, char *err, size_t errlen);
/* Classifies a device-code poll answer by its "error" member whatever the
 * 4xx status (authorization_pending, slow_down, expired_token,
 * access_denied); on OAUTH_OK fills *t (access_token required; expiry_ms =
 * now_ms + expires_in * 1000 when expires_in is given). err gets a reason
 * (the server's error code and description, never a token) otherwise. */
enum oauth_result oauth_parse_poll(long status, const char *body, size_t len,
                                   int64_t now_ms, struct oauth_tokens *t,
                                   char *err, size_t errlen);
/* A refresh answer. On OAUTH_OK *t holds the new tokens, with old's
 * refresh_token, resource_url, scope and api_key kept where the answer
 * has none (old may be NULL), token_type "Bearer" when absent. 400 and
 * 401 with a JSON answer give OAUTH_REVOKED (as the Qwen CLI takes them);
 * other failures, and a 400/401 whose body is not JSON (a proxy's page,
 * not the server's word), OAUTH_FAILED. Parsers fill *t
 * only on OAUTH_OK (the caller frees it); it is left empty otherwise. */
enum oauth_result oauth_parse_refresh(long status, const char *body,
                                      size_t len, int64_t now_ms,
                                      const struct oauth_tokens *old,
                                      struct oauth_tokens *t,
                                      char *err, size_t errlen);
/* iFlow's getUserInfo answer {"success":true,"data":{"apiKey":".."}}:
 * 0 and a malloc'd *api_key, or -1 with err. */
int oauth_parse_iflow_userinfo(long status, const char *body, size_t len,
                               char **api_key, char *err, size_t errlen);

/* The refresh lock: "<token_file>.lock", held with flock by whoever
 * refreshes or rewrites the token file. Opens (creating it 0600) and
 * returns its descriptor, refusing a symlink, anything but a regular file
 * owned by us with one link. -1 with err. */
int oauth_lock_open(const char *token_file, char *err, size_t errlen);
/* Takes the lock on fd, waiting at most timeout_ms (polling; for tools,
 * not for an event loop). 0, or -1 with errno (ETIMEDOUT). */
int oauth_lock_wait(int fd, int timeout_ms);

#endif
