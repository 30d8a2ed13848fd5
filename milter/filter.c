/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The libmilter callbacks: classify each recipient, hold a message for an
 * on-demand domain with smfi_quarantine at end of message, and log the hold.
 *
 * Connection state (client name and address) lives as long as the SMTP
 * session.  Message state is reset at every MAIL FROM and cleared in one
 * place, message_clear(), which eom, abort and close call.
 *
 * An internal error (no memory for the connection state, no configuration)
 * is handled as OnError sets.  "tempfail" replies 451 so the client
 * retries.  "hold" accepts the message and quarantines it with the reason
 * "ondemand [error]", which no domain release selects, so an operator
 * decides.  That path keeps no state, so it works when allocation fails.
 *
 * The size in the hold line is counted from the headers and body the MTA
 * passes (CRLF line ends), because sendmail 8.17 sent no {msg_size} at end
 * of message even when asked with smfi_setsymlist.  A message that is not
 * held is accepted at DATA, so its headers and body never reach the filter.
 *
 * Every reply makes sendmail wait for the filter, so the filter does not
 * reply at the stages where it always continues: connect, MAIL, each
 * header, end of headers and body chunks.  It replies to RCPT, DATA and
 * end of message, where it decides.  The no-reply flags (SMFIP_NR_*) are
 * agreed in filter_negotiate and kept in the connection state.  libmilter
 * offers them to every MTA and replies itself to one that lacks them.  A
 * callback returns SMFIS_NOREPLY only where they were agreed, because a
 * reply that sendmail waits for and never gets stalls the session.
 */

#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "od_filter.h"
#include "od_ledger_client.h"
#include "od_log.h"
#include "od_msgclass.h"
#include "od_rcpt.h"
#include "od_runtime.h"
#include "od_util.h"

/* Bounds for untrusted text copied into log lines. */
#define LOG_TEXT_MAX 256

struct message {
	struct od_config_ref *config;	/* snapshot for this transaction */
	char queue_id[64];
	char sender[LOG_TEXT_MAX * 4 + 4];	/* escaped for logging */
	struct od_msgclass msgclass;
	long long size;			/* header and body octets seen */
	long long declared_size;	/* MAIL FROM SIZE=, or -1 */
	bool active;
};

struct connection {
	char client_name[LOG_TEXT_MAX * 4 + 4];	/* escaped for logging */
	char client_addr[INET6_ADDRSTRLEN + 8];
	unsigned long no_reply;		/* SMFIP_NR_* the MTA agreed to */
	bool leading_space;		/* SMFIP_HDR_LEADSPC agreed */
	struct message message;
};

static atomic_int on_error_policy = OD_ON_ERROR_HOLD;
static struct od_index *filter_index;

void
od_filter_set_index(struct od_index *index)
{
	filter_index = index;
}

void
od_filter_set_on_error(enum od_on_error policy)
{
	atomic_store(&on_error_policy, policy);
}

/* Applies OnError to a callback that has no usable state. */
static sfsistat
internal_error(SMFICTX *ctx, const char *what)
{
	if (atomic_load(&on_error_policy) == OD_ON_ERROR_TEMPFAIL) {
		od_log(LOG_ERR, "%s; replying 451 (OnError tempfail)", what);
		smfi_setreply(ctx, "451", "4.3.0", "Temporary local error, "
		    "try again later");
		return SMFIS_TEMPFAIL;
	}
	od_log(LOG_ERR, "%s; the message will be held with reason "
	    "\"%s [error]\" (OnError hold)", what, OD_HOLD_REASON_PREFIX);
	return SMFIS_CONTINUE;
}

/* Holds a message that an internal error kept the filter from classifying. */
static sfsistat
hold_unclassified(SMFICTX *ctx)
{
	const char *id = smfi_getsymval(ctx, "i");
	char queue_id[64] = "NOQUEUE";

	if (id != NULL)
		od_escape(queue_id, sizeof(queue_id), id, 40);
	if (atomic_load(&on_error_policy) == OD_ON_ERROR_TEMPFAIL ||
	    smfi_quarantine(ctx, OD_HOLD_REASON_PREFIX " [error]") !=
	    MI_SUCCESS) {
		od_log(LOG_ERR, "%s: action=tempfail reason=\"internal "
		    "error\"", queue_id);
		return SMFIS_TEMPFAIL;
	}
	od_log(LOG_WARNING, "%s: action=hold domain=[error] reason=\"internal "
	    "error\"", queue_id);
	return SMFIS_CONTINUE;
}

