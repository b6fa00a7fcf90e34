# Identity: what each pod of an overlay can do as itself. No pod holds a
# Kubernetes API token unless its role documents the need, the API grants that
# reach a pod are the documented ones and nothing more, no pod shares a host
# namespace, and every container runs restricted with Guaranteed resources.
# Everything here reads the effective model (pods[], rbac), so a token, grant or
# privilege arrives at the same finding whichever object or patch brought it.
package vcpl.identity

import data.vcpl.lib

# ---------------------------------------------------------------------------
# Documented needs (components/session-schedule/README.md)
# ---------------------------------------------------------------------------

# Roles whose pods call the API server. The session scheduler's jobs scale and
# annotate the gateway StatefulSet (components/session-schedule/README.md); the
# gateway itself never talks to the API.
token_roles := {"session-scheduler"}

# The session scheduler's whole grant, per resource: the verbs `kubectl scale`
# and `kubectl patch` of the gateway StatefulSet need, and nothing else
# (components/session-schedule/README.md, role.venue-session-scheduler.yaml).
scheduler_grant_api_groups := {"apps"}

scheduler_grant_verbs := {
	"statefulsets": {"get", "patch"},
	"statefulsets/scale": {"get", "patch", "update"},
}

scheduler_grant_resource_names := {"venue-gateway"}

# What no role of an overlay may ever grant: reading credentials, running
# commands in or tunnelling into other pods, minting tokens, or widening RBAC.
forbidden_resources := {"secrets", "pods/exec", "pods/attach", "pods/portforward", "serviceaccounts/token"}

forbidden_verbs := {"escalate", "bind", "impersonate"}

# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------

namespace := input.overlay.namespace

# Path of a field of the pod spec inside the object that owns the template.
pod_spec_field(pod, name) := sprintf("spec.%s", [name]) if {
	pod.template == ""
} else := sprintf("%s.spec.%s", [pod.template, name])

service_account_name(pod) := object.get(pod, ["serviceAccount", "name"], "default")

# ---------------------------------------------------------------------------
# identity-token
# ---------------------------------------------------------------------------

token_source_text := {
	"automount": "the ServiceAccount token is automounted",
	"projected": "a projected serviceAccountToken volume mounts a token",
	"secret": "a kubernetes.io/service-account-token Secret is mounted",
}

# rule: identity-token
deny contains result if {
	lib.is_overlay
	some pod in input.pods
	pod.serviceAccount.token == true
	not pod.role in token_roles
	# The model names every way a token reaches the pod, and the object that provides it.
	some source in pod.serviceAccount.tokenSources
	result := lib.finding(
		"identity-token", source.object, source.field,
		sprintf(
			"%s into %s pods (role %s, ServiceAccount %s): anyone who runs code in the pod can call the API server with it; only %v pods document that need",
			[object.get(token_source_text, source.how, sprintf("a token reaches the pod (%s)", [source.how])), pod.id, pod.role, service_account_name(pod), sort(token_roles)],
		),
		"remove the token: automountServiceAccountToken: false on the pod and its ServiceAccount, no serviceAccountToken projection, no token Secret",
	)
}

# ---------------------------------------------------------------------------
# identity-rbac-least-privilege
# ---------------------------------------------------------------------------

gateway_service_accounts := {service_account_name(pod) | some pod in input.pods; pod.role == "gateway"}

# A ServiceAccount shared with the gateway is the gateway's: it must stay grant-free.
scheduler_service_accounts := {service_account_name(pod) |
	some pod in input.pods
	pod.role == "session-scheduler"
} - gateway_service_accounts

declared_service_accounts := gateway_service_accounts | scheduler_service_accounts

# A subject without a namespace is taken in the binding's own, the overlay's.
same_namespace(subject) if object.get(subject, "namespace", null) in {null, "", namespace}

# The subjects a binding grants to that hold the ServiceAccount `name` of this
# namespace: the account itself, its user name, or a group every account is in.
subject_covers(subject, name) if {
	subject.kind == "ServiceAccount"
	subject.name == name
	same_namespace(subject)
}

