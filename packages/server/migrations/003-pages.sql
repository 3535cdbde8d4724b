-- Changecast sync server, schema 3: the key that signs catch-up page addresses (docs/protocol.md,
-- "Cacheable pages"), shared by every instance on this database; set at first start.
alter table changecast_meta add column page_key text
