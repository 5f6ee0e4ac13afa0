/*-------------------------------------------------------------------------
 *
 * log.c
 *	  The gateway's log: one line per event on stderr, with a timestamp and
 *	  the process id, as pgbouncer writes it.
 *
 *-------------------------------------------------------------------------
 */
#include "gateway.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

void
gw_log(const char *fmt,...)
{
	struct timeval tv;
	struct tm	tm;
	char		stamp[64];
	char		line[2048];
	va_list		ap;

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);

	/* one write per line, so that lines of several processes do not mix */
	fprintf(stderr, "%s.%03d %s [%d] %s\n", stamp, (int) (tv.tv_usec / 1000),
			tm.tm_zone ? tm.tm_zone : "", (int) getpid(), line);
	fflush(stderr);
}
