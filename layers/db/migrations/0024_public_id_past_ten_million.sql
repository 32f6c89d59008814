-- depends: 0023_tallies
-- Public ids are 'SW' and the sequence number padded to seven digits. lpad also cuts a longer
-- string to the length, so from the ten-millionth issue on (a city's archive after about ten
-- years) the ids repeated earlier ones and every report failed on the unique key. Numbers of
-- eight digits and more are now kept whole.
CREATE FUNCTION issue_public_id(n bigint) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'SW' || CASE WHEN n < 10000000 THEN lpad(n::text, 7, '0') ELSE n::text END
$$;
ALTER TABLE issue ALTER COLUMN public_id
    SET DEFAULT issue_public_id(nextval('issue_public_seq'));
