-- Changecast sync server, schema 2: scopes, per-change log rows, compaction.

-- Every change of every accepted batch, in the scope it belongs to. A change that moves an
-- entity to another scope is two rows: a removal (type delete, removed) in the old scope,
-- then the value in the new one. Pull and stream read by (scope, rev); snapshots read the
-- newest row per entity of a scope at a revision, by (scope, tbl, key, rev).
create table changecast_changes (
  rev bigint not null,
  seq int not null,
  scope text not null,
  tbl text not null,
  -- The canonical text of the wire key (wireKeyText).
  key text not null,
  type text not null,
  -- The change as the protocol carries it (JSON), without its scope.
  change text not null,
  removed boolean not null default false,
  primary key (rev, seq)
);
create index changecast_changes_scope_rev on changecast_changes (scope, rev);
create index changecast_changes_scope_entity on changecast_changes (scope, tbl, key, rev desc, seq desc);
-- Snapshots for a reader of every scope.
create index changecast_changes_entity on changecast_changes (tbl, key, rev desc, seq desc);

-- Batches written under schema 1 become rows of the default scope.
insert into changecast_changes (rev, seq, scope, tbl, key, type, change)
select b.rev, c.seq::int, 'default', c.change->>'table', (c.change->'key')::text, c.change->>'type', c.change::text
from changecast_batches b, json_array_elements(b.changes::json) with ordinality as c(change, seq);

alter table changecast_batches drop column changes;
alter table changecast_batches drop column size;

-- The scope each entity is in now (a deleted one: the scope it was last in).
alter table changecast_entities add column scope text not null default 'default';

-- Compaction: below this revision superseded rows and tombstones are gone, so a client
-- whose position is older must fetch a snapshot again.
alter table changecast_meta add column horizon bigint not null default 0
