package vcpl.identity_test

import data.vcpl.fixtures
import data.vcpl.identity

# ---------------------------------------------------------------------------
# A prod overlay as the library ships it: the gateway with the stunnel TLS
# sidecar (coinbase, ice), and the session-open job of the scheduler. The v1
# strongSwan sidecar below is what the VPN redesign removed from venue pods.
# ---------------------------------------------------------------------------

ns := "venue-acme-prod"

restricted := {
	"runAsNonRoot": true, "runAsUser": 10001, "privileged": false, "allowPrivilegeEscalation": false,
	"readOnlyRootFilesystem": true, "capabilitiesAdd": [], "capabilitiesDrop": ["ALL"], "seccomp": "RuntimeDefault",
}

guaranteed(cpu, memory) := {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}}

strongswan := {
	"name": "strongswan", "type": "sidecar", "field": "spec.template.spec.initContainers[0]",
	"image": "registry.vcpl.dev/connectivity/strongswan:6.0.1@sha256:b9ece520429bc00c4950fc7a1933651af7e2d553ccda94c063eb6981a4509fda",
	"security": object.union(restricted, {"runAsNonRoot": false, "runAsUser": 0, "capabilitiesAdd": ["NET_ADMIN", "NET_BIND_SERVICE"]}),
	"resources": guaranteed("200m", "128Mi"),
}

