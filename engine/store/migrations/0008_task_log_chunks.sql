-- Task logs in chunks: one row holds many consecutive lines of one attempt (up to ~64 KiB), instead of
-- one row per line. A row per line cost ~380 bytes of table and index for a 100-byte line (200 MB of
-- output became 763 MB); a chunk pays the row and index overhead once, and its arrays are compressed
-- by TOAST.
--
-- Lines are numbered from 1 within their attempt (`first_line` + position), bytes counted from 0
-- (`first_byte`, UTF-8 plus one newline per line). The worker drops old chunks of a long log (its cap,
-- workers.max_log_bytes), so numbers may jump; readers show a jump as one "lines left out" line.
CREATE TABLE cairn.task_log_chunk (
  run_id     text NOT NULL,
  task_id    text NOT NULL,
  attempt    integer NOT NULL,
  first_line bigint NOT NULL CHECK (first_line >= 1),
  first_byte bigint NOT NULL CHECK (first_byte >= 0),
  line_count integer NOT NULL CHECK (line_count >= 1),
  bytes      integer NOT NULL CHECK (bytes >= line_count),
  -- One letter per line: o stdout, e stderr, l the operator's own log.
  streams    text NOT NULL CHECK (length(streams) = line_count AND streams ~ '^[oel]+$'),
  ats        timestamptz[] NOT NULL CHECK (cardinality(ats) = line_count),
  lines      text[] NOT NULL CHECK (cardinality(lines) = line_count),
  PRIMARY KEY (run_id, task_id, attempt, first_line)
);

-- The lines stored so far, in chunks of up to 500 lines.
INSERT INTO cairn.task_log_chunk (run_id, task_id, attempt, first_line, first_byte, line_count, bytes, streams, ats, lines)
SELECT run_id, task_id, attempt, min(n), min(offset_bytes), count(*), sum(size),
       string_agg(CASE stream WHEN 'stdout' THEN 'o' WHEN 'stderr' THEN 'e' ELSE 'l' END, '' ORDER BY n),
       array_agg(at ORDER BY n), array_agg(line ORDER BY n)
FROM (
  SELECT run_id, task_id, attempt, stream, line, at, n, size, sum(size) OVER w - size AS offset_bytes
  FROM (
    SELECT run_id, task_id, attempt, stream, line, at, id,
           row_number() OVER (PARTITION BY run_id, task_id, attempt ORDER BY id) AS n,
           octet_length(line) + 1 AS size
    FROM cairn.task_log
  ) numbered
  WINDOW w AS (PARTITION BY run_id, task_id, attempt ORDER BY n)
) counted
GROUP BY run_id, task_id, attempt, (n - 1) / 500;

DROP TABLE cairn.task_log;

-- One row per stored line, for SQL users and ad-hoc checks (cairn itself reads the chunks).
CREATE VIEW cairn.task_log AS
SELECT c.run_id, c.task_id, c.attempt, c.first_line + l.n - 1 AS id,
       CASE substr(c.streams, l.n::integer, 1) WHEN 'o' THEN 'stdout' WHEN 'e' THEN 'stderr' ELSE 'log' END AS stream,
       l.line, l.at
FROM cairn.task_log_chunk c
CROSS JOIN LATERAL unnest(c.lines, c.ats) WITH ORDINALITY AS l(line, at, n);
