/*-------------------------------------------------------------------------
 *
 * server.h
 *	  The client side of the gateway (server.c), for main.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef PGQK_SERVER_H
#define PGQK_SERVER_H

#include <stdbool.h>

/* Starts listening on gw_config's address; false (logged) if it cannot. */
extern bool server_listen(void);

/*
 * Stops accepting, closes the idle connections, and closes the others as
 * soon as their request in flight is answered.
 */
extern void server_shutdown(void);

/* Closes every connection now, dropping the requests in flight. */
extern void server_close_all(void);

/* The client connections still open. */
extern int	server_connections(void);

#endif							/* PGQK_SERVER_H */