gateway_container := {
	"name": "gateway", "type": "container", "field": "spec.template.spec.containers[0]",
	"image": "registry.vcpl.dev/connectivity/ilink3-gateway:2.3.0",
	"security": restricted,
	"resources": {"requests": {"cpu": "1", "memory": "512Mi", "ephemeral-storage": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi", "ephemeral-storage": "256Mi"}},
}

stunnel := {
	"name": "stunnel", "type": "sidecar", "field": "spec.template.spec.initContainers[0]",
	"image": "registry.vcpl.dev/connectivity/stunnel:5.75",
	"security": restricted,
	"resources": guaranteed("100m", "64Mi"),
}

no_host := {"network": false, "pid": false, "ipc": false, "shareProcessNamespace": false}

gateway_pod := {
	"id": "StatefulSet/venue-gateway", "kind": "StatefulSet", "name": "venue-gateway", "template": "spec.template",
	"role": "gateway",
	"labels": {"app.kubernetes.io/name": "venue-gateway"},
	"annotations": {},
	"replicas": {"declared": null, "max": 2, "scaledBy": [{"object": "CronJob/session-open", "replicas": 2}]},
	"serviceAccount": {"name": "venue-gateway", "object": "ServiceAccount/venue-gateway", "token": false, "tokenSources": []},
	"host": no_host,
	"containers": [stunnel, gateway_container],
	"rbac": [],
}

scheduler_pod := {
	"id": "CronJob/session-open", "kind": "CronJob", "name": "session-open", "template": "spec.jobTemplate.spec.template",
	"role": "session-scheduler",
	"labels": {"app.kubernetes.io/name": "venue-session-scheduler"},
	"annotations": {},
	"replicas": {"declared": null, "max": 1, "scaledBy": []},
	"serviceAccount": {
		"name": "venue-session-scheduler", "object": "ServiceAccount/venue-session-scheduler", "token": true,
		"tokenSources": [{"how": "automount", "field": "automountServiceAccountToken", "object": "ServiceAccount/venue-session-scheduler"}],
	},
	"host": no_host,
	"containers": [{
		"name": "kubectl", "type": "container", "field": "spec.jobTemplate.spec.template.spec.containers[0]",
		"image": "registry.vcpl.dev/connectivity/kubectl:1.33.4",
		"security": restricted,
		"resources": guaranteed("50m", "64Mi"),
	}],
	"rbac": ["RoleBinding/venue-session-scheduler"],
}

scheduler_role := {
	"id": "Role/venue-session-scheduler", "kind": "Role", "aggregated": false,
	"rules": [
		{"apiGroups": ["apps"], "resources": ["statefulsets"], "resourceNames": ["venue-gateway"], "verbs": ["get", "patch"], "field": "rules[0]"},
		{"apiGroups": ["apps"], "resources": ["statefulsets/scale"], "resourceNames": ["venue-gateway"], "verbs": ["get", "patch", "update"], "field": "rules[1]"},
	],
}

scheduler_binding := {
	"id": "RoleBinding/venue-session-scheduler", "kind": "RoleBinding",
	"roleRef": "Role/venue-session-scheduler", "role": "Role/venue-session-scheduler",
	"subjects": [{"kind": "ServiceAccount", "name": "venue-session-scheduler", "namespace": ns}],
	"field": "subjects",
}

shipped_rbac := {"bindings": [scheduler_binding], "roles": [scheduler_role]}

restricted_namespace := {"apiVersion": "v1", "kind": "Namespace", "metadata": {
	"name": ns,
	"labels": {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "v1.33"},
}}

overlay(pods, rbac) := fixtures.model("acme", "prod", {"pods": pods, "rbac": rbac, "objects": [restricted_namespace]})

shipped := overlay([gateway_pod, scheduler_pod], shipped_rbac)

results_of(m) := results if {
	results := identity.deny with input as m
}

findings(m, rule) := fixtures.results_for(results_of(m), rule)

# [object, field] of each finding of one rule.
located(m, rule) := {[r.details.object, r.details.field] | some r in findings(m, rule)}

with_gateway(changes) := object.union(gateway_pod, changes)

with_role_rule(rule) := object.union(scheduler_role, {"rules": array.concat(scheduler_role.rules, [rule])})

test_shipped_overlay_has_no_identity_findings if {
	count(results_of(shipped)) == 0
}

test_library_index_is_not_judged if {
	count(results_of({"kind": "LibraryIndex", "sessions": []})) == 0
}

# ---------------------------------------------------------------------------
# identity-token
# ---------------------------------------------------------------------------

test_identity_token_accepts_scheduler_token_and_tokenless_gateway if {
	count(findings(shipped, "identity-token")) == 0
}

test_identity_token_rejects_automount_on_gateway_pod if {
	gateway := with_gateway({"serviceAccount": {"token": true, "tokenSources": [{"how": "automount", "object": "StatefulSet/venue-gateway", "field": "spec.template.spec.automountServiceAccountToken"}]}})
	located(overlay([gateway, scheduler_pod], shipped_rbac), "identity-token") == {["StatefulSet/venue-gateway", "spec.template.spec.automountServiceAccountToken"]}
}

test_identity_token_rejects_projected_token_volume if {
	field := "spec.template.spec.volumes[5].projected.sources[0].serviceAccountToken"
	gateway := with_gateway({"serviceAccount": {"token": true, "tokenSources": [{"how": "projected", "object": "StatefulSet/venue-gateway", "field": field}]}})
	results := findings(overlay([gateway, scheduler_pod], shipped_rbac), "identity-token")
	{[r.details.object, r.details.field] | some r in results} == {["StatefulSet/venue-gateway", field]}
	some r in results
	contains(r.msg, "projected serviceAccountToken volume")
}

test_identity_token_rejects_token_secret_and_automount_together if {
	gateway := with_gateway({"serviceAccount": {"token": true, "tokenSources": [
		{"how": "automount", "field": "automountServiceAccountToken", "object": "ServiceAccount/venue-gateway"},
		{"how": "secret", "object": "StatefulSet/venue-gateway", "field": "spec.template.spec.volumes[6].secret.secretName"},
	]}})
	located(overlay([gateway, scheduler_pod], shipped_rbac), "identity-token") == {
		["ServiceAccount/venue-gateway", "automountServiceAccountToken"],
		["StatefulSet/venue-gateway", "spec.template.spec.volumes[6].secret.secretName"],
	}
}

test_identity_token_rejects_token_on_undeclared_pod if {
	debug := object.union(object.remove(scheduler_pod, ["serviceAccount"]), {
		"id": "Deployment/debug", "kind": "Deployment", "name": "debug", "template": "spec.template", "role": "undeclared", "rbac": [],
		"serviceAccount": {"name": "default", "object": null, "token": true, "tokenSources": [{"how": "automount", "object": "Deployment/debug", "field": "spec.template.spec.automountServiceAccountToken"}]},
	})
	located(overlay([gateway_pod, scheduler_pod, debug], shipped_rbac), "identity-token") == {["Deployment/debug", "spec.template.spec.automountServiceAccountToken"]}
}

# ---------------------------------------------------------------------------
# identity-rbac-least-privilege
# ---------------------------------------------------------------------------

test_identity_rbac_least_privilege_accepts_documented_scheduler_grant if {
	count(findings(shipped, "identity-rbac-least-privilege")) == 0
}

test_identity_rbac_least_privilege_accepts_overlay_without_rbac if {
	count(findings(overlay([gateway_pod], {"bindings": [], "roles": []}), "identity-rbac-least-privilege")) == 0
}

test_identity_rbac_least_privilege_rejects_cluster_role_binding if {
	crb := object.union(scheduler_binding, {"id": "ClusterRoleBinding/venue-session-scheduler", "kind": "ClusterRoleBinding"})
	rbac := {"bindings": [scheduler_binding, crb], "roles": [scheduler_role]}
	located(overlay([gateway_pod, scheduler_pod], rbac), "identity-rbac-least-privilege") == {["ClusterRoleBinding/venue-session-scheduler", "kind"]}
}

test_identity_rbac_least_privilege_rejects_scheduler_bound_to_cluster_admin if {
	admin := object.union(scheduler_binding, {"roleRef": "ClusterRole/cluster-admin", "role": null})
	rbac := {"bindings": [admin], "roles": [scheduler_role]}
	results := findings(overlay([gateway_pod, scheduler_pod], rbac), "identity-rbac-least-privilege")
	{[r.details.object, r.details.field] | some r in results} == {["RoleBinding/venue-session-scheduler", "roleRef.kind"]}
	some r in results
	contains(r.msg, "ClusterRole/cluster-admin")
}

test_identity_rbac_least_privilege_rejects_secret_reading_cluster_role_bound_to_gateway if {
	reader := {"id": "ClusterRole/secret-reader", "kind": "ClusterRole", "aggregated": false, "rules": [
		{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"], "field": "rules[0]"},
	]}
	binding := {
		"id": "RoleBinding/gateway-secrets", "kind": "RoleBinding", "roleRef": "ClusterRole/secret-reader", "role": "ClusterRole/secret-reader",
		"subjects": [{"kind": "ServiceAccount", "name": "venue-gateway", "namespace": ns}], "field": "subjects",
	}
	gateway := with_gateway({"rbac": ["RoleBinding/gateway-secrets"]})
	rbac := {"bindings": [scheduler_binding, binding], "roles": [scheduler_role, reader]}
	located(overlay([gateway, scheduler_pod], rbac), "identity-rbac-least-privilege") == {
		["RoleBinding/gateway-secrets", "roleRef.kind"],
		["RoleBinding/gateway-secrets", "subjects[0]"],
		["ClusterRole/secret-reader", "rules[0]"],
	}
}

test_identity_rbac_least_privilege_rejects_group_that_contains_the_gateway if {
	binding := {
		"id": "RoleBinding/all-accounts", "kind": "RoleBinding", "roleRef": "Role/venue-session-scheduler", "role": "Role/venue-session-scheduler",
		"subjects": [{"kind": "Group", "name": sprintf("system:serviceaccounts:%s", [ns])}], "field": "subjects",
	}
	rbac := {"bindings": [scheduler_binding, binding], "roles": [scheduler_role]}
	located(overlay([gateway_pod, scheduler_pod], rbac), "identity-rbac-least-privilege") == {["RoleBinding/all-accounts", "subjects[0]"]}
}

test_identity_rbac_least_privilege_rejects_gateway_grant_traced_by_the_model if {
	binding := {
		"id": "RoleBinding/oddly-named", "kind": "RoleBinding", "roleRef": "Role/venue-session-scheduler", "role": "Role/venue-session-scheduler",
		"subjects": [{"kind": "ServiceAccount", "name": "venue-session-scheduler", "namespace": ns}], "field": "subjects",
	}
	gateway := with_gateway({"rbac": ["RoleBinding/oddly-named"]})
	rbac := {"bindings": [scheduler_binding, binding], "roles": [scheduler_role]}
	located(overlay([gateway, scheduler_pod], rbac), "identity-rbac-least-privilege") == {["RoleBinding/oddly-named", "subjects"]}
}

test_identity_rbac_least_privilege_rejects_wildcard_in_scheduler_role if {
	role := with_role_rule({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"], "field": "rules[2]"})
	results := findings(overlay([gateway_pod, scheduler_pod], {"bindings": [scheduler_binding], "roles": [role]}), "identity-rbac-least-privilege")
	{[r.details.object, r.details.field] | some r in results} == {["Role/venue-session-scheduler", "rules[2]"]}
	some r in results
	contains(r.msg, "a wildcard in verbs")
}

test_identity_rbac_least_privilege_rejects_pods_exec_in_scheduler_role if {
	role := with_role_rule({"apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["get", "create"], "field": "rules[2]"})
	results := findings(overlay([gateway_pod, scheduler_pod], {"bindings": [scheduler_binding], "roles": [role]}), "identity-rbac-least-privilege")
	{[r.details.object, r.details.field] | some r in results} == {["Role/venue-session-scheduler", "rules[2]"]}
	some r in results
	contains(r.msg, "resource pods/exec")
}

test_identity_rbac_least_privilege_rejects_forbidden_rule_in_unbound_role if {
	role := {"id": "Role/helper", "kind": "Role", "aggregated": false, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["impersonate"], "field": "rules[0]"}]}
	located(overlay([gateway_pod, scheduler_pod], {"bindings": [scheduler_binding], "roles": [scheduler_role, role]}), "identity-rbac-least-privilege") == {["Role/helper", "rules[0]"]}
}

test_identity_rbac_least_privilege_rejects_scheduler_verb_beyond_grant if {
	widened := {"apiGroups": ["apps"], "resources": ["statefulsets"], "resourceNames": ["venue-gateway"], "verbs": ["get", "patch", "delete"], "field": "rules[0]"}
	role := object.union(scheduler_role, {"rules": [widened, scheduler_role.rules[1]]})
	results := findings(overlay([gateway_pod, scheduler_pod], {"bindings": [scheduler_binding], "roles": [role]}), "identity-rbac-least-privilege")
	{[r.details.object, r.details.field] | some r in results} == {["Role/venue-session-scheduler", "rules[0]"]}
	some r in results
	contains(r.msg, "verb delete on statefulsets")
}

test_identity_rbac_least_privilege_rejects_scheduler_rule_for_every_statefulset if {
	unnamed := {"apiGroups": ["apps"], "resources": ["statefulsets/scale"], "verbs": ["get", "patch", "update"], "field": "rules[1]"}
	role := object.union(scheduler_role, {"rules": [scheduler_role.rules[0], unnamed]})
	located(overlay([gateway_pod, scheduler_pod], {"bindings": [scheduler_binding], "roles": [role]}), "identity-rbac-least-privilege") == {["Role/venue-session-scheduler", "rules[1]"]}
}

test_identity_rbac_least_privilege_rejects_binding_to_undeclared_account if {
	binding := object.union(scheduler_binding, {"id": "RoleBinding/debugger", "subjects": [{"kind": "ServiceAccount", "name": "debugger", "namespace": ns}]})
	rbac := {"bindings": [scheduler_binding, binding], "roles": [scheduler_role]}
	located(overlay([gateway_pod, scheduler_pod], rbac), "identity-rbac-least-privilege") == {["RoleBinding/debugger", "subjects[0]"]}
}

test_identity_rbac_least_privilege_rejects_user_binding_without_namespace if {
	binding := object.union(scheduler_binding, {"id": "RoleBinding/ops", "subjects": [{"kind": "User", "name": "alice", "namespace": null}]})
	results := findings(overlay([gateway_pod, scheduler_pod], {"bindings": [scheduler_binding, binding], "roles": [scheduler_role]}), "identity-rbac-least-privilege")
	{[r.details.object, r.details.field] | some r in results} == {["RoleBinding/ops", "subjects[0]"]}
	some r in results
	contains(r.msg, "to User alice,")
}

test_identity_rbac_least_privilege_accepts_scheduler_subject_without_namespace if {
	binding := object.union(scheduler_binding, {"subjects": [{"kind": "ServiceAccount", "name": "venue-session-scheduler", "namespace": null}]})
	count(findings(overlay([gateway_pod, scheduler_pod], {"bindings": [binding], "roles": [scheduler_role]}), "identity-rbac-least-privilege")) == 0
}

test_identity_rbac_least_privilege_rejects_scheduler_binding_without_scheduler if {
	located(overlay([gateway_pod], shipped_rbac), "identity-rbac-least-privilege") == {["RoleBinding/venue-session-scheduler", "subjects[0]"]}
}

test_identity_rbac_least_privilege_rejects_binding_to_unrendered_role if {
	binding := object.union(scheduler_binding, {"roleRef": "Role/somewhere-else", "role": null})
	located(overlay([gateway_pod, scheduler_pod], {"bindings": [binding], "roles": [scheduler_role]}), "identity-rbac-least-privilege") == {["RoleBinding/venue-session-scheduler", "roleRef.name"]}
}

# ---------------------------------------------------------------------------
# identity-host-namespaces
# ---------------------------------------------------------------------------

test_identity_host_namespaces_accepts_shipped_pods if {
	count(findings(shipped, "identity-host-namespaces")) == 0
}

test_identity_host_namespaces_accepts_host_network_for_node_agent if {
	agent := object.union(gateway_pod, {
		"id": "DaemonSet/ptp-agent", "kind": "DaemonSet", "name": "ptp-agent", "role": "undeclared",
		"labels": {"vcpl.dev/node-agent": "true"}, "host": {"network": true},
	})
	count(findings(overlay([gateway_pod, agent], shipped_rbac), "identity-host-namespaces")) == 0
}

test_identity_host_namespaces_rejects_share_process_namespace if {
	gateway := with_gateway({"host": {"shareProcessNamespace": true}})
	located(overlay([gateway, scheduler_pod], shipped_rbac), "identity-host-namespaces") == {["StatefulSet/venue-gateway", "spec.template.spec.shareProcessNamespace"]}
}

test_identity_host_namespaces_rejects_host_network_without_node_agent_label if {
	gateway := with_gateway({"host": {"network": true}})
	located(overlay([gateway, scheduler_pod], shipped_rbac), "identity-host-namespaces") == {["StatefulSet/venue-gateway", "spec.template.spec.hostNetwork"]}
}

test_identity_host_namespaces_rejects_host_pid_and_ipc_even_for_node_agent if {
	job := object.union(scheduler_pod, {"labels": {"vcpl.dev/node-agent": "true"}, "host": {"pid": true, "ipc": true}})
	located(overlay([gateway_pod, job], shipped_rbac), "identity-host-namespaces") == {
		["CronJob/session-open", "spec.jobTemplate.spec.template.spec.hostPID"],
		["CronJob/session-open", "spec.jobTemplate.spec.template.spec.hostIPC"],
	}
}

test_identity_host_namespaces_rejects_bare_pod_host_network if {
	pod := object.union(scheduler_pod, {"id": "Pod/probe", "kind": "Pod", "name": "probe", "template": "", "role": "undeclared", "host": {"network": true}})
	located(overlay([gateway_pod, pod], shipped_rbac), "identity-host-namespaces") == {["Pod/probe", "spec.hostNetwork"]}
}

# ---------------------------------------------------------------------------
# identity-restricted-containers
# ---------------------------------------------------------------------------

test_identity_restricted_containers_accepts_shipped_gateway_and_scheduler if {
	count(findings(shipped, "identity-restricted-containers")) == 0
}

test_identity_restricted_containers_accepts_stunnel_sidecar if {
	gateway := object.union(object.remove(gateway_pod, ["annotations"]), {"annotations": {}, "containers": [stunnel, gateway_container]})
	count(findings(overlay([gateway, scheduler_pod], shipped_rbac), "identity-restricted-containers")) == 0
}

test_identity_restricted_containers_accepts_equal_quantities_written_differently if {
	container := object.union(gateway_container, {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1000m", "memory": "1024Mi"}}})
	gateway := with_gateway({"containers": [stunnel, container]})
	count(findings(overlay([gateway, scheduler_pod], shipped_rbac), "identity-restricted-containers")) == 0
}

test_identity_restricted_containers_rejects_writable_root_filesystem if {
	container := object.union(gateway_container, {"security": {"readOnlyRootFilesystem": false}})
	gateway := with_gateway({"containers": [stunnel, container]})
	located(overlay([gateway, scheduler_pod], shipped_rbac), "identity-restricted-containers") == {["StatefulSet/venue-gateway", "spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem"]}
}

test_identity_restricted_containers_rejects_requests_not_equal_to_limits if {
	container := object.union(gateway_container, {"resources": {"requests": {"memory": "256Mi"}}})
	gateway := with_gateway({"containers": [stunnel, container]})
	located(overlay([gateway, scheduler_pod], shipped_rbac), "identity-restricted-containers") == {["StatefulSet/venue-gateway", "spec.template.spec.containers[0].resources.limits.memory"]}
}

test_identity_restricted_containers_rejects_missing_cpu_limit if {
	job_container := json.patch(scheduler_pod.containers[0], [{"op": "remove", "path": "/resources/limits/cpu"}])
	job := object.union(scheduler_pod, {"containers": [job_container]})
	located(overlay([gateway_pod, job], shipped_rbac), "identity-restricted-containers") == {["CronJob/session-open", "spec.jobTemplate.spec.template.spec.containers[0].resources.limits.cpu"]}
}

# The v1 VPN design, a strongSwan sidecar running as root with NET_ADMIN in the
# gateway pod: refused in a venue namespace even with a justification, since the
# tunnel now ends on the VPN-gateway nodes (platform/vpn-gateway).
test_identity_restricted_containers_rejects_justified_vpn_sidecar if {
	gateway := with_gateway({
		"annotations": {"vcpl.dev/capabilities-justification": "strongSwan installs IPsec SAs and binds IKE ports"},
		"containers": [strongswan, gateway_container],
	})
	located(overlay([gateway, scheduler_pod], shipped_rbac), "identity-restricted-containers") == {
		["StatefulSet/venue-gateway", "spec.template.spec.initContainers[0].securityContext.runAsNonRoot"],
		["StatefulSet/venue-gateway", "spec.template.spec.initContainers[0].securityContext.runAsUser"],
		["StatefulSet/venue-gateway", "spec.template.spec.initContainers[0].securityContext.capabilities.add"],
	}
}

test_identity_restricted_containers_rejects_root_gateway_with_net_admin if {
	container := object.union(gateway_container, {"security": {"runAsNonRoot": false, "runAsUser": 0, "capabilitiesAdd": ["NET_ADMIN"]}})
	gateway := with_gateway({"containers": [stunnel, container]})
	located(overlay([gateway, scheduler_pod], shipped_rbac), "identity-restricted-containers") == {
		["StatefulSet/venue-gateway", "spec.template.spec.containers[0].securityContext.runAsNonRoot"],
		["StatefulSet/venue-gateway", "spec.template.spec.containers[0].securityContext.runAsUser"],
		["StatefulSet/venue-gateway", "spec.template.spec.containers[0].securityContext.capabilities.add"],
	}
}

test_identity_restricted_containers_rejects_privileged_sidecar if {
	sidecar := object.union(stunnel, {"security": {"privileged": true, "allowPrivilegeEscalation": true}})
	gateway := with_gateway({"containers": [sidecar, gateway_container]})
	located(overlay([gateway, scheduler_pod], shipped_rbac), "identity-restricted-containers") == {
		["StatefulSet/venue-gateway", "spec.template.spec.initContainers[0].securityContext.privileged"],
		["StatefulSet/venue-gateway", "spec.template.spec.initContainers[0].securityContext.allowPrivilegeEscalation"],
	}
}

test_identity_restricted_containers_rejects_unconfined_init_container_keeping_capabilities if {
	init := object.union(stunnel, {
		"name": "setup", "type": "init", "field": "spec.template.spec.initContainers[1]",
		"security": {"seccomp": "Unconfined", "capabilitiesDrop": []},
	})
	gateway := with_gateway({"containers": [stunnel, init, gateway_container]})
	located(overlay([gateway, scheduler_pod], shipped_rbac), "identity-restricted-containers") == {
		["StatefulSet/venue-gateway", "spec.template.spec.initContainers[1].securityContext.seccompProfile.type"],
		["StatefulSet/venue-gateway", "spec.template.spec.initContainers[1].securityContext.capabilities.drop"],
	}
}

test_identity_restricted_containers_rejects_unset_escalation_and_seccomp if {
	container := {
		"name": "kubectl", "type": "container", "field": "spec.jobTemplate.spec.template.spec.containers[0]",
		"image": "registry.vcpl.dev/connectivity/kubectl:1.33.4",
		"security": {"runAsNonRoot": true, "runAsUser": 10001, "privileged": false, "allowPrivilegeEscalation": null, "readOnlyRootFilesystem": true, "capabilitiesAdd": [], "capabilitiesDrop": ["ALL"], "seccomp": null},
		"resources": guaranteed("50m", "64Mi"),
	}
	job := object.union(scheduler_pod, {"containers": [container]})
	located(overlay([gateway_pod, job], shipped_rbac), "identity-restricted-containers") == {
		["CronJob/session-open", "spec.jobTemplate.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation"],
		["CronJob/session-open", "spec.jobTemplate.spec.template.spec.containers[0].securityContext.seccompProfile.type"],
	}
}

# ---------------------------------------------------------------------------
# identity-namespace-restricted
# ---------------------------------------------------------------------------

with_namespaces(namespaces) := json.patch(shipped, [{"op": "replace", "path": "/objects", "value": namespaces}])

test_identity_namespace_restricted_accepts_own_restricted_namespace if {
	count(findings(shipped, "identity-namespace-restricted")) == 0
}

test_identity_namespace_restricted_rejects_overlay_without_namespace if {
	located(with_namespaces([]), "identity-namespace-restricted") == {["Namespace/venue-acme-prod", "metadata.labels"]}
}

test_identity_namespace_restricted_rejects_baseline_level if {
	baseline := json.patch(restricted_namespace, [{"op": "replace", "path": "/metadata/labels/pod-security.kubernetes.io~1enforce", "value": "baseline"}])
	located(with_namespaces([baseline]), "identity-namespace-restricted") == {["Namespace/venue-acme-prod", "metadata.labels[pod-security.kubernetes.io/enforce]"]}
}

test_identity_namespace_restricted_rejects_level_label_removed if {
	unlabelled := json.patch(restricted_namespace, [{"op": "remove", "path": "/metadata/labels/pod-security.kubernetes.io~1enforce"}])
	located(with_namespaces([unlabelled]), "identity-namespace-restricted") == {["Namespace/venue-acme-prod", "metadata.labels[pod-security.kubernetes.io/enforce]"]}
}

test_identity_namespace_restricted_rejects_extra_privileged_namespace if {
	extra := {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "acme-vpn", "labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}
	located(with_namespaces([restricted_namespace, extra]), "identity-namespace-restricted") == {
		["Namespace/acme-vpn", "metadata.name"],
		["Namespace/acme-vpn", "metadata.labels[pod-security.kubernetes.io/enforce]"],
	}
}
