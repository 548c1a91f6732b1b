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

{{/*
The gateway YAML: values.config plus the listeners the pod needs (server/admin bound as the
chart's ports say, publicUrl), with redis.enabled the Redis session store, with tracing.enabled the
`tracing` section.
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
{{- $login := get $cfg "login" | default dict }}
{{- if not $login }}{{ fail "redis.enabled needs config.login (the Redis store holds browser sessions)" }}{{ end }}
{{- $login = deepCopy $login }}
{{- $redis := dict "url" (required "redis.url is required when redis.enabled" .Values.redis.url) "keyPrefix" .Values.redis.keyPrefix }}
{{- if .Values.redis.existingSecret }}
{{- $_ := set $redis "passwordFile" (printf "${SECRETS_DIR}/redis/%s" .Values.redis.passwordKey) }}
{{- end }}
{{- $_ := set $login "sessionStore" "redis" }}
{{- $_ := set $login "redis" $redis }}
{{- $_ := set $cfg "login" $login }}
{{- end }}
{{- if .Values.tracing.enabled }}
{{- $tracing := dict "otlpEndpoint" (required "tracing.otlpEndpoint is required when tracing.enabled" .Values.tracing.otlpEndpoint) "serviceName" (.Values.tracing.serviceName | default (include "cdf-auth-gateway.fullname" .)) "sampleRatio" .Values.tracing.sampleRatio }}
{{- with .Values.tracing.headers }}{{ $_ := set $tracing "headers" . }}{{ end }}
{{- $_ := set $cfg "tracing" $tracing }}
{{- end }}
{{- if and (get $cfg "login") (not (get $server "publicUrl")) }}{{ fail "publicUrl is required when config.login is set (the IdP redirects browsers back to it)" }}{{ end }}
{{- toYaml $cfg }}
{{- end }}
