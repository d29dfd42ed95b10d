/* oauth_base.h - the API base rule: which https URL a token's
 * resource_url names as the base of the chat API. Pure. */
#ifndef RCC_OAUTH_BASE_H
#define RCC_OAUTH_BASE_H

#include <stddef.h>

/* The API base for a resource_url: surrounding blanks and trailing '/'
 * dropped, "https://" put in front when it names no scheme (a scheme is
 * letters and "://"), "/v1" appended unless the path already ends in it.
 * 0, or -1 when it is empty, has no host, holds a blank or a control
 * character inside, names a scheme other than https (http is taken for
 * a loopback host only: localhost, 127.x.x.x, [::1]), or does not fit in
 * outlen. */
int oauth_api_base(const char *resource_url, char *out, size_t outlen);

#endif
