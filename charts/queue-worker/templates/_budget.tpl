{{/*
The Postgres connection budget: the most connections this release can hold at once, so that a
scale-out to maxReplicas cannot take the database down at the moment load peaks. Each term is the
most connections one pod of a kind holds (a worker's are counted in services/worker/pools.py; keep
the two in step, tests/chart/test_connection_budget.py checks them) times the most pods of that
kind that can exist at once, a rolling update's maxSurge (25%) included.
*/}}

{{/* WORKER_DB_POOL_SIZE: worker.dbPoolSize, or 4 + ceil(concurrency / 5) (pools.py's default). */}}
{{- define "queue-worker.workerDbPoolSize" -}}
{{- $w := .Values.worker }}
{{- if $w.dbPoolSize }}{{ $w.dbPoolSize }}{{ else }}{{ add 4 (div (add (int $w.concurrency) 4) 5) }}{{ end }}
{{- end }}

{{/* ceil(n * 1.25): n pods plus a rolling update's 25% surge. */}}
{{- define "queue-worker.withSurge" -}}
{{- add . (div (add (mul . 25) 99) 100) }}
{{- end }}

{{/* The budget's terms as JSON: connections per pod, pods, and the total. */}}
{{- define "queue-worker.connectionBudget" -}}
{{- $v := .Values }}
{{- $w := $v.worker }}
{{- /* DBOS's pool + the one connection DBOS opens beside it (measured) + our own pool (2) +
       the wake-up listener (1). */}}
{{- $perWorker := add (include "queue-worker.workerDbPoolSize" . | int) 1 2 1 }}
{{- $workers := int $w.replicas }}
{{- if or $w.autoscaling.enabled $w.keda.enabled }}{{ $workers = int $w.autoscaling.maxReplicas }}{{ end }}
{{- $workerPods := include "queue-worker.withSurge" $workers | int }}
{{- $drainPods := 0 }}{{ $drainer := 0 }}
{{- if $w.drain.enabled }}{{ $drainPods = int $w.drain.maxReplicas }}{{ $drainer = 2 }}{{ end }}
{{- $apiPods := include "queue-worker.withSurge" (int $v.api.replicas) | int }}
{{- /* Our migrate's own connection + DBOS.migrate's pool of 2. */}}
{{- $migrations := ternary 3 0 $v.migrations.enabled }}
{{- $total := add (mul $perWorker (add $workerPods $drainPods)) $drainer (mul $apiPods (int $v.api.dbPoolSize)) $migrations }}
{{- /* Behind PgBouncer (database.pooler) the pods' client sessions come and go and Postgres sees
       PgBouncer's server connections, plus the migrations Job's (it connects directly). Among
       those, each worker pod pins 2 for good (pools.py PINNED_SESSIONS_PER_WORKER: DBOS's
       LISTEN and ours); the pool needs one more per pod (and the drainer) beyond them. */}}
{{- $pinned := 0 }}{{ $poolMin := 0 }}
{{- if $v.database.pooler }}
{{- $pinned = mul 2 (add $workerPods $drainPods) }}
{{- $poolMin = add $pinned $workerPods $drainPods $apiPods (ternary 1 0 $w.drain.enabled) }}
{{- $total = add (int $v.database.poolerServerConnections) $migrations }}
{{- end }}
{{- dict "perWorker" $perWorker "workerPods" $workerPods "drainPods" $drainPods "drainer" $drainer "apiPods" $apiPods "perApi" (int $v.api.dbPoolSize) "migrations" $migrations "pinned" $pinned "poolMin" $poolMin "total" $total | toJson }}
{{- end }}

{{/* max_connections of the in-cluster Postgres: a fixed value, postgres.maxConnections, so that
changing the workers' values never restarts (and, without persistence, empties) the database; the
budget is checked against it like an external server's. */}}
{{- define "queue-worker.postgresMaxConnections" -}}
{{- int .Values.postgres.maxConnections }}
{{- end }}

