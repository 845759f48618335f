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
{{- dict "perWorker" $perWorker "workerPods" $workerPods "drainPods" $drainPods "drainer" $drainer "apiPods" $apiPods "perApi" (int $v.api.dbPoolSize) "migrations" $migrations "total" $total | toJson }}
{{- end }}

{{/* max_connections of the in-cluster Postgres: the budget plus the reserved connections. */}}
{{- define "queue-worker.postgresMaxConnections" -}}
{{- $b := include "queue-worker.connectionBudget" . | fromJson }}
{{- add (int $b.total) (int .Values.database.reservedConnections) }}
{{- end }}

{{/* Refuse to render a release whose worst case passes the external server's max_connections. */}}
{{- define "queue-worker.checkConnectionBudget" -}}
{{- $v := .Values }}
{{- $b := include "queue-worker.connectionBudget" . | fromJson }}
{{- $max := int $v.database.maxConnections }}
{{- $room := sub $max (int $v.database.reservedConnections) }}
{{- if and (not $v.postgres.enabled) (gt $max 0) (gt (int $b.total) $room) }}
{{- fail (printf "Postgres connection budget exceeded: at worst this release holds %d connections (%d worker pods incl. rolling-update surge + %d drain pods, %d each; %d API pods x api.dbPoolSize %d; drainer %d; migrations %d), but database.maxConnections %d - database.reservedConnections %d leaves %d. Lower worker.autoscaling.maxReplicas (or worker.replicas), worker.concurrency or worker.dbPoolSize, worker.drain.maxReplicas, api.replicas or api.dbPoolSize; or raise database.maxConnections to your server's real max_connections; or put PgBouncer in front (docs/kubernetes.md, \"Connection budget\")" (int $b.total) (int $b.workerPods) (int $b.drainPods) (int $b.perWorker) (int $b.apiPods) (int $b.perApi) (int $b.drainer) (int $b.migrations) $max (int $v.database.reservedConnections) $room) }}
{{- end }}
{{- end }}
