/* notify_sink.c - stands in for systemd in tests: binds a Unix datagram
 * socket at PATH and prints each notification it receives on a line of
 * its own, until SECONDS pass. Usage: notify_sink PATH SECONDS */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SINK_MSG_MAX 4096
#define SINK_MS_PER_S 1000

int main(int argc, char **argv)
{
    struct sockaddr_un sun;
    char msg[SINK_MSG_MAX];
    time_t end;
    int fd;

    if (argc != 3 || strlen(argv[1]) >= sizeof(sun.sun_path))
        return 2;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, argv[1]);
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    unlink(argv[1]);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        perror("notify_sink");
        return 1;
    }
    end = time(NULL) + atol(argv[2]);
    while (time(NULL) < end) {
        struct pollfd p = { fd, POLLIN, 0 };
        ssize_t n;

        if (poll(&p, 1, SINK_MS_PER_S) <= 0)
            continue;
        n = recv(fd, msg, sizeof(msg) - 1, 0);
        if (n <= 0)
            continue;
        msg[n] = '\0';
        printf("%s\n", msg);
        fflush(stdout);
    }
    close(fd);
    unlink(argv[1]);
    return 0;
}