static void
message_clear(struct message *message)
{
	od_runtime_release(message->config);
	memset(message, 0, sizeof(*message));
	od_msgclass_reset(&message->msgclass);
}

/*
 * Returns SMFIS_NOREPLY for a stage whose no-reply flag (SMFIP_NR_*) the
 * MTA agreed to for this connection, else SMFIS_CONTINUE.
 */
static sfsistat
continue_reply(const struct connection *connection, unsigned long stage)
{
	if (connection != NULL && (connection->no_reply & stage) != 0)
		return SMFIS_NOREPLY;
	return SMFIS_CONTINUE;
}

static const char *
queue_id_of(SMFICTX *ctx, struct message *message)
{
	const char *id;

	if (message->queue_id[0] == '\0') {
		id = smfi_getsymval(ctx, "i");
		if (id != NULL)
			od_escape(message->queue_id, sizeof(message->queue_id),
			    id, 40);
	}
	return message->queue_id[0] != '\0' ? message->queue_id : "NOQUEUE";
}

static sfsistat
filter_negotiate(SMFICTX *ctx, unsigned long actions, unsigned long steps,
    unsigned long unused0, unsigned long unused1, unsigned long *actions_out,
    unsigned long *steps_out, unsigned long *unused0_out,
    unsigned long *unused1_out)
{
	/* Skip every step the filter does not use, where the MTA allows. */
	const unsigned long skip = SMFIP_NOHELO | SMFIP_NOUNKNOWN;
	const unsigned long no_reply = SMFIP_NR_CONN | SMFIP_NR_MAIL |
	    SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY;
	/*
	 * The state is made here so that it can carry the agreed flags.
	 * Without it the filter replies at every stage, which any MTA
	 * accepts, and filter_connect tries the allocation again.
	 */
	struct connection *connection = calloc(1, sizeof(*connection));

	(void)unused0;
	(void)unused1;
	od_debug(3, "negotiate: MTA offers actions 0x%lx, steps 0x%lx",
	    actions, steps);
	if ((actions & SMFIF_QUARANTINE) == 0) {
		od_log(LOG_ERR, "the MTA does not offer quarantine; the filter "
		    "cannot hold mail and rejects it with 451 instead");
	}
	*actions_out = actions & (SMFIF_QUARANTINE | SMFIF_SETSYMLIST);
	*steps_out = steps & skip;
	if (connection != NULL) {
		connection->no_reply = steps & no_reply;
		connection->leading_space = (steps & SMFIP_HDR_LEADSPC) != 0;
		*steps_out |= connection->no_reply |
		    (steps & SMFIP_HDR_LEADSPC);
		message_clear(&connection->message);
		smfi_setpriv(ctx, connection);
	}
	*unused0_out = 0;
	*unused1_out = 0;
	od_debug(3, "negotiate: the filter asks for steps 0x%lx", *steps_out);
	/*
	 * A sendmail.cf without Milter.macros lines (one patched by hand or
	 * by ondemand-cf) sends no macros at all, so ask for the queue ID.
	 */
	if ((actions & SMFIF_SETSYMLIST) != 0 &&
	    (smfi_setsymlist(ctx, SMFIM_ENVFROM, "{i}") != MI_SUCCESS ||
	    smfi_setsymlist(ctx, SMFIM_EOM, "{i}") != MI_SUCCESS))
		od_log(LOG_WARNING, "cannot request the queue ID macro {i}; "
		    "log lines may say NOQUEUE");
	if ((actions & SMFIF_SETSYMLIST) != 0 &&
	    smfi_setsymlist(ctx, SMFIM_ENVRCPT, "{rcpt_addr}") != MI_SUCCESS)
		od_log(LOG_WARNING, "cannot request the macro {rcpt_addr}; "
		    "recipients are classified by the RCPT argument alone");
	return SMFIS_CONTINUE;
}

