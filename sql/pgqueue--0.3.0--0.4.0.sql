/* pgqueue--0.3.0--0.4.0.sql: update script.
 *
 * Every change of 0.4.0 to the SQL objects, in the order of the install
 * script (pgqueue--0.4.0.sql), which has the same objects.
 */

\echo Use "ALTER EXTENSION pgqueue UPDATE TO '0.4.0'" to load this file. \quit
