/* notify.h - the service manager's readiness protocol (systemd's
 * sd_notify): one datagram per state change to $NOTIFY_SOCKET, spoken
 * directly so no library is needed; a no-op when the variable is unset. */
#ifndef RCC_NOTIFY_H
#define RCC_NOTIFY_H

/* Sends state ("READY=1", "STOPPING=1", ...); 0, or -1 when there is a
 * socket and the send failed. */
int notify_send(const char *state);

#endif
