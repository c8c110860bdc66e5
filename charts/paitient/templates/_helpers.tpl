{{/* Names, labels, images and the operator's configuration, shared by every template. */}}

{{- define "paitient.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<release>-<chart>", or the release name when it already holds the chart name. */}}
{{- define "paitient.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Object names of the two components (53 + "-operator" stays within 63). */}}
{{- define "paitient.operator.fullname" -}}
{{- printf "%s-operator" (include "paitient.fullname" . | trunc 54 | trimSuffix "-") -}}
{{- end -}}

{{- define "paitient.frontDoor.fullname" -}}
{{- printf "%s-api" (include "paitient.fullname" . | trunc 59 | trimSuffix "-") -}}
{{- end -}}

{{- define "paitient.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object; pass (dict "ctx" $ "component" "operator"). */}}
{{- define "paitient.labels" -}}
helm.sh/chart: {{ include "paitient.chart" .ctx }}
{{ include "paitient.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: paitient
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "paitient.selectorLabels" -}}
app.kubernetes.io/name: {{ include "paitient.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "paitient.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "paitient.operator.fullname" .) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "paitient.frontDoor.serviceAccountName" -}}
{{- if .Values.frontDoor.serviceAccount.create -}}
{{- default (include "paitient.frontDoor.fullname" .) .Values.frontDoor.serviceAccount.name -}}
{{- else -}}
{{- required "frontDoor.serviceAccount.name is required when frontDoor.serviceAccount.create is false" .Values.frontDoor.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* "repository:tag" with the tag defaulting to appVersion; pass (dict "ctx" $ "image" .Values.x.image). */}}
{{- define "paitient.image" -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .ctx.Chart.AppVersion | toString) -}}
{{- end -}}

{{/* The port every model gateway serves on: the operator's gateway.port, 8443 by default. */}}
{{- define "paitient.gatewayPort" -}}
{{- $gateway := .Values.operator.config.gateway | default dict -}}
{{- $gateway.port | default 8443 | int -}}
{{- end -}}

{{/* Who issues the gateways' serving certificates: "operator" (its own CA) or "cert-manager". */}}
{{- define "paitient.tlsIssuer" -}}
{{- $tls := .Values.operator.config.tls | default dict -}}
{{- $tls.issuer | default "operator" -}}
{{- end -}}

{{/*
Who gives the front door its HTTPS certificate: "existing" (frontDoor.tls.existingSecret),
"cert-manager" (frontDoor.tls.certManager.issuerName, else the gateways' cert-manager issuer),
"operator" (its own CA, the default), or "" (frontDoor.tls.enabled false: plain HTTP).
*/}}
{{- define "paitient.frontDoor.tlsIssuer" -}}
{{- $tls := .Values.frontDoor.tls -}}
{{- if and $tls.existingSecret $tls.certManager.issuerName -}}
{{- fail "frontDoor.tls: set existingSecret or certManager.issuerName, not both" -}}
{{- end -}}
{{- if not $tls.enabled -}}
{{- if or $tls.existingSecret $tls.certManager.issuerName -}}
{{- fail "frontDoor.tls: existingSecret or certManager.issuerName is set but tls.enabled is false" -}}
{{- end -}}
{{- else if $tls.existingSecret -}}existing
{{- else if or $tls.certManager.issuerName (eq (include "paitient.tlsIssuer" .) "cert-manager") -}}cert-manager
{{- else -}}operator
{{- end -}}
{{- end -}}

{{/* The Secret the front door serves HTTPS with; empty when it serves plain HTTP. */}}
{{- define "paitient.frontDoor.tlsSecret" -}}
{{- $issuer := include "paitient.frontDoor.tlsIssuer" . -}}
{{- if eq $issuer "existing" -}}
{{- .Values.frontDoor.tls.existingSecret -}}
{{- else if $issuer -}}
{{- printf "%s-tls" (include "paitient.frontDoor.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* "true" when the front door's certificate chains to paitient-ca-bundle (the operator's CA, or
the gateways' cert-manager issuer, whose CA the operator publishes there). */}}
{{- define "paitient.frontDoor.trustedByBundle" -}}
{{- $issuer := include "paitient.frontDoor.tlsIssuer" . -}}
{{- if or (eq $issuer "operator") (and (eq $issuer "cert-manager") (not .Values.frontDoor.tls.certManager.issuerName)) -}}true{{- end -}}
{{- end -}}

{{/* The names on the front door's certificate: frontDoor.tls.dnsNames (and the cert-manager
list), a passthrough TLSRoute's hostnames (clients verify those), then the Service's own. */}}
{{- define "paitient.frontDoor.dnsNames" -}}
{{- $svc := include "paitient.frontDoor.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $names := concat .Values.frontDoor.tls.dnsNames .Values.frontDoor.tls.certManager.dnsNames -}}
{{- if .Values.frontDoor.tlsRoute.enabled -}}
{{- $names = concat $names .Values.frontDoor.tlsRoute.hostnames -}}
{{- end -}}
{{- $names = concat $names (list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns)) -}}
{{- toYaml (uniq $names) -}}
{{- end -}}

{{/*
The operator's configuration file (read by paitient_operator.config.load_config). Empty
optional settings are left out, so the operator's defaults apply; the system namespace is the
release namespace, where the RBAC for Secrets and the tiers ConfigMap is granted, and the
gateways are told so through their environment.
*/}}
{{- define "paitient.operator.config" -}}
{{- $config := deepCopy (.Values.operator.config | default dict) -}}
{{- range $key := list "tiers" "defaultStorageClass" "encryptedStorageClasses" "tls" -}}
{{- if not (get $config $key) -}}
{{- $_ := unset $config $key -}}
{{- end -}}
{{- end -}}
{{- if eq (include "paitient.tlsIssuer" .) "cert-manager" -}}
{{- $cm := $config.tls.certManager | default dict -}}
{{- $_ := required "operator.config.tls.certManager.issuerName is required with tls.issuer cert-manager" $cm.issuerName -}}
{{- $_ := required "operator.config.tls.certManager.caBundle (PEM of the issuer's CA, which the front door trusts) is required with tls.issuer cert-manager" $cm.caBundle -}}
{{- end -}}
{{- $_ := set $config "systemNamespace" .Release.Namespace -}}
{{- if not $config.frontDoorNamespace -}}
{{- $_ := set $config "frontDoorNamespace" .Release.Namespace -}}
{{- end -}}
{{- $gateway := deepCopy ($config.gateway | default dict) -}}
{{- $_ := set $gateway "image" (include "paitient.image" (dict "ctx" . "image" .Values.gateway.image)) -}}
{{- $_ := set $config "gateway" $gateway -}}
{{- if and .Values.frontDoor.enabled (eq (include "paitient.frontDoor.tlsIssuer" .) "operator") -}}
{{- $names := include "paitient.frontDoor.dnsNames" . | fromYamlArray -}}
{{- $_ := set $config "frontDoorCertificate" (dict "secretName" (include "paitient.frontDoor.tlsSecret" .) "names" $names) -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}
