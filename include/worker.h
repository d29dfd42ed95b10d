/* worker.h - the entry point of a worker process. The master forks, then
 * calls worker_main() in the child, which runs the worker's event loop
 * until it is told to stop or loses its master. */
#ifndef RCC_WORKER_H
#define RCC_WORKER_H

#include "config.h"
#include "log.h"
#include "shm.h"
#include "slots.h"

struct worker_args {
    const struct cfg *cfg;
    const struct slots_map *slots;  /* where cfg's targets live */
    struct shm_view shm;
    int slot;                  /* index into shm workers[] */
    int sock_fd;               /* our end of the socketpair */
    int wake_fd;               /* eventfd the master writes on enqueue */
    struct log log;
};

/* Runs the worker; returns the process exit status. */
int worker_main(const struct worker_args *args);

#endif
