/* SPDX-License-Identifier: MIT */
/*
 * The control thread ("rpmsd-control", normal scheduling): one poll over
 * the ROUTER socket's requests, the guard's sockets (zap.c: the ZAP handler
 * that lets in only the allowed CURVE client keys, the socket monitor that
 * logs refused handshakes), the SIGHUP hand-over and the stop eventfd. It may block and allocate; it
 * acts on the daemon only through control_command.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "config.h"
#include "control_private.h"
#include "log.h"
#include "zap.h"

#define CONTROL_FRAMES 4		/* routing id, delimiter, body, one too many */

/*
 * One request: [routing id][empty delimiter][body] from a REQ client, or
 * [routing id][body] from a DEALER that sends no delimiter. Anything else
 * still gets an answer (an error), in the envelope it came in.
 */
static void control_thread_serve(struct control *c)
{
	static const char nomem[] =
		"{\"ok\":false,\"cmd\":null,\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
	struct control_request req;
	struct control_error err;
	zmq_msg_t f[CONTROL_FRAMES];
	size_t n = 0, total = 0, first, i;
	bool more = true, delim;
	char *reply = NULL;
	const char *body;
	size_t blen;

	while (more) {
		zmq_msg_init(&f[n]);
		if (zmq_msg_recv(&f[n], c->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&f[n]);
			break;
		}
		more = zmq_msg_more(&f[n]);
		total++;
		if (n + 1 < CONTROL_FRAMES) {
			n++;
		} else {
			zmq_msg_close(&f[n]);
		}
	}
	if (n == 0) {
		return;
	}
	delim = n >= 2 && zmq_msg_size(&f[1]) == 0;
	first = delim ? 2 : 1;
	if (total == first + 1) {
		reply = control_command_execute(c, zmq_msg_data(&f[first]),
						zmq_msg_size(&f[first]));
	} else {
		/* a body of several frames, or none: not ours to guess */
		memset(&req, 0, sizeof(req));
		req.cmd = CONTROL_CMD_COUNT;
		memset(&err, 0, sizeof(err));
		control_request_fail(&err, "bad_request", "a request is one frame of JSON (got %zu "
				     "frames)", total - first);
		control_command_log(c, &req, &err, false);
		reply = control_command_reply(CONTROL_CMD_COUNT, NULL, &err);
	}
	body = reply ? reply : nomem;
	blen = strlen(body);
	/* Never blocks: a client that does not read loses its own reply only. */
	if (zmq_send(c->sock, zmq_msg_data(&f[0]), zmq_msg_size(&f[0]),
		     ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0 &&
	    (!delim || zmq_send(c->sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)) {
		zmq_send(c->sock, body, blen, ZMQ_DONTWAIT);
	}
	free(reply);
	for (i = 0; i < n; i++) {
		zmq_msg_close(&f[i]);
	}
}

/* The control thread's side of control_reload. */
static void control_thread_take_reload(struct control *c)
{
	struct rpmsd_config *next = malloc(sizeof(*next));
	uint64_t v;

	if (read(c->reload_fd, &v, sizeof(v)) != sizeof(v) || !next) {
		free(next);
		return;
	}
	pthread_mutex_lock(&c->lock);
	*next = *c->reload_next;
	pthread_mutex_unlock(&c->lock);
	control_command_reload(c, next);
	free(next);
}

void *control_thread_main(void *arg)
{
	struct control *c = arg;
	zmq_pollitem_t items[3 + ZAP_POLLITEMS];
	int n = 0, g, i, i_sock, i_reload;
	bool guard;

	items[n] = (zmq_pollitem_t){ .socket = c->sock, .events = ZMQ_POLLIN };
	i_sock = n++;
	g = n;
	n += zap_pollitems(c->guard, &items[n]);
	items[n] = (zmq_pollitem_t){ .socket = NULL, .fd = c->reload_fd, .events = ZMQ_POLLIN };
	i_reload = n++;
	items[n] = (zmq_pollitem_t){ .socket = NULL, .fd = c->stop_fd, .events = ZMQ_POLLIN };
	n++;
	while (!atomic_load(&c->stopping)) {
		/* a course session's pulses go to the course database about once a second */
		/* a threshold procedure moves on between requests: every few ms */
		if (zmq_poll(items, n, control_threshold_running(c) ? 2
				       : control_command_course_active(c) ? 1000 : -1) < 0) {
			if (errno == EINTR) {
				continue;
			}
			log_err("control: poll: %s; the control socket stops answering",
				zmq_strerror(errno));
			break;
		}
		/* The guard first: a handshake waits for its key check. */
		guard = false;
		for (i = g; i < i_reload; i++) {
			guard = guard || (items[i].revents & ZMQ_POLLIN);
		}
		if (guard) {
			zap_serve(c->guard);
		}
		if (items[i_sock].revents & ZMQ_POLLIN) {
			control_thread_serve(c);
		}
		if (items[i_reload].revents & ZMQ_POLLIN) {
			control_thread_take_reload(c);
		}
		control_command_course_tick(c);
		control_threshold_tick(c);
	}
	return NULL;
}