subject_covers(subject, name) if {
	subject.kind == "User"
	subject.name == sprintf("system:serviceaccount:%s:%s", [namespace, name])
}

subject_covers(subject, _) if {
	subject.kind == "Group"
	subject.name in {"system:serviceaccounts", sprintf("system:serviceaccounts:%s", [namespace]), "system:authenticated"}
}

subject_text(subject) := sprintf("%s %s", [subject.kind, subject.name]) if {
	object.get(subject, "namespace", null) in {null, ""}
} else := sprintf("%s %s/%s", [subject.kind, subject.namespace, subject.name])

bindings_by_id := {b.id: b | some b in input.rbac.bindings}

# Bindings the model resolved to the pods of one role, beside the subject match.
pod_binding_ids(role) := {id |
	some pod in input.pods
	pod.role == role
	some id in object.get(pod, "rbac", [])
}

# Every [binding, subject index] whose subject holds the gateway's ServiceAccount.
gateway_subject_grants := {[binding.id, j] |
	some binding in input.rbac.bindings
	some j, subject in binding.subjects
	some name in gateway_service_accounts
	subject_covers(subject, name)
}

gateway_grants contains [id, sprintf("subjects[%d]", [j])] if {
	some [id, j] in gateway_subject_grants
}

# A grant the builder traced to the gateway pods by a way the subjects above miss.
gateway_grants contains [id, "subjects"] if {
	some id in pod_binding_ids("gateway")
	not id in {b | some [b, _] in gateway_subject_grants}
}

scheduler_binding_ids := {binding.id |
	some binding in input.rbac.bindings
	some subject in binding.subjects
	some name in scheduler_service_accounts
	subject_covers(subject, name)
} | pod_binding_ids("session-scheduler")

scheduler_role_ids := {binding.role |
	some id in scheduler_binding_ids
	binding := bindings_by_id[id]
	is_string(binding.role)
}

subject_declared(subject) if {
	some name in declared_service_accounts
	subject_covers(subject, name)
}

contains_wildcard(values) if {
	some value in values
	contains(value, "*")
}

# Why a rule breaks the least-privilege floor every role of an overlay must keep.
forbidden_reasons(rule) := ({reason |
	some key in ["apiGroups", "resources", "verbs", "nonResourceURLs"]
	contains_wildcard(object.get(rule, key, []))
	reason := sprintf("a wildcard in %s", [key])
} | {reason |
	some resource in object.get(rule, "resources", [])
	resource in forbidden_resources
	reason := sprintf("resource %s", [resource])
}) | {reason |
	some verb in object.get(rule, "verbs", [])
	verb in forbidden_verbs
	reason := sprintf("verb %s", [verb])
}

# Why a rule of a role bound to the scheduler lies outside its documented grant.
outside_scheduler_grant(rule) := ((({reason |
	some group in object.get(rule, "apiGroups", [])
	not group in scheduler_grant_api_groups
	reason := sprintf("API group %q", [group])
} | {reason |
	some resource in object.get(rule, "resources", [])
	not scheduler_grant_verbs[resource]
	reason := sprintf("resource %s", [resource])
}) | {reason |
	some resource in object.get(rule, "resources", [])
	allowed := scheduler_grant_verbs[resource]
	some verb in object.get(rule, "verbs", [])
	not verb in allowed
	reason := sprintf("verb %s on %s", [verb, resource])
}) | {reason |
	{name | some name in object.get(rule, "resourceNames", [])} != scheduler_grant_resource_names
	reason := sprintf("resourceNames %v instead of %v", [object.get(rule, "resourceNames", []), sort(scheduler_grant_resource_names)])
}) | {reason |
	count(object.get(rule, "nonResourceURLs", [])) > 0
	reason := "nonResourceURLs"
}

rule_problems(role, rule) := forbidden_reasons(rule) | outside_scheduler_grant(rule) if {
	role.id in scheduler_role_ids
} else := forbidden_reasons(rule)

rule_field(i, rule) := object.get(rule, "field", sprintf("rules[%d]", [i]))

