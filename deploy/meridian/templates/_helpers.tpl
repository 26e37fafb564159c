{{- define "meridian.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "meridian.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "meridian.labels" -}}
{{ include "meridian.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "meridian.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "meridian.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The configuration file: the user's config with what the chart decides. */}}
{{- define "meridian.config" -}}
{{- $fixed := dict "apiVersion" "meridian.dev/v1alpha1" "kind" "Config" "listen" ":8080" "cacheDir" "/var/cache/meridian" -}}
{{- if .Values.ha.enabled -}}
{{- $_ := set $fixed "ha" (dict "name" (include "meridian.fullname" .) "leaseDuration" .Values.ha.leaseDuration "shards" .Values.ha.shards) -}}
{{- end -}}
{{- toYaml (merge $fixed (deepCopy .Values.config)) -}}
{{- end -}}
