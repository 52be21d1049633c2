import { type Kysely, sql } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    alter table uploads
      add column sha256 bytea,
      add column preview_key text,
      add column placeholder_hash text,
      add column taken_at timestamptz,
      add column camera_make text,
      add column camera_model text,
      add column lens_model text,
      add column exposure_time double precision,
      add column f_number real,
      add column iso integer,
      add column focal_length real,
      add column latitude double precision,
      add column longitude double precision,
      add column duration_seconds double precision,
      add column video_codec text,
      add column frame_rate real`.execute(db);

  // Duplicate detection looks content up per owner.
  await sql`create index uploads_user_sha256_idx on uploads (user_id, sha256) where sha256 is not null`.execute(db);

  // Generated, so every writer keeps it current without knowing it exists. The description
  // weighs most: it says what is in the picture; names and camera text only hint at it.
  // Dots and underscores split filenames into words ("IMG_0001.jpg"); hyphens stay, as the
  // parser already indexes "red-bicycle" as the compound and as each part.
  await sql`
    alter table uploads add column search_document tsvector generated always as (
      setweight(to_tsvector('english', coalesce(description, '')), 'A') ||
      setweight(to_tsvector('english', regexp_replace(filename, '[._]+', ' ', 'g')), 'B') ||
      setweight(to_tsvector('english',
        coalesce(camera_make, '') || ' ' || coalesce(camera_model, '') || ' ' ||
        coalesce(lens_model, '') || ' ' || coalesce(video_codec, '')), 'C')
    ) stored`.execute(db);
  await sql`create index uploads_search_idx on uploads using gin (search_document)`.execute(db);

  // Cosine similarity for servers without pgvector (embeddings stay real[] either way).
  await sql`
    create function darkroom_cosine(a real[], b real[]) returns double precision
    language sql immutable strict parallel safe as $$
      select sum(x * y) / nullif(sqrt(sum(x * x)) * sqrt(sum(y * y)), 0)
      from unnest(a, b) as t(x, y)
    $$`.execute(db);

  // Use pgvector where the server has it; lacking the extension or the right to create it is fine.
  await sql`
    do $$
    begin
      if exists (select 1 from pg_available_extensions where name = 'vector') then
        create extension if not exists vector;
      end if;
    exception when insufficient_privilege then
      raise notice 'pgvector available but not installable by this role; using darkroom_cosine';
    end $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop function if exists darkroom_cosine(real[], real[])`.execute(db);
  await sql`
    alter table uploads
      drop column if exists search_document,
      drop column if exists sha256,
      drop column if exists preview_key,
      drop column if exists placeholder_hash,
      drop column if exists taken_at,
      drop column if exists camera_make,
      drop column if exists camera_model,
      drop column if exists lens_model,
      drop column if exists exposure_time,
      drop column if exists f_number,
      drop column if exists iso,
      drop column if exists focal_length,
      drop column if exists latitude,
      drop column if exists longitude,
      drop column if exists duration_seconds,
      drop column if exists video_codec,
      drop column if exists frame_rate`.execute(db);
}