# rule: identity-rbac-least-privilege
deny contains result if {
	lib.is_overlay
	some result in rbac_findings
}

rbac_findings contains result if {
	some binding in input.rbac.bindings
	binding.kind == "ClusterRoleBinding"
	result := lib.finding(
		"identity-rbac-least-privilege", binding.id, "kind",
		sprintf("a ClusterRoleBinding (to %s) grants cluster-wide, beyond the overlay's namespace %s; no component documents a cluster-scoped grant", [binding.roleRef, namespace]),
		"delete the ClusterRoleBinding; grant only what components/session-schedule documents, with a Role and RoleBinding in the namespace",
	)
}

rbac_findings contains result if {
	some binding in input.rbac.bindings
	binding.kind == "RoleBinding"
	startswith(binding.roleRef, "ClusterRole/")
	result := lib.finding(
		"identity-rbac-least-privilege", binding.id, "roleRef.kind",
		sprintf("the RoleBinding grants the rules of %s, which the overlay does not own and no component documents (cluster-admin, edit and view read secrets or exec into pods)", [binding.roleRef]),
		"bind a namespaced Role holding only the documented rules (components/session-schedule/README.md)",
	)
}

rbac_findings contains result if {
	some binding in input.rbac.bindings
	binding.kind == "RoleBinding"
	startswith(binding.roleRef, "Role/")
	not is_string(binding.role)
	result := lib.finding(
		"identity-rbac-least-privilege", binding.id, "roleRef.name",
		sprintf("the RoleBinding grants %s, which the overlay does not render: its rules are whatever the cluster holds and cannot be checked", [binding.roleRef]),
		"render the Role in the overlay with only the documented rules, or delete the RoleBinding",
	)
}

rbac_findings contains result if {
	some [id, field] in gateway_grants
	binding := bindings_by_id[id]
	result := lib.finding(
		"identity-rbac-least-privilege", id, field,
		sprintf("%s reaches the gateway's ServiceAccount %v with the rules of %s; the gateway never talks to the API server, so it must hold no grant", [binding.kind, sort(gateway_service_accounts), binding.roleRef]),
		"remove the gateway's ServiceAccount (and any group containing it) from the binding's subjects",
	)
}

rbac_findings contains result if {
	some binding in input.rbac.bindings
	some j, subject in binding.subjects
	not subject_declared(subject)
	result := lib.finding(
		"identity-rbac-least-privilege", binding.id, sprintf("subjects[%d]", [j]),
		sprintf("%s grants %s to %s, which no declared workload of the overlay runs as (declared: %v)", [binding.id, binding.roleRef, subject_text(subject), sort(declared_service_accounts)]),
		"bind only the ServiceAccount of a role that documents the need (venue-session-scheduler), or delete the binding",
	)
}

rbac_findings contains result if {
	some role in input.rbac.roles
	some i, rule in role.rules
	problems := rule_problems(role, rule)
	count(problems) > 0
	result := lib.finding(
		"identity-rbac-least-privilege", role.id, rule_field(i, rule),
		sprintf("%s grants %s (apiGroups %v, resources %v, verbs %v, resourceNames %v); allowed: never secrets, exec/attach/port-forward, wildcards or escalate/bind/impersonate, and for the session scheduler only get/patch of statefulsets and get/patch/update of statefulsets/scale on venue-gateway", [
			role.id, concat(", ", sort(problems)),
			object.get(rule, "apiGroups", []), object.get(rule, "resources", []),
			object.get(rule, "verbs", []), object.get(rule, "resourceNames", []),
		]),
		"narrow the rule to the documented grant (components/session-schedule/README.md) or delete it",
	)
}

# ---------------------------------------------------------------------------
# identity-host-namespaces
# ---------------------------------------------------------------------------

node_agent_label := "vcpl.dev/node-agent"

host_namespace_fields := {
	"network": "hostNetwork",
	"pid": "hostPID",
	"ipc": "hostIPC",
	"shareProcessNamespace": "shareProcessNamespace",
}