static void
format_address(const struct sockaddr *address, char *out, size_t size)
{
	const void *raw = NULL;

	od_strlcpy(out, "unknown", size);
	if (address == NULL)
		return;
	if (address->sa_family == AF_INET)
		raw = &((const struct sockaddr_in *)(const void *)address)
		    ->sin_addr;
	else if (address->sa_family == AF_INET6)
		raw = &((const struct sockaddr_in6 *)(const void *)address)
		    ->sin6_addr;
	if (raw == NULL || inet_ntop(address->sa_family, raw, out,
	    (socklen_t)size) == NULL)
		od_strlcpy(out, "unknown", size);
}

static sfsistat
filter_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr)
{
	struct connection *connection = smfi_getpriv(ctx);

	if (connection == NULL) {
		connection = calloc(1, sizeof(*connection));
		if (connection == NULL)
			return internal_error(ctx, "out of memory for a new "
			    "connection");
		message_clear(&connection->message);
		smfi_setpriv(ctx, connection);
	}
	od_escape(connection->client_name, sizeof(connection->client_name),
	    hostname != NULL ? hostname : "unknown", LOG_TEXT_MAX);
	format_address(hostaddr, connection->client_addr,
	    sizeof(connection->client_addr));
	return continue_reply(connection, SMFIP_NR_CONN);
}

static sfsistat
filter_envfrom(SMFICTX *ctx, char **argv)
{
	struct connection *connection = smfi_getpriv(ctx);
	struct message *message;

	if (connection == NULL)
		return internal_error(ctx, "no connection state");
	message = &connection->message;
	message_clear(message);
	message->config = od_runtime_acquire();
	/*
	 * Without a reply to MAIL, filter_envrcpt applies OnError to the
	 * inactive message instead.
	 */
	if (message->config == NULL) {
		sfsistat status = internal_error(ctx,
		    "no configuration loaded");

		return (connection->no_reply & SMFIP_NR_MAIL) != 0 ?
		    SMFIS_NOREPLY : status;
	}
	message->active = true;
	od_escape(message->sender, sizeof(message->sender),
	    argv[0] != NULL ? argv[0] : "", LOG_TEXT_MAX);
	message->declared_size = -1;
	for (size_t i = 1; argv[0] != NULL && argv[i] != NULL; i++) {
		char *end;
		long long size;

		if (strncasecmp(argv[i], "SIZE=", 5) != 0)
			continue;
		errno = 0;
		size = strtoll(argv[i] + 5, &end, 10);
		if (errno == 0 && end != argv[i] + 5 && *end == '\0' &&
		    size >= 0)
			message->declared_size = size;
	}
	queue_id_of(ctx, message);
	return continue_reply(connection, SMFIP_NR_MAIL);
}

/*
 * Checks the domain's quota for one more message of size octets (-1: not
 * known yet, so only the message count is checked).  Sets the 452 4.2.2
 * reply and returns false when the message does not fit.  Totals are
 * fleet-wide when the ledger vouches for them, else this host's.  Holds
 * that finish at the same moment may pass a limit by a few messages.
 */
