{{/* Names and labels shared by every template. */}}

{{/* The chart name, or nameOverride. */}}
{{- define "openai-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: <release>-<chart>, or <release> alone when it already contains
the chart name. Cluster-scoped objects (ClusterRole, ClusterRoleBinding, ClusterKopfPeering) use it too,
so two releases in one cluster never clash.
*/}}
{{- define "openai-operator.fullname" -}}
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

{{- define "openai-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the operator's pods (never change them: Deployment selectors are immutable). */}}
{{- define "openai-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "openai-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "openai-operator.labels" -}}
helm.sh/chart: {{ include "openai-operator.chart" . }}
{{ include "openai-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: openai-operator
{{- end }}

{{- define "openai-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "openai-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The ClusterKopfPeering name, passed to the operator as --peering-name. */}}
{{- define "openai-operator.peeringName" -}}
{{- default (include "openai-operator.fullname" .) .Values.peering.name }}
{{- end }}

{{- define "openai-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The Secret holding the fingerprint HMAC key: the user's, or the one the chart creates. */}}
{{- define "openai-operator.fingerprintKeySecret" -}}
{{- .Values.fingerprintKey.existingSecret | default (printf "%s-fingerprint-key" (include "openai-operator.fullname" .) | trunc 63 | trimSuffix "-") }}
{{- end }}

{{/* The Deployments to render, as a YAML list: the shards (docs/sharding.md), or one unnamed
entry serving every namespace. Fails unless exactly one shard manages projects and names are unique. */}}
{{- define "openai-operator.shards" -}}
{{- if .Values.shards }}
{{- $managers := 0 }}
{{- $names := dict }}
{{- range .Values.shards }}
{{- if hasKey $names .name }}{{ fail (printf "shards: the name %q is used twice" .name) }}{{ end }}
{{- $_ := set $names .name true }}
{{- if .manageProjects }}{{ $managers = add1 $managers }}{{ end }}
{{- end }}
{{- if ne (int $managers) 1 }}
{{- fail (printf "shards: exactly one shard must have manageProjects: true (%d have)" (int $managers)) }}
{{- end }}
{{- toYaml .Values.shards }}
{{- else }}
- name: ""
  namespaces: []
  manageProjects: true
{{- end }}
{{- end }}

{{/* Every ClusterKopfPeering name of this release (one per shard). */}}
{{- define "openai-operator.peeringNames" -}}
{{- $base := include "openai-operator.peeringName" . }}
{{- range (include "openai-operator.shards" . | fromYamlArray) }}
- {{ $base }}{{ if .name }}-{{ .name }}{{ end }}
{{- end }}
{{- end }}