host_namespace_effect := {
	"network": "the pod sits in the node's network namespace, outside every NetworkPolicy",
	"pid": "the pod sees and can signal every process of the node",
	"ipc": "the pod shares the node's IPC (shared memory) with every host process",
	"shareProcessNamespace": "every container of the pod sees the others' processes and their /proc (environment, mounted credentials)",
}

is_node_agent(pod) if object.get(pod, ["labels", node_agent_label], "") == "true"

tolerated_host_namespace(pod, "network") if is_node_agent(pod)

# rule: identity-host-namespaces
deny contains result if {
	lib.is_overlay
	some pod in input.pods
	some key, spec_field in host_namespace_fields
	object.get(pod, ["host", key], false) == true
	not tolerated_host_namespace(pod, key)
	result := lib.finding(
		"identity-host-namespaces", pod.id, pod_spec_field(pod, spec_field),
		sprintf("%s is true on %s pods (role %s): %s; expected false (hostNetwork only for pods labelled %s=true)", [spec_field, pod.id, pod.role, host_namespace_effect[key], node_agent_label]),
		sprintf("remove %s from the pod template (or set it to false)", [spec_field]),
	)
}

# ---------------------------------------------------------------------------
# identity-restricted-containers
# ---------------------------------------------------------------------------

allowed_seccomp := {"RuntimeDefault", "Localhost"}

guaranteed_resources := ["cpu", "memory"]

# "CAP_NET_ADMIN" and "net_admin" name the same capability.
capability_name(cap) := upper(trim_prefix(upper(cap), "CAP_"))

added_capabilities(container) := {capability_name(cap) | some cap in object.get(container, ["security", "capabilitiesAdd"], [])}

dropped_capabilities(container) := {capability_name(cap) | some cap in object.get(container, ["security", "capabilitiesDrop"], [])}

sec(container, name) := object.get(container, ["security", name], null)

# [pod, container name, type, field, problem] for each way a container is not restricted.
container_problems contains [pod.id, container.name, container.type, concat("", [container.field, ".securityContext.readOnlyRootFilesystem"]), problem] if {
	some pod in input.pods
	some container in pod.containers
	sec(container, "readOnlyRootFilesystem") != true
	problem := "the root filesystem is writable (readOnlyRootFilesystem is not true): a compromised process can rewrite binaries and configuration"
}

container_problems contains [pod.id, container.name, container.type, concat("", [container.field, ".securityContext.allowPrivilegeEscalation"]), problem] if {
	some pod in input.pods
	some container in pod.containers
	sec(container, "allowPrivilegeEscalation") != false
	problem := "allowPrivilegeEscalation is not false: setuid binaries can gain privileges"
}

container_problems contains [pod.id, container.name, container.type, concat("", [container.field, ".securityContext.privileged"]), problem] if {
	some pod in input.pods
	some container in pod.containers
	sec(container, "privileged") == true
	problem := "the container is privileged: it holds every capability and every host device"
}

container_problems contains [pod.id, container.name, container.type, concat("", [container.field, ".securityContext.capabilities.drop"]), problem] if {
	some pod in input.pods
	some container in pod.containers
	not "ALL" in dropped_capabilities(container)
	problem := sprintf("capabilities drop %v, not ALL: the runtime's default capabilities stay", [sort(dropped_capabilities(container))])
}

container_problems contains [pod.id, container.name, container.type, concat("", [container.field, ".securityContext.capabilities.add"]), problem] if {
	some pod in input.pods
	some container in pod.containers
	extra := added_capabilities(container)
	count(extra) > 0
	problem := sprintf("capabilities %v are added; none is allowed in a venue namespace (IPsec tunnels end on the VPN-gateway nodes, platform/vpn-gateway)", [sort(extra)])
}

container_problems contains [pod.id, container.name, container.type, concat("", [container.field, ".securityContext.seccompProfile.type"]), problem] if {
	some pod in input.pods
	some container in pod.containers
	not sec(container, "seccomp") in allowed_seccomp
	problem := sprintf("the effective seccomp profile is %v: every syscall is allowed; expected RuntimeDefault or Localhost", [sec(container, "seccomp")])
}