static bool
quota_allows(SMFICTX *ctx, struct connection *connection,
    const char *domain, long long size, const char *stage)
{
	struct message *message = &connection->message;
	struct od_quota quota = od_config_quota(
	    od_runtime_config(message->config), domain);
	long long messages, bytes;
	enum od_quota_verdict verdict;
	char text[512];
	bool fleet;

	if (quota.max_messages == 0 && quota.max_bytes == 0)
		return true;
	od_ledger_totals(domain, &messages, &bytes, &fleet);
	verdict = od_quota_check(&quota, messages, bytes, size < 0 ? 0 : size);
	if (verdict == OD_QUOTA_OK)
		return true;
	od_log(LOG_NOTICE, "%s: action=over-quota domain=%s stage=%s "
	    "held_messages=%lld held_bytes=%lld size=%lld max_messages=%lld "
	    "max_bytes=%lld scope=%s client=%s[%s]", queue_id_of(ctx, message),
	    domain, stage, messages, bytes, size, quota.max_messages,
	    quota.max_bytes, fleet ? "fleet" : "host", connection->client_name,
	    connection->client_addr);
	if (verdict == OD_QUOTA_MESSAGES)
		snprintf(text, sizeof(text), "The on-demand domain %s holds its "
		    "limit of %lld messages until its server collects them; "
		    "try again later", domain, quota.max_messages);
	else
		snprintf(text, sizeof(text), "This message would take the mail "
		    "held for the on-demand domain %s past its limit of %lld "
		    "octets; try again after its server has collected it",
		    domain, quota.max_bytes);
	smfi_setreply(ctx, "452", "4.2.2", text);
	return false;
}

/*
 * Returns whether arg's domain, which the filter could not normalise (a
 * 64-octet label, an underscore, a leading hyphen), still ends in an
 * on-demand domain.  sendmail routes such a name like any other, so
 * passing it would deliver mail for an on-demand domain at once.
 */
static bool
invalid_on_demand_domain(const struct od_domain_set *set, const char *arg)
{
	char domain[OD_DOMAIN_SIZE], text[OD_DOMAIN_SIZE * 2];
	const char *at = strrchr(arg, '@');
	size_t length = 0;

	if (at == NULL || od_addr_domain(arg, domain) != OD_ADDR_INVALID)
		return false;
	for (at++; *at != '\0' && *at != '>'; at++) {
		if (length + 1 >= sizeof(text))
			return false;
		if (!isspace((unsigned char)*at))
			text[length++] = (char)tolower((unsigned char)*at);
	}
	while (length > 0 && text[length - 1] == '.')
		length--;
	text[length] = '\0';
	return length > 0 && od_domain_set_match(set, text);
}

/* Sets the 452 4.5.3 reply for a recipient of another class. */
static void
reply_separate_transaction(SMFICTX *ctx, const struct od_msgclass *msgclass,
    const char *hold_domain)
{
	char text[512];

	if (msgclass->kind == OD_CLASS_HOLD)
		snprintf(text, sizeof(text), "This message holds mail for "
		    "the on-demand domain %s; send other recipients in a "
		    "separate transaction", msgclass->domain);
	else
		snprintf(text, sizeof(text), "Mail for the on-demand domain "
		    "%s is held apart; send it in a separate transaction",
		    hold_domain);
	smfi_setreply(ctx, "452", "4.5.3", text);
}

