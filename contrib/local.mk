# SPDX-License-Identifier: BSD-2-Clause
#
# contrib/: the ondemand-etrn client, service units, scheduling and
# configuration examples.

# The reply parser and the ETRN rules are a library of their own so that the
# unit tests in tests/contrib link the same code as the program.
noinst_LIBRARIES += contrib/libetrn.a
contrib_libetrn_a_SOURCES = \
	contrib/etrn.c \
	contrib/etrn.h \
	contrib/smtp_reply.c \
	contrib/smtp_reply.h

bin_PROGRAMS += contrib/ondemand-etrn
contrib_ondemand_etrn_SOURCES = \
	contrib/ondemand-etrn.c \
	contrib/smtp_client.c \
	contrib/smtp_client.h
contrib_ondemand_etrn_LDADD = contrib/libetrn.a

dist_man_MANS += contrib/ondemand-etrn.1

# Installed by hand or by a package, because their paths (systemd's unit
# directory, /etc/default, /etc/cron.d) differ between systems.
dist_noinst_DATA += \
	contrib/dns-zone.example \
	contrib/ondemand-etrn.cron \
	contrib/ondemand-etrn.default \
	contrib/ondemand-etrn.service \
	contrib/ondemand-etrn.timer \
	contrib/ondemand-milter.service \
	contrib/ondemand-queue-run.cron \
	contrib/ondemand-queue-run.service \
	contrib/ondemand-queue-run.timer \
	contrib/ondemand.conf.example \
	contrib/ondemand.sysusers
