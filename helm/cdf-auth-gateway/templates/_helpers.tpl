{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "cdf-auth-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cdf-auth-gateway.fullname" -}}
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

{{- define "cdf-auth-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cdf-auth-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cdf-auth-gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "cdf-auth-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "cdf-auth-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cdf-auth-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cdf-auth-gateway.image" -}}
{{- $repo := required "image.repository is required" .Values.image.repository }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Where secretFiles are mounted; ${SECRETS_DIR} in the config. */}}
{{- define "cdf-auth-gateway.secretsDir" -}}/var/run/secrets/cdf-auth-gateway{{- end }}

{{/* "true" when more than one pod may run: replicaCount > 1, or an HPA allowed to go above one. */}}
{{- define "cdf-auth-gateway.severalReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ if gt (int .Values.autoscaling.maxReplicas) 1 }}true{{ end }}
{{- else if gt (int .Values.replicaCount) 1 }}true{{ end }}
{{- end }}

{{/* "true" when an upstream of values.config holds a client-credentials credential. */}}
{{- define "cdf-auth-gateway.clientCredentials" -}}
{{- range $name, $u := ((.Values.config | default dict).upstreams | default dict) }}
{{- if $u }}{{ if eq (toString ((get $u "credentials" | default dict).type)) "client-credentials" }}true{{ end }}{{ end }}
{{- end }}
{{- end }}

{{/*
The gateway YAML: values.config plus the listeners the pod needs (server/admin bound as the
chart's ports say, publicUrl), with redis.enabled the top-level `redis` section the replicas share
(and, with config.login and redis.sessionStore, the Redis session store), with tracing.enabled the
`tracing` section. Redis secrets are named by file (passwordFile, secretFile), never written here.
*/}}
{{- define "cdf-auth-gateway.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $server := deepCopy (get $cfg "server" | default dict) }}
{{- $_ := set $server "host" .Values.listenHost }}
{{- $_ := set $server "port" .Values.ports.proxy }}
{{- if .Values.publicUrl }}{{ $_ := set $server "publicUrl" .Values.publicUrl }}{{ end }}
{{- $_ := set $cfg "server" $server }}
{{- $_ := set $cfg "admin" (dict "host" "0.0.0.0" "port" .Values.ports.admin) }}
{{- if .Values.redis.enabled }}
{{- $r := .Values.redis }}
{{- $url := required "redis.url is required when redis.enabled" $r.url }}
{{- $passwordFile := "" }}
{{- if $r.existingSecret }}{{ $passwordFile = printf "${SECRETS_DIR}/redis/%s" $r.passwordKey }}{{ end }}
{{- $shared := deepCopy (get $cfg "redis" | default dict) }}
{{- $_ := set $shared "url" $url }}
{{- $_ := set $shared "keyPrefix" $r.keyPrefix }}
{{- with $r.lockTtlMs }}{{ $_ := set $shared "lockTtlMs" (int .) }}{{ end }}
{{- if kindIs "bool" $r.shareClientCredentials }}{{ $_ := set $shared "shareClientCredentials" $r.shareClientCredentials }}{{ end }}
{{- with $passwordFile }}{{ $_ := set $shared "passwordFile" . }}{{ end }}
{{- $sealing := $r.sealingSecret | default dict }}
{{- if $sealing.existingSecret }}{{ $_ := set $shared "secretFile" (printf "${SECRETS_DIR}/redis-sealing/%s" $sealing.key) }}{{ end }}
{{- $_ := set $cfg "redis" $shared }}
{{- $login := get $cfg "login" }}
{{- if and $login $r.sessionStore }}
{{- $login = deepCopy $login }}
{{- $store := dict "url" $url "keyPrefix" $r.keyPrefix }}
{{- with $passwordFile }}{{ $_ := set $store "passwordFile" . }}{{ end }}
{{- $_ := set $login "sessionStore" "redis" }}
{{- $_ := set $login "redis" $store }}
{{- $_ := set $cfg "login" $login }}
{{- end }}
{{- if and (not $login) (ne (toString (get $shared "shareClientCredentials")) "false") (not (get $shared "secret")) (not (get $shared "secretFile")) (include "cdf-auth-gateway.clientCredentials" .) }}
{{- fail "redis.sealingSecret.existingSecret is required: without config.login there is no cookie secret to seal the client-credentials tokens the replicas share in Redis (or set redis.shareClientCredentials=false)" }}
{{- end }}
{{- end }}
{{- if and (get $cfg "login") (not (get $cfg "redis")) (include "cdf-auth-gateway.severalReplicas" .) }}
{{- fail "config.login with more than one replica (replicaCount > 1 or autoscaling) needs redis.enabled and redis.url: without the top-level redis section a logout, revocation or back-channel logout only reaches the replica that served it, and two replicas refreshing one session at once can lose it to the IdP's refresh-token rotation. Set redis.enabled=true, or replicaCount=1" }}
{{- end }}
{{- if .Values.tracing.enabled }}
{{- $tracing := dict "otlpEndpoint" (required "tracing.otlpEndpoint is required when tracing.enabled" .Values.tracing.otlpEndpoint) "serviceName" (.Values.tracing.serviceName | default (include "cdf-auth-gateway.fullname" .)) "sampleRatio" .Values.tracing.sampleRatio }}
{{- with .Values.tracing.headers }}{{ $_ := set $tracing "headers" . }}{{ end }}
{{- $_ := set $cfg "tracing" $tracing }}
{{- end }}
{{- if and (get $cfg "login") (not (get $server "publicUrl")) }}{{ fail "publicUrl is required when config.login is set (the IdP redirects browsers back to it)" }}{{ end }}
{{- toYaml $cfg }}
{{- end }}