static sfsistat
filter_envrcpt(SMFICTX *ctx, char **argv)
{
	struct connection *connection = smfi_getpriv(ctx);
	struct message *message;
	const struct od_config *config;
	char domain[OD_DOMAIN_SIZE];
	const char *hold_domain = NULL;
	const char *resolved;
	char recipient[LOG_TEXT_MAX * 4 + 4];

	if (connection == NULL || !connection->message.active) {
		if (atomic_load(&on_error_policy) != OD_ON_ERROR_TEMPFAIL)
			return SMFIS_CONTINUE;
		smfi_setreply(ctx, "451", "4.3.0", "Temporary local error, "
		    "try again later");
		return SMFIS_TEMPFAIL;
	}
	message = &connection->message;
	config = od_runtime_config(message->config);

	if (argv[0] != NULL &&
	    od_addr_domain(argv[0], domain) == OD_ADDR_DOMAIN &&
	    od_domain_set_match(config->domains, domain))
		hold_domain = domain;
	/*
	 * sendmail also delivers to a domain that the argument does not name
	 * in a form the filter parses: "user%example.test@thishost", a path
	 * with spaces or comments.  {rcpt_addr} is the address it resolved,
	 * so such a recipient of an on-demand domain is held as well.
	 */
	if (hold_domain == NULL &&
	    (resolved = smfi_getsymval(ctx, "{rcpt_addr}")) != NULL &&
	    od_addr_domain(resolved, domain) == OD_ADDR_DOMAIN &&
	    od_domain_set_match(config->domains, domain))
		hold_domain = domain;

	if (hold_domain == NULL && argv[0] != NULL &&
	    invalid_on_demand_domain(config->domains, argv[0])) {
		od_escape(recipient, sizeof(recipient), argv[0], LOG_TEXT_MAX);
		od_log(LOG_NOTICE, "%s: action=reject recipient=%s reason=\"not "
		    "a valid host name below an on-demand domain\" "
		    "client=%s[%s]", queue_id_of(ctx, message), recipient,
		    connection->client_name, connection->client_addr);
		smfi_setreply(ctx, "553", "5.1.2", "The recipient's domain is "
		    "not a valid host name, so it cannot be held for delivery "
		    "on demand");
		return SMFIS_REJECT;
	}

	/* The first held recipient checks the quota for the message. */
	if (hold_domain != NULL && message->msgclass.kind != OD_CLASS_HOLD &&
	    message->msgclass.recipients == 0 &&
	    !quota_allows(ctx, connection, hold_domain,
	    message->declared_size, "rcpt"))
		return SMFIS_TEMPFAIL;

	if (!od_msgclass_add(&message->msgclass, hold_domain)) {
		od_escape(recipient, sizeof(recipient),
		    argv[0] != NULL ? argv[0] : "", LOG_TEXT_MAX);
		od_log(LOG_INFO, "%s: action=separate recipient=%s "
		    "message_class=%s client=%s[%s]",
		    queue_id_of(ctx, message), recipient,
		    message->msgclass.kind == OD_CLASS_HOLD ?
		    message->msgclass.domain : "normal",
		    connection->client_name, connection->client_addr);
		reply_separate_transaction(ctx, &message->msgclass,
		    hold_domain);
		return SMFIS_TEMPFAIL;
	}
	if (od_log_debug_level() >= 2) {
		od_escape(recipient, sizeof(recipient),
		    argv[0] != NULL ? argv[0] : "", LOG_TEXT_MAX);
		od_debug(2, "%s: recipient %s: %s", queue_id_of(ctx, message),
		    recipient, hold_domain != NULL ? hold_domain : "not held");
	}
	return SMFIS_CONTINUE;
}

/* Lets a message that is not held go without passing its content. */
static sfsistat
filter_data(SMFICTX *ctx)
{
	struct connection *connection = smfi_getpriv(ctx);

	if (connection == NULL || !connection->message.active)
		return SMFIS_CONTINUE;
	if (connection->message.msgclass.kind != OD_CLASS_HOLD) {
		message_clear(&connection->message);
		return SMFIS_ACCEPT;
	}
	return SMFIS_CONTINUE;
}

static sfsistat
filter_header(SMFICTX *ctx, char *name, char *value)
{
	struct connection *connection = smfi_getpriv(ctx);

	/*
	 * "Name:", the value and CRLF.  With SMFIP_HDR_LEADSPC the value
	 * keeps the spaces after the colon.  Without it they are gone, and
	 * one space is counted.  sendmail passes a folded value with bare LF line ends,
	 * each of which was a CRLF in the message.
	 */
	if (connection != NULL) {
		size_t length = strlen(name) + strlen(value) +
		    (connection->leading_space ? 3 : 4);

		for (const char *lf = strchr(value, '\n'); lf != NULL;
		    lf = strchr(lf + 1, '\n'))
			length++;
		connection->message.size += (long long)length;
	}
	return continue_reply(connection, SMFIP_NR_HDR);
}

static sfsistat
filter_eoh(SMFICTX *ctx)
{
	struct connection *connection = smfi_getpriv(ctx);

	/* The empty line between header and body. */
	if (connection != NULL)
		connection->message.size += 2;
	return continue_reply(connection, SMFIP_NR_EOH);
}

static sfsistat
filter_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	struct connection *connection = smfi_getpriv(ctx);

	(void)chunk;
	if (connection != NULL)
		connection->message.size += (long long)len;
	return continue_reply(connection, SMFIP_NR_BODY);
}

/*
 * Adds the hold to the index.  A hold the index cannot record leaves it
 * incomplete, so the next release lists the queue: the mail is safe in the
 * queue either way.
 */
