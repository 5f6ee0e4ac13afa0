-- pgq_gateway_auth: the password verifier of the roles pgqueue-kafka may
-- authenticate Kafka clients as, and NULL for every other role.
CREATE ROLE regress_gateway LOGIN;
CREATE ROLE regress_alice LOGIN PASSWORD 'alice-secret';
CREATE ROLE regress_nologin NOLOGIN PASSWORD 'secret';
CREATE ROLE regress_super LOGIN SUPERUSER PASSWORD 'secret';
CREATE ROLE regress_expired LOGIN PASSWORD 'secret' VALID UNTIL '2001-01-01';
CREATE ROLE regress_later LOGIN PASSWORD 'secret' VALID UNTIL 'infinity';
CREATE ROLE regress_nopassword LOGIN;
CREATE ROLE regress_stranger LOGIN PASSWORD 'secret';
SET password_encryption = md5;
CREATE ROLE regress_md5 LOGIN PASSWORD 'md5-secret';
RESET password_encryption;
GRANT regress_alice, regress_nologin, regress_super, regress_expired, regress_later,
      regress_nopassword, regress_md5 TO regress_gateway;

-- EXECUTE is revoked from PUBLIC: the gateway's role needs a grant
SET SESSION AUTHORIZATION regress_gateway;
SELECT pgq_gateway_auth('regress_alice');
RESET SESSION AUTHORIZATION;
GRANT EXECUTE ON FUNCTION pgq_gateway_auth(text) TO regress_gateway;

SET SESSION AUTHORIZATION regress_gateway;
-- a role granted to the gateway: its SCRAM verifier, or its md5 hash
SELECT pgq_gateway_auth('regress_alice') ~ '^SCRAM-SHA-256\$4096:[^$]+\$[^:]+:.+$' AS scram;
SELECT pgq_gateway_auth('regress_later') LIKE 'SCRAM-SHA-256$%' AS valid_until_infinity;
SELECT pgq_gateway_auth('regress_md5') = 'md5' || md5('md5-secret' || 'regress_md5') AS md5;
-- the gateway's own role is a member of itself
SELECT pgq_gateway_auth('regress_gateway') IS NULL AS no_password_of_its_own;
-- NULL: cannot log in, superuser, expired, no password, not granted (the
-- definer, a superuser, is a member of every role: the session user counts),
-- unknown
SELECT r AS role, pgq_gateway_auth(r) IS NULL AS refused
  FROM unnest(ARRAY['regress_nologin', 'regress_super', 'regress_expired',
                    'regress_nopassword', 'regress_stranger', 'regress_nobody',
                    '', NULL]) AS r;
RESET SESSION AUTHORIZATION;

-- a role revoked from the gateway is refused from then on
REVOKE regress_alice FROM regress_gateway;
SET SESSION AUTHORIZATION regress_gateway;
SELECT pgq_gateway_auth('regress_alice') IS NULL AS revoked;
RESET SESSION AUTHORIZATION;

-- the function does not depend on the caller's search_path
SET search_path = pg_temp;
SELECT public.pgq_gateway_auth('regress_md5') LIKE 'md5%' AS md5_any_search_path;
RESET search_path;

REVOKE EXECUTE ON FUNCTION pgq_gateway_auth(text) FROM regress_gateway;
DROP ROLE regress_gateway, regress_alice, regress_nologin, regress_super, regress_expired,
          regress_later, regress_nopassword, regress_stranger, regress_md5;
