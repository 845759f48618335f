{{/* Names, labels and the shared pieces of every pod. */}}

{{- define "queue-worker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, or <release> when it already contains the chart name; 63 chars max. */}}
{{- define "queue-worker.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Names of the components: the suffix is kept whole, the prefix shortened if needed. */}}
{{- define "queue-worker.component" -}}
{{- $root := index . 0 }}{{- $component := index . 1 }}
{{- printf "%s-%s" (include "queue-worker.fullname" $root | trunc (int (sub 62 (len $component))) | trimSuffix "-") $component }}
{{- end }}

{{- define "queue-worker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable for the life of a release (Deployments cannot change them). */}}
{{- define "queue-worker.selectorLabels" -}}
{{- $root := index . 0 }}{{- $component := index . 1 -}}
app.kubernetes.io/name: {{ include "queue-worker.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ $component }}
{{- end }}

{{- define "queue-worker.labels" -}}
{{- $root := index . 0 -}}
{{ include "queue-worker.selectorLabels" . }}
helm.sh/chart: {{ include "queue-worker.chart" $root }}
app.kubernetes.io/version: {{ include "queue-worker.versionLabel" . | quote }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/part-of: queue-worker
{{- with $root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
app.kubernetes.io/version: the tag of the image the component runs (the API's for api objects,
the worker's for everything else: it also runs the migrations), so an overridden tag shows on
every object; the chart's appVersion when no tag is set. A label value is at most 63 characters
and starts and ends with a letter or digit, which an image tag need not.
*/}}
{{- define "queue-worker.versionLabel" -}}
{{- $root := index . 0 }}{{- $component := index . 1 }}
{{- $image := ternary $root.Values.api.image $root.Values.worker.image (eq $component "api") }}
{{- $image.tag | default $root.Chart.AppVersion | toString | trimAll "-._" | trunc 63 | trimAll "-._" }}
{{- end }}

{{/*
Labels of a pod template: the selector labels (they always win: a Deployment must select its own
pods), then the component's podLabels, then commonLabels, which reach every pod as they reach
every object. Never in selectors, which cannot change after install.
*/}}
{{- define "queue-worker.podLabels" -}}
{{- $root := index . 0 }}{{- $component := index . 1 }}{{- $extra := index . 2 }}
{{- $selector := include "queue-worker.selectorLabels" (list $root $component) | fromYaml }}
{{- toYaml (merge $selector ($extra | default dict) ($root.Values.commonLabels | default dict)) }}
{{- end }}

{{- define "queue-worker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "queue-worker.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image tag and the full image reference. */}}
{{- define "queue-worker.tag" -}}
{{- .image.tag | default .root.Chart.AppVersion | toString }}
{{- end }}

{{- define "queue-worker.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- printf "%s:%s" .image.repository (include "queue-worker.tag" .) }}
{{- end }}
{{- end }}

{{/* The Secret and key holding the services' database URL. */}}
{{- define "queue-worker.databaseSecretName" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else }}
{{- include "queue-worker.component" (list . "database") }}
{{- end }}
{{- end }}

{{- define "queue-worker.databaseSecretKey" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecretKey }}
{{- else }}
{{- "url" }}
{{- end }}
{{- end }}

{{/* True when the chart creates the database Secret (from database.url or the in-cluster Postgres). */}}
{{- define "queue-worker.createsDatabaseSecret" -}}
{{- if not .Values.database.existingSecret }}true{{ end }}
{{- end }}

{{- define "queue-worker.postgresHost" -}}
{{- include "queue-worker.component" (list . "postgres") }}
{{- end }}

{{/* The URL the chart writes into its Secret. */}}
{{- define "queue-worker.databaseUrl" -}}
{{- if .Values.database.url }}
{{- .Values.database.url }}
{{- else }}
{{- $pg := .Values.postgres }}
{{- printf "postgresql://%s:%s@%s:5432/%s" ($pg.user | urlquery) ($pg.password | urlquery) (include "queue-worker.postgresHost" .) $pg.database }}
{{- end }}
{{- end }}

{{/*
Checks across values that a JSON schema cannot say clearly. serviceaccount.yaml includes this on
its first line, outside any condition, so it runs once per render whatever is enabled, and
`helm template` and `helm install` stop with one of these messages.
*/}}
{{- define "queue-worker.validate" -}}
{{- $v := .Values }}
{{- if and $v.worker.autoscaling.enabled $v.worker.keda.enabled }}
{{- fail "worker.autoscaling.enabled and worker.keda.enabled are mutually exclusive (KEDA creates its own HPA): set one of them to false" }}
{{- end }}
{{- if and (not $v.database.existingSecret) (not $v.database.url) (not $v.postgres.enabled) }}
{{- fail "no database: set database.existingSecret (recommended), database.url, or postgres.enabled=true (trying it out only)" }}
{{- end }}
{{- if and $v.postgres.enabled (or $v.database.existingSecret $v.database.url) }}
{{- fail "postgres.enabled=true starts a throwaway database, but database.existingSecret or database.url also names one: keep only one" }}
{{- end }}
{{- if and $v.worker.autoscaling.enabled (gt (int $v.worker.autoscaling.minReplicas) (int $v.worker.autoscaling.maxReplicas)) }}
{{- fail (printf "worker.autoscaling.minReplicas (%v) is greater than worker.autoscaling.maxReplicas (%v)" $v.worker.autoscaling.minReplicas $v.worker.autoscaling.maxReplicas) }}
{{- end }}
{{- if and $v.worker.keda.enabled (gt (int $v.worker.keda.minReplicas) (int $v.worker.autoscaling.maxReplicas)) }}
{{- fail (printf "worker.keda.minReplicas (%v) is greater than worker.autoscaling.maxReplicas (%v)" $v.worker.keda.minReplicas $v.worker.autoscaling.maxReplicas) }}
{{- end }}
{{- if lt (float64 $v.worker.deadAfterSeconds) (mulf (float64 $v.worker.heartbeatSeconds) 2.0) }}
{{- fail (printf "worker.deadAfterSeconds (%v) must be at least twice worker.heartbeatSeconds (%v): one late heartbeat must not get a live worker's work taken away" $v.worker.deadAfterSeconds $v.worker.heartbeatSeconds) }}
{{- end }}
{{- if and $v.networkPolicy.enabled $v.networkPolicy.apiFrom (not $v.networkPolicy.metricsFrom) }}
{{- fail "networkPolicy.apiFrom limits who reaches the API port, which also serves /metrics (the autoscaling signal): set networkPolicy.metricsFrom to your Prometheus's peers as well, or it cannot scrape the API" }}
{{- end }}
{{- include "queue-worker.checkConnectionBudget" . }}
{{- if and $v.api.ingress.enabled (not $v.api.ingress.hosts) }}
{{- fail "api.ingress.enabled=true needs at least one host in api.ingress.hosts" }}
{{- end }}
{{- end }}

{{/* The container security context of every pod of the chart. */}}
{{- define "queue-worker.containerSecurityContext" -}}
{{ toYaml .Values.securityContext }}
{{- end }}

{{/*
The writable /tmp of the API, worker, drainer and migrations pods: their root filesystem is
read-only, and Python and its libraries may still want a scratch directory. The mount goes in
the container's volumeMounts, the volume (argument: its size limit) in the pod's volumes.
*/}}
{{- define "queue-worker.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "queue-worker.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ . }}
{{- end }}

{{- define "queue-worker.databaseEnv" -}}
- name: DBOS_SYSTEM_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "queue-worker.databaseSecretName" . }}
      key: {{ include "queue-worker.databaseSecretKey" . }}
- name: LOG_LEVEL
  value: {{ .Values.logging.level | quote }}
- name: LOG_FORMAT
  value: {{ .Values.logging.format | quote }}
{{- with .Values.database.pooler }}
- name: DATABASE_POOLER
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/* Pod annotations: a checksum of the chart-made Secret, so a new URL rolls the pods. */}}
{{- define "queue-worker.podAnnotations" -}}
{{- $root := index . 0 }}{{- $port := index . 1 }}{{- $extra := index . 2 -}}
{{- if include "queue-worker.createsDatabaseSecret" $root }}
checksum/database: {{ include "queue-worker.databaseUrl" $root | sha256sum | trunc 16 }}
{{- end }}
{{- if $root.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ $port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with $extra }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* topologySpreadConstraints with the component's labelSelector filled in when omitted. */}}
{{- define "queue-worker.topologySpread" -}}
{{- $root := index . 0 }}{{- $component := index . 1 }}{{- $constraints := index . 2 }}
{{- range $constraints }}
{{- $c := deepCopy . }}
{{- if not (hasKey $c "labelSelector") }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" (include "queue-worker.selectorLabels" (list $root $component) | fromYaml)) }}
{{- end }}
- {{ toYaml $c | nindent 2 | trim }}
{{- end }}
{{- end }}

{{/* The default KEDA query: the backlog recording rule (deduplicated across API replicas). */}}
{{- define "queue-worker.kedaQuery" -}}
{{- if .Values.worker.keda.query }}
{{- .Values.worker.keda.query }}
{{- else }}
{{- printf "max by (queue) (queue_worker:queue_backlog:max{queue=%q,namespace=%q})" .Values.worker.autoscaling.queue .Release.Namespace }}
{{- end }}
{{- end }}

{{/* NetworkPolicy egress of the API and worker pods: DNS and the database port only. */}}
{{- define "queue-worker.egressToDatabase" -}}
{{- $root := index . 0 }}{{- $np := $root.Values.networkPolicy -}}
# DNS, to resolve the database host.
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
# The database, on its port only.
- ports:
    - port: {{ $np.databasePort }}
      protocol: TCP
  {{- if $np.databaseTo }}
  to:
    {{- toYaml $np.databaseTo | nindent 4 }}
  {{- else if $root.Values.postgres.enabled }}
  to:
    - podSelector:
        matchLabels:
          {{- include "queue-worker.selectorLabels" (list $root "postgres") | nindent 10 }}
  {{- end }}
{{- end }}
