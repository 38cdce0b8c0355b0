-- The model server (SPEC section 7, "Model server").
--
-- 1. Every change of a model version's stage or traffic share is announced on the channel
--    `cairn_models` (payload: the model's name), sent when the change commits, so that every server
--    process following the registry reloads its routing table at once.
CREATE FUNCTION cairn.notify_model_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('cairn_models', OLD.model);
  ELSIF TG_OP = 'INSERT' OR NEW.stage IS DISTINCT FROM OLD.stage OR NEW.traffic_share IS DISTINCT FROM OLD.traffic_share THEN
    PERFORM pg_notify('cairn_models', NEW.model);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER model_version_notify AFTER INSERT OR UPDATE OR DELETE ON cairn.model_version
  FOR EACH ROW EXECUTE FUNCTION cairn.notify_model_version();

-- 2. Serving figures per server process, model version and one-second bucket, written by each
--    server at least every 250 ms (one row per flush: rows of the same bucket add up). Latencies are
--    counted in log-spaced buckets (engine/serve/latency-buckets.ts: bucket i holds latencies up to
--    0.01 ms * 2^(i/16)), kept sparse: `latency_index[k]` has `latency_count[k]` requests.
--    `errors`: answers the version failed to give (see docs/serving.md); `requests` includes them.
CREATE TABLE cairn.serving_stats (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  server_id       text NOT NULL,
  model           text NOT NULL,
  version         integer NOT NULL,
  -- Start of the one-second bucket (the server's clock).
  bucket          timestamptz NOT NULL,
  requests        integer NOT NULL CHECK (requests >= 0),
  errors          integer NOT NULL CHECK (errors >= 0 AND errors <= requests),
  latency_sum_ms  double precision NOT NULL DEFAULT 0,
  latency_index   smallint[] NOT NULL,
  latency_count   integer[] NOT NULL,
  CHECK (cardinality(latency_index) = cardinality(latency_count))
);
CREATE INDEX serving_stats_version_bucket ON cairn.serving_stats (model, version, bucket);
CREATE INDEX serving_stats_bucket ON cairn.serving_stats (bucket);
