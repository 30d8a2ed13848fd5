/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Error and message helpers for the cf_*.c files; see cf_internal.h.
 */

#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_internal.h"

void
cf_set_error(char *error, size_t size, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	vsnprintf(error, size, format, ap);
	va_end(ap);
}

bool
cf_list_add(struct cf_list *list, const char *format, ...)
{
	char **items;
	char *item;
	va_list ap;
	int len;

	va_start(ap, format);
	len = vsnprintf(NULL, 0, format, ap);
	va_end(ap);
	if (len < 0)
		return false;
	item = malloc((size_t)len + 1);
	if (item == NULL)
		return false;
	va_start(ap, format);
	vsnprintf(item, (size_t)len + 1, format, ap);
	va_end(ap);
	items = realloc(list->items, (list->count + 1) * sizeof(*items));
	if (items == NULL) {
		free(item);
		return false;
	}
	list->items = items;
	list->items[list->count++] = item;
	return true;
}

void
cf_list_free(struct cf_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->items[i]);
	free(list->items);
	list->items = NULL;
	list->count = 0;
}

void
cf_report_free(struct cf_report *report)
{
	cf_list_free(&report->changes);
	cf_list_free(&report->warnings);
}

bool
cf_line_starts_with(const struct cf_line *line, const char *prefix)
{
	size_t len = strlen(prefix);

	return line->len >= len && memcmp(line->text, prefix, len) == 0;
}

const char *
cf_excerpt(const char *text, char *buffer, size_t size)
{
	size_t max = size - 4, i;

	for (i = 0; text[i] != '\0' && i < max; i++)
		buffer[i] = isprint((unsigned char)text[i]) ? text[i] : ' ';
	if (text[i] != '\0')
		memcpy(buffer + i, "...", 4);
	else
		buffer[i] = '\0';
	return buffer;
}