{{/* Refuse to render a release whose worst case passes the external server's max_connections. */}}
{{- define "queue-worker.checkConnectionBudget" -}}
{{- $v := .Values }}
{{- $b := include "queue-worker.connectionBudget" . | fromJson }}
{{- $max := int $v.database.maxConnections }}
{{- $room := sub $max (int $v.database.reservedConnections) }}
{{- if $v.database.pooler }}
{{- include "queue-worker.checkPooler" (list . $b) }}
{{- if and (gt $max 0) (gt (int $b.total) $room) }}
{{- fail (printf "Postgres connection budget exceeded: at worst this release holds %d connections (PgBouncer's database.poolerServerConnections %d + migrations %d, which connect directly), but database.maxConnections %d - database.reservedConnections %d leaves %d. Lower PgBouncer's pool_size and database.poolerServerConnections with it, or raise database.maxConnections to your server's real max_connections" (int $b.total) (int $v.database.poolerServerConnections) (int $b.migrations) $max (int $v.database.reservedConnections) $room) }}
{{- end }}
{{- else }}
{{- $maxName := "database.maxConnections" }}
{{- if $v.postgres.enabled }}{{ $max = int $v.postgres.maxConnections }}{{ $maxName = "postgres.maxConnections" }}{{ $room = sub $max (int $v.database.reservedConnections) }}{{ end }}
{{- if and (gt $max 0) (gt (int $b.total) $room) }}
{{- fail (printf "Postgres connection budget exceeded: at worst this release holds %d connections (%d worker pods incl. rolling-update surge + %d drain pods, %d each; %d API pods x api.dbPoolSize %d; drainer %d; migrations %d), but %s %d - database.reservedConnections %d leaves %d. Lower worker.autoscaling.maxReplicas (or worker.replicas), worker.concurrency or worker.dbPoolSize, worker.drain.maxReplicas, api.replicas or api.dbPoolSize; or raise database.maxConnections to your server's real max_connections; or put PgBouncer in front (docs/kubernetes.md, \"Connection budget\")" (int $b.total) (int $b.workerPods) (int $b.drainPods) (int $b.perWorker) (int $b.apiPods) (int $b.perApi) (int $b.drainer) (int $b.migrations) $maxName $max (int $v.database.reservedConnections) $room) }}
{{- end }}
{{- end }}
{{- end }}

{{/* database.pooler's requirements: an external PgBouncer, a pool with room beyond the pinned
LISTEN sessions, and migrations that reach Postgres directly. */}}
{{- define "queue-worker.checkPooler" -}}
{{- $v := (index . 0).Values }}{{ $b := index . 1 }}
{{- if $v.postgres.enabled }}
{{- fail "database.pooler names a PgBouncer you run in front of your Postgres; the throwaway postgres.enabled server has none: set database.url or database.existingSecret to PgBouncer's URL and postgres.enabled=false" }}
{{- end }}
{{- if or (not $v.migrations.enabled) (not $v.migrations.existingSecret) }}
{{- fail "database.pooler: migrations must reach Postgres directly, not through PgBouncer: set migrations.enabled=true and migrations.existingSecret to a Secret with Postgres's own URL (otherwise the Job, or each worker, would migrate through the pooler)" }}
{{- end }}
{{- if lt (int $v.database.poolerServerConnections) (int $b.poolMin) }}
{{- fail (printf "database.poolerServerConnections %d is too small for PgBouncer's pool: %d worker and drain pods pin %d LISTEN sessions (2 each) and every pod needs one more connection beyond those (%d API pods, the drainer): at least %d. Raise PgBouncer's pool_size and this value, or lower worker.autoscaling.maxReplicas" (int $v.database.poolerServerConnections) (add (int $b.workerPods) (int $b.drainPods)) (int $b.pinned) (int $b.apiPods) (int $b.poolMin)) }}
{{- end }}
{{- end }}
