/*-------------------------------------------------------------------------
 *
 * stress_common.h
 *	  What the two libpq stress tests, stress.c and group_stress.c, share:
 *	  the run's clock and alarm() deadlines, the children's random numbers,
 *	  memory and string helpers, connecting to the local server only,
 *	  libpq error text, prepared statements and pgq_send, the temporary
 *	  directory of the children's logs, the producers' logs and the sends
 *	  the parent reads from them, searching records by position, option
 *	  parsing, the checks' output, and the messages of a run that cannot be
 *	  set up or runs over time.
 *
 * Each program calls stress_common_init() first thing in main(), with its
 * name (which starts the lines printed here, "stress: ...") and its number
 * of checks (for the last line of a failed set-up).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STRESS_COMMON_H
#define STRESS_COMMON_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <libpq-fe.h>

#define VALUE_MAX			64		/* longest value kept, with its NUL */
#define MAX_MESSAGES		20		/* failures spelled out per check */
#define STR_(x)				#x
#define STR(x)				STR_(x)
#define lengthof(array)		(sizeof(array) / sizeof((array)[0]))

/* the program's name, starting every line printed here */
extern const char *progname;

/* the children's logs (see make_tmpdir); empty until it is made */
extern char tmpdir[PATH_MAX];

/*
 * How one_line() and result_error() word libpq's messages, where the two
 * programs have always differed: when set (group_stress), tabs become
 * blanks too and a NULL result reads "out of memory"; when not (stress),
 * tabs stay and a NULL result gives an empty message.
 */
extern bool tidy_libpq_errors;

/* names the program and starts the run's clock */
extern void stress_common_init(const char *name, int checks);

/* time: CLOCK_MONOTONIC, shared by all processes */
extern int64_t mono_us(void);
extern long long run_us(void);	/* since stress_common_init */
extern unsigned alarm_secs_until(int after_s);
extern void sleep_ms(int ms);

/* random numbers (splitmix64); each child has its own state */
extern int	rnd_below(uint64_t *state, int n);
extern bool rnd_percent(uint64_t *state, int percent);

/* memory: out of memory ends the process with status 1 */
extern void out_of_memory(void) __attribute__((noreturn));
extern void *xmalloc(size_t size);
extern void *grow_array(void *array, size_t *capacity, size_t needed,
						size_t elsize);
extern void append_line(char ***list, size_t *n, const char *s);

/* values as they are kept in the files */
extern void copy_value(char *dst, const char *src);
extern void copy_result_value(char *dst, const PGresult *res, int row,
							  int col);

/* libpq */
extern const char *one_line(const char *msg);
extern const char *result_error(const PGresult *res);
extern PGconn *connect_local(const char *appname, char *err, size_t errlen);
extern bool prepare(PGconn *conn, const char *name, const char *sql,
					char *err, size_t errlen);
extern bool prepare_send(PGconn *conn, char *err, size_t errlen);
extern bool send_record(PGconn *conn, const char *topic, const char *value,
						int key, int to_partition, int *partition,
						long long *offset, char *err, size_t errlen);

/* the children's logs */
extern void make_tmpdir(void);
extern void child_path(char *buf, size_t len, const char *kind, int id);
extern void remove_tmpdir(int nproducers, const char *kind, int n);
extern FILE *open_child_log(const char *who, int id, const char *path);

/*
 * The producers' logs.  A producer writes, one line each:
 *
 *	S <txn> <i> <partition> <offset> <value>	send i of txn returned
 *	K <txn> <from> <to>		sends from..to rolled back to a savepoint
 *	E <txn> C|R|U <us>		txn committed, rolled back or ended in an
 *							unknown state, at <us> (on the program's clock)
 *	DONE <txns> <errors>
 *
 * and the parent gathers every producer's sends in sends[], with their fates.
 */
typedef struct SendRec
{
	char		value[VALUE_MAX];
	int			producer;
	long		txn;
	int			idx;
	int			partition;
	long long	offset;
	char		fate;			/* 'C' committed, 'R' rolled back with its
								 * transaction, 'S' rolled back to a
								 * savepoint, 'U' unknown */
	long long	end_us;			/* when its transaction ended; -1 if unknown */
} SendRec;

typedef struct ProducerLog
{
	bool		done;			/* its DONE line was seen */
	long		errors;			/* failed statements, from that line */
} ProducerLog;

extern SendRec *sends;
extern size_t nsends;
extern long txns_ended[3];		/* committed, rolled back, unknown */

extern void load_producer(int id, ProducerLog *log);
extern void sort_sends(void);
extern const SendRec *find_send(const char *value);

/*
 * Records by position: by_pos is an array of n pointers to structs sorted
 * by (partition, offset), the int and the long long at these offsetofs.
 */
extern size_t position_lower_bound(void *const *by_pos, size_t n,
								   size_t partition_field,
								   size_t offset_field, int partition,
								   long long offset);

/* options */
typedef struct IntOption
{
	int			letter;			/* as in getopt's optstring */
	const char *what;			/* for messages, e.g. "-p (producers)" */
	int			lo;
	int			hi;
	int		   *value;
} IntOption;

extern int	next_option(int argc, char **argv, const char *own,
						const IntOption *ints, int nints,
						unsigned long long *seed, bool *keep,
						void (*usage) (FILE *f));
extern int	parse_int(const char *arg, const char *what, int lo, int hi);
extern unsigned long long default_seed(void);

/* the checks */
typedef struct Check
{
	const char *title;
	long		failures;
} Check;

extern void check_fail(Check *c, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
extern bool check_verdict(Check *c, int number);
extern void describe_exit(char *buf, size_t len, bool reaped, int status,
						  bool killed_by_parent, const char *failure_note);

/* set-up failures and the parent's alarm */
extern void setup_failed(const char *what, const char *err)
			__attribute__((noreturn));
extern void set_alarm_message(int exit_status, const char *fmt,...)
			__attribute__((format(printf, 2, 3)));
extern void alarm_exit(void) __attribute__((noreturn));

#endif							/* STRESS_COMMON_H */
