{{/*
Names, labels and values shared by the templates. Resource names are <fullname>-<component>; every
resource carries the standard app.kubernetes.io labels and selectors use the stable subset of them
(name, instance, component), never version or chart.
*/}}

{{- define "bgw.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* <release>-<chart>, or the release name when it already contains the chart name. */}}
{{- define "bgw.fullname" -}}
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

{{- define "bgw.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The image's version: the tag, defaulting to the chart's appVersion. */}}
{{- define "bgw.version" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "bgw.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "bgw.version" .) }}
{{- end }}
{{- end }}

{{/* Selector labels of a component: include "bgw.selectorLabels" (dict "root" $ "component" "proxy") */}}
{{- define "bgw.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bgw.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All standard labels of a component's resources: include "bgw.labels" (dict "root" $ "component" "proxy") */}}
{{- define "bgw.labels" -}}
helm.sh/chart: {{ include "bgw.chart" .root }}
{{ include "bgw.selectorLabels" . }}
app.kubernetes.io/version: {{ include "bgw.version" .root | trunc 63 | quote }}
app.kubernetes.io/part-of: baribhara-gateway
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "bgw.controlFullname" -}}
{{- printf "%s-control" (include "bgw.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{- define "bgw.proxyFullname" -}}
{{- printf "%s-proxy" (include "bgw.fullname" . | trunc 57 | trimSuffix "-") }}
{{- end }}

{{- define "bgw.controlServiceAccountName" -}}
{{- if .Values.controlPlane.serviceAccount.create }}
{{- default (include "bgw.controlFullname" .) .Values.controlPlane.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.controlPlane.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "bgw.proxyServiceAccountName" -}}
{{- if .Values.proxy.serviceAccount.create }}
{{- default (include "bgw.proxyFullname" .) .Values.proxy.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.proxy.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the admin API token, and its key. */}}
{{- define "bgw.adminTokenSecretName" -}}
{{- default (printf "%s-admin-token" (include "bgw.fullname" . | trunc 51 | trimSuffix "-")) .Values.controlPlane.adminToken.existingSecret }}
{{- end }}

{{- define "bgw.adminTokenSecretKey" -}}
{{- if .Values.controlPlane.adminToken.existingSecret }}
{{- required "controlPlane.adminToken.existingSecretKey is required with existingSecret" .Values.controlPlane.adminToken.existingSecretKey }}
{{- else }}
{{- "token" }}
{{- end }}
{{- end }}

{{/* The name of the ConfigMap bgw-control keeps its state in (in the release namespace). */}}
{{- define "bgw.stateConfigMapName" -}}
{{- default (printf "%s-state" (include "bgw.fullname" . | trunc 57 | trimSuffix "-")) .Values.controlPlane.stateConfigMap }}
{{- end }}

{{/* The PersistentVolumeClaim of stateStore=volume. */}}
{{- define "bgw.stateClaimName" -}}
{{- default (printf "%s-state" (include "bgw.controlFullname" .)) .Values.controlPlane.persistence.existingClaim }}
{{- end }}

{{/* The namespaces bgw-control watches, as a JSON list (fromJsonArray); empty means every namespace. */}}
{{- define "bgw.watchNamespaces" -}}
{{- $w := .Values.controlPlane.watchNamespace }}
{{- if kindIs "slice" $w }}
{{- toJson $w }}
{{- else if $w }}
{{- toJson (list $w) }}
{{- else if eq .Values.rbac.scope "namespace" }}
{{- toJson (list .Release.Namespace) }}
{{- else }}
{{- toJson (list) }}
{{- end }}
{{- end }}

{{/* Where proxies reach the config stream: the control plane's Service by its cluster DNS name (the name a
TLS certificate of bgw-control must carry). */}}
{{- define "bgw.controlPlaneHost" -}}
{{- printf "%s.%s.svc" (include "bgw.controlFullname" .) .Release.Namespace }}
{{- end }}

{{- define "bgw.controlPlaneAddress" -}}
{{- printf "%s:%v" (include "bgw.controlPlaneHost" .) .Values.controlPlane.service.xdsPort }}
{{- end }}

{{/* listenAddress:port, e.g. 0.0.0.0:8080 or [::]:8080. */}}
{{- define "bgw.listen" -}}
{{- printf "%s:%v" .address .port }}
{{- end }}

{{/* A component's container securityContext: the top-level one with the component's merged over it. */}}
{{- define "bgw.containerSecurityContext" -}}
{{- $base := deepCopy .root.Values.containerSecurityContext }}
{{- toYaml (mergeOverwrite $base (deepCopy (default (dict) .own))) }}
{{- end }}

{{/* Mounted paths inside the containers. */}}
{{- define "bgw.paths.adminToken" -}}/etc/bgw/admin-token/token{{- end }}
{{- define "bgw.paths.tls" -}}/etc/bgw/tls{{- end }}
{{- define "bgw.paths.bootstrap" -}}/etc/bgw/bootstrap/bootstrap.json{{- end }}
{{- define "bgw.paths.state" -}}/var/lib/bgw/state{{- end }}
{{- define "bgw.paths.cache" -}}/var/cache/bgw{{- end }}

{{/* Checks of value combinations that the schema cannot express. */}}
{{- define "bgw.validate" -}}
{{- if .Values.tls.enabled }}
{{- $_ := required "tls.controlPlane.secretName is required when tls.enabled is true" .Values.tls.controlPlane.secretName }}
{{- $_ := required "tls.proxy.secretName is required when tls.enabled is true" .Values.tls.proxy.secretName }}
{{- end }}
{{- if and .Values.proxy.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.proxy.podDisruptionBudget.maxUnavailable)) (not (kindIs "invalid" .Values.proxy.podDisruptionBudget.minAvailable)) }}
{{- fail "proxy.podDisruptionBudget: set maxUnavailable or minAvailable, not both" }}
{{- end }}
{{- if and (eq .Values.controlPlane.stateStore "volume") (gt (int .Values.controlPlane.replicaCount) 1) }}
{{- fail "controlPlane.stateStore=volume keeps the state in one pod's volume: replicaCount must be 1 (use stateStore=configmap for more)" }}
{{- end }}
{{- $as := .Values.proxy.autoscaling }}
{{- if $as.enabled }}
{{- if not (or $as.targetCPUUtilizationPercentage $as.targetMemoryUtilizationPercentage) }}
{{- fail "proxy.autoscaling: set targetCPUUtilizationPercentage and/or targetMemoryUtilizationPercentage" }}
{{- end }}
{{- if gt (int $as.minReplicas) (int $as.maxReplicas) }}
{{- fail "proxy.autoscaling: minReplicas is greater than maxReplicas" }}
{{- end }}
{{- end }}
{{- $grace := int .Values.proxy.terminationGracePeriodSeconds }}
{{- if le $grace (add (int .Values.proxy.preStopSleepSeconds) (int .Values.proxy.drainTimeoutSeconds)) }}
{{- fail "proxy.terminationGracePeriodSeconds must exceed preStopSleepSeconds + drainTimeoutSeconds" }}
{{- end }}
{{- end }}
