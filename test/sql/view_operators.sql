-- The views' bodies qualify every operator: an operator on the search_path
-- when the extension is created cannot capture them.  Here public offers
-- an exact match for pgq_topic_grants' "grantee::oid = 0" (oid = integer,
-- for which pg_catalog has only oid = oid): if the view used it, the view
-- would depend on it and the DROP OPERATOR below would fail.
DROP EXTENSION pgqueue;
CREATE FUNCTION public.oid_int_eq_captured(oid, integer) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS 'SELECT true';
CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = integer,
                         FUNCTION = public.oid_int_eq_captured);
CREATE EXTENSION pgqueue;
SELECT count(*) FROM pg_catalog.pg_depend d
  JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
 WHERE d.refobjid = 'public.=(oid, integer)'::regoperator;
DROP OPERATOR public.= (oid, integer);
DROP FUNCTION public.oid_int_eq_captured(oid, integer);
-- the views still work
CREATE ROLE view_operators_reader;
SELECT pgq_create_topic('vo');
SELECT pgq_grant('vo', 'view_operators_reader', 'consume');
SELECT pgq_grant('vo', 'public', 'produce');
SELECT topic, grantee, privilege FROM pgq_topic_grants ORDER BY grantee;
SELECT pgq_drop_topic('vo');
DROP ROLE view_operators_reader;
