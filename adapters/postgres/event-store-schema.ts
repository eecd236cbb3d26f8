/**
 * The event store's tables and its append function, one SQL text for Postgres (pg) and PGlite.
 * Why positions are handed out under a short mutex together with the transaction id: docs/event-store.md.
 */

/** Postgres identifiers we build SQL from: lowercase letters, digits and underscores. */
export function assertSchemaName(schema: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new Error(`event store schema must match [a-z_][a-z0-9_]*, got "${schema}"`);
  }
  return schema;
}

/** The advisory lock key that serialises position allocation: one per schema. */
export function positionLockKey(schema: string): number {
  let hash = 0;
  for (const char of `tradecore.positions.${schema}`) hash = (Math.imul(hash, 31) + char.charCodeAt(0)) | 0;
  return hash;
}

export const notifyChannel = (schema: string) => `${schema}_events`;

export function eventStoreSchema(schema: string): string {
  const s = assertSchemaName(schema);
  const lockKey = positionLockKey(s);
  return `
CREATE SCHEMA IF NOT EXISTS ${s};

CREATE SEQUENCE IF NOT EXISTS ${s}.event_position;

CREATE TABLE IF NOT EXISTS ${s}.streams (
  stream_id text PRIMARY KEY,
  version   bigint NOT NULL
);

CREATE TABLE IF NOT EXISTS ${s}.events (
  position       bigint PRIMARY KEY,
  transaction_id xid8 NOT NULL,
  stream_id      text NOT NULL,
  version        bigint NOT NULL,
  event_id       uuid NOT NULL UNIQUE,
  type           text NOT NULL,
  data           jsonb NOT NULL,
  metadata       jsonb NOT NULL,
  recorded_at    timestamptz NOT NULL DEFAULT date_trunc('milliseconds', clock_timestamp()),
  UNIQUE (stream_id, version)
);

CREATE TABLE IF NOT EXISTS ${s}.snapshots (
  stream_id      text NOT NULL,
  schema_version integer NOT NULL,
  version        bigint NOT NULL,
  state          jsonb NOT NULL,
  taken_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (stream_id, schema_version, version)
);

-- Appends p_events ([{id,type,data,metadata}]) to p_stream at p_positions, if p_expected holds
-- ('any' | 'no_stream' | 'stream_exists' | a version); returns each event's position, the
-- stream's version after the append, and when each event was recorded (epoch milliseconds).
-- The positions come from append_events or append_events_batch, taken with the transaction id.
DROP FUNCTION IF EXISTS ${s}.append_to_stream(text, text, jsonb, bigint[]);
CREATE FUNCTION ${s}.append_to_stream(p_stream text, p_expected text, p_events jsonb, p_positions bigint[])
RETURNS TABLE (event_position bigint, stream_version bigint, recorded_ms bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  v_count   integer := jsonb_array_length(p_events);
  v_current bigint;
BEGIN
  -- One statement creates or bumps the stream row and locks it until commit: writers of one
  -- stream queue here, and each checks the expected version against the committed truth.
  -- A refusal below rolls the bump back.
  INSERT INTO ${s}.streams AS st (stream_id, version) VALUES (p_stream, v_count - 1)
    ON CONFLICT (stream_id) DO UPDATE SET version = st.version + v_count
    RETURNING st.version - v_count INTO v_current;

  IF NOT (p_expected = 'any'
       OR (p_expected = 'no_stream' AND v_current = -1)
       OR (p_expected = 'stream_exists' AND v_current <> -1)
       OR (p_expected ~ '^-?[0-9]+$' AND v_current = p_expected::bigint)) THEN
    RAISE EXCEPTION '%', v_current USING ERRCODE = 'TCWEV';
  END IF;

  -- An event id already stored raises unique_violation: the adapter then answers a retry of
  -- stored events with their original positions, off this hot path.
  --
  -- No pg_notify here: a transaction that notifies holds a database-wide lock through its commit
  -- and WAL flush, which serialises every append and defeats group commit. The adapter notifies
  -- after the commit instead (SqlEventStore.announce).
  RETURN QUERY
  WITH inserted AS (
    INSERT INTO ${s}.events AS e (position, transaction_id, stream_id, version, event_id, type, data, metadata)
    SELECT p_positions[x.ordinal], pg_current_xact_id(), p_stream, v_current + x.ordinal,
           (x.event->>'id')::uuid, x.event->>'type', x.event->'data', x.event->'metadata'
      FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(event, ordinal)
    RETURNING e.position, e.recorded_at
  )
  SELECT i.position, v_current + v_count, (extract(epoch from i.recorded_at) * 1000)::int8
    FROM inserted AS i ORDER BY i.position;
END
$fn$;

-- Appends p_events to p_stream if p_expected holds. Must run as its own transaction.
-- Dropped first: an older version returned one more column, and a return type cannot be replaced.
DROP FUNCTION IF EXISTS ${s}.append_events(text, text, jsonb);
CREATE FUNCTION ${s}.append_events(p_stream text, p_expected text, p_events jsonb)
RETURNS TABLE (event_position bigint, stream_version bigint, recorded_ms bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
  v_count     integer := jsonb_array_length(p_events);
  v_positions bigint[];
BEGIN
  -- Take the transaction id and the positions together, under a mutex held for microseconds:
  -- positions then follow transaction-id order, which is what lets readers skip nothing.
  PERFORM pg_advisory_lock(${lockKey});
  PERFORM pg_current_xact_id();
  SELECT array_agg(nextval('${s}.event_position')) INTO v_positions FROM generate_series(1, v_count);
  PERFORM pg_advisory_unlock(${lockKey});

  RETURN QUERY SELECT * FROM ${s}.append_to_stream(p_stream, p_expected, p_events, v_positions);
END
$fn$;

-- Several appends ([{stream, expected, first, events}]) in one transaction, each kept or refused
-- on its own: a refused one (wrong expected version, a stored event id) rolls back only its own
-- subtransaction and answers its SQLSTATE and message in place of rows. Every position of the
-- group is taken at once, with the transaction id, so positions still follow transaction-id order.
-- Must run as its own transaction; the caller orders the appends by stream, so that two groups
-- lock streams in the same order and never deadlock, and gives each append's place among the
-- group's positions (first, 0-based) in the order its appends were made: positions follow that
-- order, not the streams'. Without first (an older caller), positions follow the array.
DROP FUNCTION IF EXISTS ${s}.append_events_batch(jsonb);
CREATE FUNCTION ${s}.append_events_batch(p_appends jsonb)
RETURNS TABLE (item integer, event_position bigint, stream_version bigint, recorded_ms bigint,
               error_state text, error_message text)
LANGUAGE plpgsql AS $fn$
DECLARE
  v_positions bigint[];
  v_append    jsonb;
  v_item      integer := 0;
  v_next      integer := 1;
  v_count     integer;
  v_first     integer;
  v_mine      bigint[];
BEGIN
  PERFORM pg_advisory_lock(${lockKey});
  PERFORM pg_current_xact_id();
  SELECT array_agg(nextval('${s}.event_position')) INTO v_positions
    FROM generate_series(1, (SELECT sum(jsonb_array_length(a->'events'))::integer
                               FROM jsonb_array_elements(p_appends) AS a));
  PERFORM pg_advisory_unlock(${lockKey});

  FOR v_append IN SELECT a FROM jsonb_array_elements(p_appends) AS a LOOP
    v_count := jsonb_array_length(v_append->'events');
    v_first := coalesce((v_append->>'first')::integer + 1, v_next);
    v_mine := v_positions[v_first : v_first + v_count - 1];
    BEGIN
      RETURN QUERY SELECT v_item, r.event_position, r.stream_version, r.recorded_ms, NULL::text, NULL::text
        FROM ${s}.append_to_stream(v_append->>'stream', v_append->>'expected', v_append->'events', v_mine) AS r;
    EXCEPTION WHEN OTHERS THEN
      RETURN QUERY SELECT v_item, NULL::bigint, NULL::bigint, NULL::bigint, SQLSTATE::text, SQLERRM;
    END;
    v_next := v_next + v_count;
    v_item := v_item + 1;
  END LOOP;
END
$fn$;
`;
}
