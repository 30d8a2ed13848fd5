divert(-1)
dnl #
dnl # SPDX-License-Identifier: BSD-2-Clause
dnl #
dnl # The notes are dnl lines because cfhead.m4 switches m4 comments off:
dnl # words in a # line would be expanded as macros.
dnl #
dnl # FEATURE(`ondemand', `MILTER_SOCKET', `SOCKETMAP_SOCKET', `DELIVERY_MODE')
dnl #
dnl # Wires ondemand-milter into sendmail.cf: the mail filter (an X line and
dnl # InputMailFilters), the socket map "ondemand" with the check_etrn ruleset
dnl # that asks the daemon about every ETRN argument, and, on request, the
dnl # delivery mode.  These are the lines that ondemand-cf(8) adds to an
dnl # existing sendmail.cf; that page describes the socket map replies and the
dnl # SMTP answers they give.
dnl #
dnl # Arguments, all optional:
dnl #   MILTER_SOCKET     socket of the filter;
dnl #                     default unix:/run/ondemand/milter.sock
dnl #   SOCKETMAP_SOCKET  socket of the ETRN socket map;
dnl #                     default unix:/run/ondemand/socketmap.sock;
dnl #                     `none' leaves the ETRN hook out
dnl #   DELIVERY_MODE     `queueonly' or `deferred' sets confDELIVERY_MODE;
dnl #                     empty leaves the delivery mode alone
dnl #
dnl # Optional defines, set before the FEATURE line:
dnl #   ONDEMAND_MILTER_TIMEOUTS    T= of the filter; default S:10s;R:10s;E:5m
dnl #   ONDEMAND_SOCKETMAP_TIMEOUT  socket map reply timeout; default 10s
dnl #
dnl # Put site rules for ETRN into SLocal_check_etrn (LOCAL_RULESETS), not into
dnl # check_etrn: check_etrn calls Local_check_etrn for every argument that is
dnl # not an on-demand domain.
dnl #
dnl # This feature does not comment out the rules that deliver $=w domains
dnl # locally; keep the on-demand domains out of class w and route them with a
dnl # mailertable entry.
divert(0)
VERSIONID(`ondemand.m4 (ondemand)')
divert(-1)

define(`_ONDEMAND_MILTER_SOCKET_',
	ifelse(len(X`'_ARG_), `1', `unix:/run/ondemand/milter.sock', `_ARG_'))
define(`_ONDEMAND_SOCKETMAP_',
	ifelse(len(X`'_ARG2_), `1', `unix:/run/ondemand/socketmap.sock',
	`_ARG2_'))
ifelse(len(X`'_ARG3_), `1', `',
	X`'_ARG3_, `Xqueueonly', `define(`confDELIVERY_MODE', `queueonly')',
	X`'_ARG3_, `Xdeferred', `define(`confDELIVERY_MODE', `deferred')',
	`errprint(`*** ERROR: FEATURE(`ondemand'): the delivery mode must be queueonly or deferred, not '_ARG3_`
')')

INPUT_MAIL_FILTER(`ondemand', `S='_ONDEMAND_MILTER_SOCKET_`, F=T, T='ifdef(`ONDEMAND_MILTER_TIMEOUTS', `ONDEMAND_MILTER_TIMEOUTS', `S:10s;R:10s;E:5m'))

ifelse(_ONDEMAND_SOCKETMAP_, `none', `', `
LOCAL_CONFIG
# ETRN lookups in ondemand-milter; -T<TMPF> marks an unreachable daemon
Kondemand socket -d'ifdef(`ONDEMAND_SOCKETMAP_TIMEOUT', `ONDEMAND_SOCKETMAP_TIMEOUT', `10s')` -T<TMPF> '_ONDEMAND_SOCKETMAP_`
LOCAL_RULESETS
######################################################################
###  check_etrn: ask ondemand-milter about the ETRN argument
######################################################################
SLocal_check_etrn
Scheck_etrn
R$*			$: $1 $| $(ondemand $1 / $&{client_addr} $: <NOTFOUND> $)	ask ondemand-milter
R$* $| $* <TMPF>	$#error $@ 4.3.0 $: "458 Unable to queue messages for node " $1
R$* $| <NOTFOUND>	$: $1				not an on-demand domain
R$* $| ACCEPT		$@ $1				sendmail answers 250 and runs its queue
R$* $| ACCEPT 0		$#error $@ 2.0.0 $: "251 OK no messages waiting for node " $1
R$* $| ACCEPT $-	$#error $@ 2.0.0 $: "253 OK " $2 " pending messages for node " $1 " started"
R$* $| DENY		$#error $@ 4.7.1 $: "459 Node " $1 " not allowed"
R$* $| DENY $+		$#error $@ 4.7.1 $: "459 Node " $1 " not allowed: " $2
R$* $| INVALID		$#error $@ 5.5.4 $: "501 Invalid node name " $1
R$* $| INVALID $+	$#error $@ 5.5.4 $: "501 Invalid node name " $1 ": " $2
R$* $| TEMP		$#error $@ 4.3.0 $: "458 Unable to queue messages for node " $1
R$* $| TEMP $+		$#error $@ 4.3.0 $: "458 Unable to queue messages for node " $1 ": " $2
R$* $| $*		$#error $@ 4.3.0 $: "458 Unable to queue messages for node " $1
R$*			$: $>"Local_check_etrn" $1
')
