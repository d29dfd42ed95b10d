/* login.h - `pipelinectl -c CONFIG login PROVIDER`: the OAuth 2.0 device
 * authorization flow (RFC 8628 with PKCE) for one provider of a
 * configuration, run in the foreground without the daemon. It prints the
 * verification URL and the user code (it opens no browser), polls the
 * token endpoint, and writes the provider's token file (mode 0600), which
 * a running daemon picks up by itself. */
#ifndef RCC_LOGIN_H
#define RCC_LOGIN_H

/* What login_run returns, pipelinectl's exit status. */
enum login_exit {
    LOGIN_EXIT_OK = 0,           /* logged in, token file written */
    LOGIN_EXIT_FAILED = 1,       /* refused, expired, denied, bad config */
    LOGIN_EXIT_UNREACHABLE = 2   /* the authorization server did not answer */
};

/* Loads the configuration at config_path, finds the provider named
 * provider and logs it in. Progress goes to stdout, errors to stderr;
 * no token is ever printed. Returns an enum login_exit. */
int login_run(const char *config_path, const char *provider);

#endif