static void
record_hold(const struct message *message)
{
	struct od_index_entry entry;

	if (filter_index == NULL || message->queue_id[0] == '\0')
		return;
	memset(&entry, 0, sizeof(entry));
	od_strlcpy(entry.queue_id, message->queue_id, sizeof(entry.queue_id));
	od_strlcpy(entry.domain, message->msgclass.domain,
	    sizeof(entry.domain));
	entry.size = message->size;
	entry.held_at = time(NULL);
	od_strlcpy(entry.sender, message->sender, sizeof(entry.sender));
	if (!od_index_add(filter_index, &entry))
		od_log(LOG_WARNING, "%s: cannot record the hold in the index "
		    "(out of memory); the next release lists the queue",
		    message->queue_id);
	od_ledger_record_hold(&entry);
}

static sfsistat
hold_message(SMFICTX *ctx, struct connection *connection)
{
	struct message *message = &connection->message;
	char reason[OD_DOMAIN_SIZE + 32];

	if (!quota_allows(ctx, connection, message->msgclass.domain,
	    message->size, "eom"))
		return SMFIS_TEMPFAIL;
	snprintf(reason, sizeof(reason), "%s [%s]", OD_HOLD_REASON_PREFIX,
	    message->msgclass.domain);
	if (smfi_quarantine(ctx, reason) != MI_SUCCESS) {
		od_log(LOG_ERR, "%s: action=tempfail domain=%s reason=\"the "
		    "MTA refused the quarantine request\" client=%s[%s]",
		    queue_id_of(ctx, message), message->msgclass.domain,
		    connection->client_name, connection->client_addr);
		smfi_setreply(ctx, "451", "4.3.0", "Cannot hold the message "
		    "for delivery on demand, try again later");
		return SMFIS_TEMPFAIL;
	}

	od_log(LOG_INFO, "%s: action=hold domain=%s sender=%s nrcpts=%u "
	    "size=%lld client=%s[%s]", queue_id_of(ctx, message),
	    message->msgclass.domain, message->sender,
	    message->msgclass.recipients, message->size,
	    connection->client_name, connection->client_addr);
	record_hold(message);
	return SMFIS_CONTINUE;
}

static sfsistat
filter_eom(SMFICTX *ctx)
{
	struct connection *connection = smfi_getpriv(ctx);
	sfsistat status = SMFIS_CONTINUE;

	if (connection == NULL || !connection->message.active)
		return hold_unclassified(ctx);
	if (
	    connection->message.msgclass.kind == OD_CLASS_HOLD)
		status = hold_message(ctx, connection);
	message_clear(&connection->message);
	return status;
}

static sfsistat
filter_abort(SMFICTX *ctx)
{
	struct connection *connection = smfi_getpriv(ctx);

	if (connection != NULL)
		message_clear(&connection->message);
	return SMFIS_CONTINUE;
}

/*
 * NOTE: an MTA that reuses one filter connection for a new SMTP session
 * (SMFIC_QUIT_NC) gets state without the no-reply flags at its next
 * connect.  libmilter then drops each extra reply and logs an error for
 * it, so the protocol stays in step.
 */
static sfsistat
filter_close(SMFICTX *ctx)
{
	struct connection *connection = smfi_getpriv(ctx);

	if (connection != NULL) {
		message_clear(&connection->message);
		free(connection);
		smfi_setpriv(ctx, NULL);
	}
	return SMFIS_CONTINUE;
}

struct smfiDesc od_filter_description = {
	.xxfi_name = "ondemand",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_QUARANTINE,
	.xxfi_connect = filter_connect,
	.xxfi_envfrom = filter_envfrom,
	.xxfi_envrcpt = filter_envrcpt,
	.xxfi_data = filter_data,
	.xxfi_header = filter_header,
	.xxfi_eoh = filter_eoh,
	.xxfi_body = filter_body,
	.xxfi_eom = filter_eom,
	.xxfi_abort = filter_abort,
	.xxfi_close = filter_close,
	.xxfi_negotiate = filter_negotiate,
};
