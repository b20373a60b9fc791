{{/* A map as an indented YAML block under `name:` (two spaces), or nothing when it is empty. */}}
{{- define "switchboard-crds.block" -}}
{{- if .map }}
{{- printf "  %s:\n" .name }}
{{- range $k, $v := .map }}
{{- printf "    %s: %s\n" $k (toJson (toString $v)) }}
{{- end }}
{{- end }}
{{- end }}
