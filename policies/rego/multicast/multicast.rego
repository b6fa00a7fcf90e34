# Multicast feeds: A and B lines really are independent (different groups,
# interfaces and hosts), and every secondary network a pod attaches to exists and
# is fenced by a MultiNetworkPolicy.
package vcpl.multicast

import data.vcpl.lib

networks_annotation := "k8s.v1.cni.cncf.io/networks"

policy_for_annotation := "k8s.v1.cni.cncf.io/policy-for"

feed_line_label := "vcpl.dev/feed-line"

hostname_key := "kubernetes.io/hostname"

# ---------------------------------------------------------------------------
# Network attachment references
# ---------------------------------------------------------------------------

# A reference as {"namespace": ns or "", "name": name}; "" means "the pod's own
# namespace", which is how Multus resolves an unqualified name.
network_ref(namespace, name) := {"namespace": namespace, "name": name}

# The Multus annotation is either a JSON list of selection objects
# ([{"name": "feed-a", "namespace": "ns", "interface": "feeda"}]) or a
# comma-separated list of "name", "ns/name" or "name@ifname" entries.
network_refs(annotation) := {network_ref(object.get(sel, "namespace", ""), sel.name) |
	json.is_valid(annotation)
	some sel in json.unmarshal(annotation)
	is_string(sel.name)
} if {
	startswith(trim_space(annotation), "[")
} else := {ref |
	some raw in split(annotation, ",")
	entry := trim_space(split(trim_space(raw), "@")[0])
	entry != ""
	ref := qualified_ref(entry)
}

# "ns/name" or "name".
qualified_ref(entry) := network_ref(parts[0], parts[1]) if {
	parts := split(entry, "/")
	count(parts) == 2
} else := network_ref("", entry)

# Every network a workload's pods attach to, as {"workload", "ref"}.
workload_network_refs(venue, env) := {{"workload": w, "ref": ref} |
	some w in lib.overlay_workloads(venue, env)
	annotation := w.spec.template.metadata.annotations[networks_annotation]
	is_string(annotation)
	some ref in network_refs(annotation)
}

# Namespaces agree when they are equal or either side leaves it implicit
# (an unqualified reference means the pod's namespace, which in a rendered
# overlay is the namespace of the overlay's own objects).
same_namespace(a, b) if a == b

same_namespace(a, _) if a == ""

same_namespace(_, b) if b == ""

effective_namespace(ref, workload) := ref.namespace if {
	ref.namespace != ""
} else := object.get(workload, ["metadata", "namespace"], "")

ref_text(ref) := ref.name if {
	ref.namespace == ""
} else := sprintf("%s/%s", [ref.namespace, ref.name])

nad_exists(venue, env, ns, name) if {
	some nad in lib.overlay_kind(venue, env, "NetworkAttachmentDefinition")
	nad.metadata.name == name
	same_namespace(ns, object.get(nad, ["metadata", "namespace"], ""))
}

# Networks a MultiNetworkPolicy names in its policy-for annotation, resolved
# against the policy's own namespace when unqualified.
policy_for_refs(mnp) := {network_ref(ns, ref.name) |
	annotation := mnp.metadata.annotations[policy_for_annotation]
	is_string(annotation)
	some raw in split(annotation, ",")
	entry := trim_space(raw)
	entry != ""
	ref := qualified_ref(entry)
	ns := effective_namespace(ref, mnp)
}

network_fenced(venue, env, ns, name) if {
	some mnp in lib.overlay_kind(venue, env, "MultiNetworkPolicy")
	some covered in policy_for_refs(mnp)
	covered.name == name
	same_namespace(ns, covered.namespace)
}

annotation_field := sprintf("spec.template.metadata.annotations[%s]", [networks_annotation])

# rule: multicast-ab-lines
deny contains result if {
	some result in ab_line_findings
}

# Same group or same interface on both lines means one failure takes out both.
ab_line_findings contains result if {
	some [venue, env] in lib.overlays
	some cm in lib.overlay_configmaps(venue, env, "feed-channels")
	text := cm.data["channels.json"]
	json.is_valid(text)
	some i, channel in json.unmarshal(text).channels
	some attribute in ["group", "interface"]
	value := object.get(channel, ["a", attribute], null)
	value == object.get(channel, ["b", attribute], null)
	result := lib.finding(
		"multicast-ab-lines", venue, env, lib.object_id(cm),
		sprintf("data[channels.json].channels[%d].b.%s", [i, attribute]),
		sprintf("channel %v: lines A and B share %s %v, so one fault loses both lines", [object.get(channel, "id", i), attribute, value]),
		sprintf("give line B its own %s (run book lines.b / the feed-b attachment)", [attribute]),
	)
}

