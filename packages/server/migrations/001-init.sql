-- Changecast sync server, schema 1.

-- The log's identity (epoch) and its newest revision. Every write locks this row, so
-- revisions commit in order and a reader by revision never skips a batch.
create table changecast_meta (
  id int primary key check (id = 1),
  epoch text not null,
  head bigint not null default 0
);
insert into changecast_meta (id, epoch, head) values (1, md5(random()::text || clock_timestamp()::text), 0);

-- Accepted batches, in server order. `changes` is the batch's JSON as the protocol carries it.
create table changecast_batches (
  rev bigint primary key,
  -- The client id that pushed it, or the origin a backend write named.
  origin text not null,
  -- The client's changelog rev (null for backend writes): (origin, client_rev) is idempotent.
  client_rev bigint,
  tx text not null,
  at double precision not null,
  changes text not null,
  size int not null,
  committed_at timestamptz not null default now()
);
create unique index changecast_batches_client on changecast_batches (origin, client_rev) where client_rev is not null;

-- The current state of every entity (a null value: deleted), for rejections and reads.
create table changecast_entities (
  tbl text not null,
  -- The canonical text of the wire key (wireKeyText).
  key text not null,
  value text,
  rev bigint not null,
  primary key (tbl, key)
);

-- Which principal a client id belongs to: a client can never act as another.
create table changecast_clients (
  client_id text primary key,
  principal text not null,
  first_seen timestamptz not null default now()
);
