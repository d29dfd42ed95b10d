/* oauth.h - the OAuth token set shared by the worker (token refresh) and
 * pipelinectl (device login): struct oauth_tokens, its strict JSON text
 * (the Qwen CLI's and iFlow CLI's token file format) and its secret-safe
 * free and copy. The other OAuth concerns are modules of their own, each
 * included here for its users: oauth_flow.h (PKCE, form bodies, parsers
 * of the authorization servers' answers), oauth_base.h (the API base
 * rule for a token's resource_url), oauth_file.h (the token file: load,
 * atomic save, the root rules), oauth_lock.h (the refresh flock). No
 * network I/O in any of them: callers send the bodies with curl.
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
#define OAUTH_FILE_MODE        0600    /* token and lock files */

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

/* Wipes (explicit_bzero) and frees the members of t, leaving it empty;
 * NULL-safe. */
void oauth_tokens_free(struct oauth_tokens *t);
/* Deep copy; dst is overwritten (not freed first). 0, or -1 (ENOMEM, dst
 * left empty). */
int oauth_tokens_copy(struct oauth_tokens *dst, const struct oauth_tokens *src);
/* Wipes and frees the string *s holds (a secret: a token, a form body
 * carrying one, a file text) and nulls *s; NULL-safe at both levels. */
void oauth_secret_free(char **s);
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

#include "oauth_base.h"
#include "oauth_file.h"
#include "oauth_flow.h"
#include "oauth_lock.h"

#endif