ab_line_findings contains result if {
	some [venue, env] in lib.overlays
	some cm in lib.overlay_configmaps(venue, env, "feed-channels")
	not json.is_valid(object.get(cm, ["data", "channels.json"], ""))
	result := lib.finding(
		"multicast-ab-lines", venue, env, lib.object_id(cm), "data[channels.json]",
		"channels.json is missing or not valid JSON, so the A/B lines cannot be checked",
		"regenerate the feed-channels ConfigMap from the run book (make generate)",
	)
}

# rule: multicast-nad-exists
deny contains result if {
	some result in nad_findings
}

nad_findings contains result if {
	some [venue, env] in lib.overlays
	some wr in workload_network_refs(venue, env)
	ns := effective_namespace(wr.ref, wr.workload)
	not nad_exists(venue, env, ns, wr.ref.name)
	result := lib.finding(
		"multicast-nad-exists", venue, env, lib.object_id(wr.workload), annotation_field,
		sprintf("pods attach to network %q but the overlay has no NetworkAttachmentDefinition %q", [ref_text(wr.ref), wr.ref.name]),
		"add the NetworkAttachmentDefinition to the overlay (feed component) or fix the name in the annotation",
	)
}

# A JSON-form annotation that does not parse attaches nothing the policy can check.
nad_findings contains result if {
	some [venue, env] in lib.overlays
	some w in lib.overlay_workloads(venue, env)
	annotation := w.spec.template.metadata.annotations[networks_annotation]
	is_string(annotation)
	startswith(trim_space(annotation), "[")
	not json.is_valid(annotation)
	result := lib.finding(
		"multicast-nad-exists", venue, env, lib.object_id(w), annotation_field,
		"the network selection annotation starts like a JSON list but is not valid JSON",
		"write the annotation as a JSON list of {\"name\", \"interface\"} objects or as comma-separated names",
	)
}

# rule: multicast-multinetworkpolicy
deny contains result if {
	some [venue, env] in lib.overlays
	some wr in workload_network_refs(venue, env)
	ns := effective_namespace(wr.ref, wr.workload)
	not network_fenced(venue, env, ns, wr.ref.name)
	result := lib.finding(
		"multicast-multinetworkpolicy", venue, env, lib.object_id(wr.workload), annotation_field,
		sprintf("network %q is not named in the %s annotation of any MultiNetworkPolicy, so traffic on it is unfiltered", [ref_text(wr.ref), policy_for_annotation]),
		sprintf("add %s to the %s annotation of the feed MultiNetworkPolicy", [wr.ref.name, policy_for_annotation]),
	)
}

# ---------------------------------------------------------------------------
# A/B line pods on different nodes
# ---------------------------------------------------------------------------

feed_line(w) := w.spec.template.metadata.labels[feed_line_label]

feed_line_workloads(venue, env) := {w |
	some w in lib.overlay_workloads(venue, env)
	is_string(feed_line(w))
}

selector_refers_to_feed_line(selector) if feed_line_label in object.keys(object.get(selector, "matchLabels", {}))

selector_refers_to_feed_line(selector) if {
	some expression in selector.matchExpressions
	expression.key == feed_line_label
}

has_feed_line_anti_affinity(w) if {
	some term in w.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution
	term.topologyKey == hostname_key
	selector_refers_to_feed_line(term.labelSelector)
}

# rule: multicast-ab-anti-affinity
deny contains result if {
	some [venue, env] in lib.overlays
	workloads := feed_line_workloads(venue, env)
	count({feed_line(w) | some w in workloads}) >= 2
	some w in workloads
	not has_feed_line_anti_affinity(w)
	result := lib.finding(
		"multicast-ab-anti-affinity", venue, env, lib.object_id(w),
		"spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution",
		sprintf("feed line %q pods may share a node with another line's pods: no required anti-affinity on %s by %s", [feed_line(w), hostname_key, feed_line_label]),
		sprintf("add a required podAntiAffinity term with topologyKey %s and a labelSelector on %s", [hostname_key, feed_line_label]),
	)
}