container_problems contains [pod.id, container.name, container.type, concat("", [container.field, ".securityContext.runAsNonRoot"]), problem] if {
	some pod in input.pods
	some container in pod.containers
	sec(container, "runAsNonRoot") != true
	problem := "runAsNonRoot is not true (effective, after pod defaults): the image may run as root"
}

container_problems contains [pod.id, container.name, container.type, concat("", [container.field, ".securityContext.runAsUser"]), problem] if {
	some pod in input.pods
	some container in pod.containers
	sec(container, "runAsUser") == 0
	problem := "runAsUser is 0: the container runs as root"
}

container_problems contains [pod.id, container.name, container.type, concat("", [container.field, sprintf(".resources.limits.%s", [name])]), problem] if {
	some pod in input.pods
	some container in pod.containers
	some name in guaranteed_resources
	request := resource_value(container, "requests", name)
	limit := resource_value(container, "limits", name)
	not same_quantity(request, limit)
	problem := sprintf("%s request %v and limit %v differ or are missing: the pod is not Guaranteed QoS and is throttled or evicted first mid-session", [name, request, limit])
}

quantity(value) := value if is_number(value)

quantity(value) := units.parse(value) if is_string(value)

resource_value(container, kind, name) := object.get(container, ["resources", kind, name], null)

same_quantity(a, b) if {
	a != null
	b != null
	quantity(a) == quantity(b)
}

# rule: identity-restricted-containers
deny contains result if {
	lib.is_overlay
	some [pod_id, name, container_type, field, problem] in container_problems
	result := lib.finding(
		"identity-restricted-containers", pod_id, field,
		sprintf("container %s (%s) of %s: %s", [name, container_type, pod_id, problem]),
		"restore the restricted context: readOnlyRootFilesystem true, allowPrivilegeEscalation false, privileged false, drop ALL, seccomp RuntimeDefault, runAsNonRoot true, requests equal to limits",
	)
}

# ---------------------------------------------------------------------------
# identity-namespace-restricted
# ---------------------------------------------------------------------------

# The label that makes the API server enforce a Pod Security level in a namespace.
pss_enforce := "pod-security.kubernetes.io/enforce"

rendered_namespaces := [obj | some obj in input.objects; obj.kind == "Namespace"]

namespace_fix := "keep base/namespace.venue.yaml in the overlay (resources: ../../../base) with pod-security.kubernetes.io/enforce: restricted"

# rule: identity-namespace-restricted
deny contains result if {
	lib.is_overlay
	not some_namespace_named(input.overlay.namespace)
	result := lib.finding(
		"identity-namespace-restricted", sprintf("Namespace/%s", [input.overlay.namespace]), "metadata.labels",
		sprintf("the overlay renders no Namespace %s: nothing sets its Pod Security level, so restricted is a claim the cluster never enforces", [input.overlay.namespace]),
		namespace_fix,
	)
}

deny contains result if {
	lib.is_overlay
	some ns in rendered_namespaces
	level := object.get(ns, ["metadata", "labels", pss_enforce], null)
	level != "restricted"
	result := lib.finding(
		"identity-namespace-restricted", sprintf("Namespace/%s", [object.get(ns, ["metadata", "name"], "")]), sprintf("metadata.labels[%s]", [pss_enforce]),
		sprintf("Pod Security enforce level is %v: the API server admits pods that are not restricted (root, added capabilities, host namespaces); expected restricted", [level]),
		namespace_fix,
	)
}

deny contains result if {
	lib.is_overlay
	some ns in rendered_namespaces
	name := object.get(ns, ["metadata", "name"], "")
	name != input.overlay.namespace
	result := lib.finding(
		"identity-namespace-restricted", sprintf("Namespace/%s", [name]), "metadata.name",
		sprintf("the overlay creates namespace %s besides its own %s: a venue overlay owns exactly one namespace", [name, input.overlay.namespace]),
		"remove the extra Namespace; shared privileged units (the VPN gateway) live under platform/",
	)
}

some_namespace_named(name) if {
	some ns in rendered_namespaces
	object.get(ns, ["metadata", "name"], "") == name
}
