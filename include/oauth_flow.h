/* oauth_flow.h - the messages of an OAuth exchange, without network
 * I/O: PKCE (RFC 7636), the form bodies sent to authorization servers
 * (device code, poll, refresh) and the parsers of their answers (device
 * authorization, token, iFlow's getUserInfo). What they return is
 * malloc'd and the caller's: forms and tokens with oauth_secret_free /
 * oauth_tokens_free, a device answer with oauth_device_free. */
#ifndef RCC_OAUTH_FLOW_H
#define RCC_OAUTH_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "oauth.h"

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


void oauth_device_free(struct oauth_device *d);

/* base64url of in[0..n) without padding into out, which must hold
 * (n * 4 + 2) / 3 + 1 bytes; returns the length written (NUL added). */
size_t oauth_base64url(const uint8_t *in, size_t n, char *out);
/* A fresh PKCE verifier: 32 random bytes (getrandom), base64url. 0 or -1. */
int oauth_pkce_verifier(char out[OAUTH_VERIFIER_LEN + 1]);
/* The S256 challenge: base64url(SHA-256(verifier)). 0 or -1. */
int oauth_pkce_challenge(const char *verifier,
                         char out[OAUTH_CHALLENGE_LEN + 1]);
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

#endif
