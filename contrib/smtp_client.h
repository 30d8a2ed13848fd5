/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A minimal SMTP client connection for ondemand-etrn.  Every step (name
 * lookup, connecting to one address, sending one command, receiving one
 * whole reply) must finish within the connection's timeout.
 */
#ifndef ONDEMAND_SMTP_CLIENT_H
#define ONDEMAND_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp_reply.h"

enum smtp_io_status {
	SMTP_IO_OK,
	SMTP_IO_NO_ADDRESS,	/* the server name did not resolve */
	SMTP_IO_TIMEOUT,
	SMTP_IO_CLOSED,		/* the server closed the connection */
	SMTP_IO_ERROR,		/* a system call failed */
	SMTP_IO_PROTOCOL,	/* the reply is not valid SMTP */
	SMTP_IO_NO_MEMORY
};

/* Buffer size for a description of the peer, such as "host (addr) port 25". */
#define SMTP_PEER_SIZE 600

struct smtp_connection {
	int fd;
	int timeout_seconds;
	bool verbose;			/* copy the dialogue to stderr */
	bool resolved;			/* the name lookup has succeeded */
	/* The server as given and the address connected to, for messages. */
	char peer[SMTP_PEER_SIZE];
	/* Details of the last failure, such as "Connection refused". */
	char error[SMTP_REPLY_LINE_MAX + 256];
	struct smtp_reply_parser parser;
	char buffer[4096];		/* received octets not parsed yet */
	size_t buffer_start;
	size_t buffer_end;
};

/*
 * Resolves host and connects to the first of its addresses that accepts,
 * trying each in turn.  family is AF_UNSPEC, AF_INET or AF_INET6.  On
 * failure fills connection->peer and connection->error.
 */
enum smtp_io_status smtp_connect(struct smtp_connection *connection,
    const char *host, const char *port, int family, int timeout_seconds,
    bool verbose);

/* Sends one command line, adding the CR LF. */
enum smtp_io_status smtp_send_command(struct smtp_connection *connection,
    const char *command);

/*
 * Receives one whole reply and stores a pointer to it in *reply.  The reply
 * stays valid until the next call or smtp_close.
 */
enum smtp_io_status smtp_read_reply(struct smtp_connection *connection,
    const struct smtp_reply **reply);

/*
 * Writes the local address of the connection as an SMTP address literal,
 * such as "[192.0.2.1]" or "[IPv6:2001:db8::1]".  Returns false if the
 * address cannot be read.
 */
bool smtp_local_address_literal(const struct smtp_connection *connection,
    char *out, size_t size);

void smtp_close(struct smtp_connection *connection);

#endif
