-- Search (GET /api/v1/search): trigram indexes over each kind's generated
-- search text (the columns themselves come with the catalogue, V12).
-- pg_trgm ships with PostgreSQL and is a trusted extension (a database
-- owner may create it).
-- One per database: in public, whichever schema the projection lives in
-- (a replay into another schema finds it there; its operator class is named
-- public.gin_trgm_ops).
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public;
