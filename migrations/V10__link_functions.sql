-- The fold's link deletions, one call per phase whatever the link types.
--
-- Joined to the partitioned `link` table, a batch's arrays were planned as a
-- hash join over every partition once several held a million rows each
-- (seconds per batch: a generic plan cannot prune on a parameter, and the
-- cost of an index probe per row is counted for every partition). Here each
-- link type present in the batch is deleted from its own partition (named as
-- the link), in a one-shot plan made with the batch's values, which probes
-- the partition's index per row. Link names come from the catalogue only.
--
-- side: 'a' or 'b', the side the owners are on. With seqs, only links older
-- than the owner's event (a deletion ending what its resource declared).
CREATE OR REPLACE FUNCTION link_delete(side text, links text[], accounts text[], regions text[],
                                       owners text[], seqs bigint[] DEFAULT NULL)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    name text;
    col text := CASE side WHEN 'a' THEN 'a_id' WHEN 'b' THEN 'b_id' END;
BEGIN
    IF col IS NULL THEN
        RAISE EXCEPTION 'link_delete: side must be a or b, not %', side;
    END IF;
    FOR name IN SELECT DISTINCT x FROM unnest(links) AS x LOOP
        IF seqs IS NULL THEN
            EXECUTE format(
                'DELETE FROM %I l USING (SELECT u.a, u.r, u.o FROM unnest($1, $2, $3, $4) '
                'AS u(k, a, r, o) WHERE u.k = $5) u WHERE l.link = $5 AND l.account_id = u.a '
                'AND l.region = u.r AND l.%I = u.o', name, col)
                USING links, accounts, regions, owners, name;
        ELSE
            EXECUTE format(
                'DELETE FROM %I l USING (SELECT u.a, u.r, u.o, u.s FROM unnest($1, $2, $3, $4, $6) '
                'AS u(k, a, r, o, s) WHERE u.k = $5) u WHERE l.link = $5 AND l.account_id = u.a '
                'AND l.region = u.r AND l.%I = u.o AND l.seq < u.s', name, col)
                USING links, accounts, regions, owners, name, seqs;
        END IF;
    END LOOP;
END
$$;
