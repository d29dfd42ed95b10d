/* endpoints.h - /v1/models, /health and /metrics (endpoints.c). */
#ifndef RCC_ENDPOINTS_H
#define RCC_ENDPOINTS_H

#include "http.h"

struct master;

void endpoints_models(struct master *m, struct http_req *req);
/* 200 while a worker is up and some target's breaker is not open. */
void endpoints_health(struct master *m, struct http_req *req);
void endpoints_metrics(struct master *m, struct http_req *req);
/* Builds m->models_json for m->cfg (malloc'd; frontend_free and
 * frontend_reconfigure free it). 0, or -1 out of memory. */
int endpoints_build_models(struct master *m);

#endif
