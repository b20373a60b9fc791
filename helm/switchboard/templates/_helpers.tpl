{{/* Prefix of every object name: fullnameOverride or the release name (at most 40 characters, so
"-controller-tls" and friends stay under 63). */}}
{{- define "switchboard.fullname" -}}
{{- $name := default .Release.Name .Values.fullnameOverride -}}
{{- if gt (len $name) 40 -}}
{{- fail (printf "the name prefix %q is longer than 40 characters: set fullnameOverride" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{- define "switchboard.controller.name" -}}{{ include "switchboard.fullname" . }}-controller{{- end -}}
{{- define "switchboard.dataplane.name" -}}{{ include "switchboard.fullname" . }}-dataplane{{- end -}}
{{- define "switchboard.tls.secretName" -}}{{ default (printf "%s-controller-tls" (include "switchboard.fullname" .)) .Values.tls.secretName }}{{- end -}}
{{/* Cluster-scoped objects carry the namespace too, so two releases of the same name in two
namespaces do not collide. */}}
{{- define "switchboard.clusterName" -}}{{ printf "%s-%s" .Release.Namespace (include "switchboard.fullname" .) | trunc 50 | trimSuffix "-" }}{{- end -}}

{{/* The controller's Lease, also named in the Role that may update it. */}}
{{- define "switchboard.leaseName" -}}{{ include "switchboard.controller.name" . }}{{- end -}}
{{/* Audience of the data planes' projected ServiceAccount tokens (the controller's default). */}}
{{- define "switchboard.tokenAudience" -}}switchboard-controller{{- end -}}

{{/* Namespaces the controller watches (release namespace when none is named); empty when it
watches all of them. */}}
{{- define "switchboard.watchNamespaces" -}}
{{- if not .Values.controller.watchAllNamespaces -}}
{{- $list := .Values.controller.watchNamespaces | default (list .Release.Namespace) -}}
{{- toJson (uniq $list) -}}
{{- else -}}
[]
{{- end -}}
{{- end -}}

{{- define "switchboard.labels" -}}
app.kubernetes.io/name: switchboard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: switchboard
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: switchboard
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of one component: (dict "ctx" $ "component" "controller") */}}
{{- define "switchboard.componentLabels" -}}
{{ include "switchboard.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}
{{- define "switchboard.componentSelector" -}}
{{ include "switchboard.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "switchboard.image" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{ $img.repository }}@{{ $img.digest }}
{{- else -}}
{{ $img.repository }}:{{ default .Chart.AppVersion $img.tag }}
{{- end -}}
{{- end -}}

{{/* The restricted Pod Security Standard, for pods and for containers. */}}
{{- define "switchboard.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}
{{- define "switchboard.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Scheduling of one component: (dict "ctx" $ "component" "controller" "values" .Values.controller) */}}
{{- define "switchboard.scheduling" -}}
{{- $v := .values -}}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- if $v.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml $v.topologySpreadConstraints | nindent 2 }}
{{- else if $v.topologySpread.enabled }}
topologySpreadConstraints:
{{- range list "kubernetes.io/hostname" "topology.kubernetes.io/zone" }}
  - maxSkew: 1
    topologyKey: {{ . }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "switchboard.componentSelector" $ | nindent 8 }}
    matchLabelKeys: ["pod-template-hash"]
{{- end }}
{{- end }}
{{- end -}}

{{/* A pod's annotations: Prometheus' scrape annotations (when enabled) and the user's.
(dict "ctx" $ "port" 15021 "extra" .Values.dataplane.podAnnotations) */}}
{{- define "switchboard.podAnnotations" -}}
{{- $a := dict -}}
{{- if .ctx.Values.metrics.scrapeAnnotations -}}
{{- $a = dict "prometheus.io/scrape" "true" "prometheus.io/port" (toString .port) "prometheus.io/path" "/metrics" -}}
{{- end -}}
{{- $a = merge (deepCopy (.extra | default dict)) $a -}}
{{- if $a }}{{ toYaml $a }}{{ end -}}
{{- end -}}
