-- depends: 0016_deadline_time_zone
-- Every token belongs to a named person (issue 15): the audit trail, supervision orders, the
-- accountability register and printed pages show who acted, which "token 42" did not tell an
-- accountability meeting. The post (职务) is shown beside the name; the mobile number lets a
-- group-robot message @mention the person and is never shown on a public route.
--
-- Tokens made before this were allowed a blank name; they keep their name when they had one,
-- else are called "token N" (what the audit trail showed for them until now).
ALTER TABLE api_token
    ADD COLUMN post   text CHECK (post IS NULL OR btrim(post) <> ''),
    ADD COLUMN mobile text CHECK (mobile IS NULL OR mobile ~ '^\+?[0-9]{5,20}$');
UPDATE api_token SET name = 'token ' || id WHERE btrim(name) = '';
ALTER TABLE api_token
    ALTER COLUMN name DROP DEFAULT,
    ADD CONSTRAINT api_token_named CHECK (btrim(name) <> '');
