# Multicast feeds: every line of every run-book channel really reaches the
# gateway pod on its own network, lines A and B share no NAD and no physical
# NIC, every secondary network is fenced by a MultiNetworkPolicy, and pods that
# receive feeds and run more than once never share a node. The rules read the
# effective model: the channel file the engine really loads, the networks the pod
# really attaches and the master NIC each NAD's CNI config really names.
package vcpl.multicast

import data.vcpl.lib

line_names := ["a", "b"]

hostname_key := "kubernetes.io/hostname"

# ---------------------------------------------------------------------------
# Run-book channels and the channel files the gateway loads
# ---------------------------------------------------------------------------

runbook_channels contains {
	"service": service.name,
	"id": channel.id,
	"lines": object.get(channel, "lines", {}),
	"origin": sprintf("services[%d].environments.%s.channels[%d]", [si, lib.environment, ci]),
} if {
	some si, service in lib.runbook.services
	some ci, channel in service.environments[lib.environment].channels
}

# Retransmission lines (recovery kind multicast-retransmission) are joined like
# channel lines; channels.json lists them under recovery with this id.
runbook_channels contains {
	"service": service.name,
	"id": sprintf("%s.recovery[%d]", [service.name, ri]),
	"lines": item.lines,
	"origin": sprintf("services[%d].environments.%s.recovery[%d]", [si, lib.environment, ri]),
} if {
	some si, service in lib.runbook.services
	some ri, item in service.environments[lib.environment].recovery
	is_object(item.lines)
}

channel_files := object.get(input, ["sessions", "channels"], [])

readable_files := [file | some file in channel_files; is_array(object.get(file, ["config", "channels"], null))]

# Every channel entry of every channel file, with where it sits.
file_entries contains {"file": file, "index": i, "channel": channel, "field": sprintf("%s.channels[%d]", [file.field, i])} if {
	some file in readable_files
	some i, channel in file.config.channels
}

file_entries contains {"file": file, "index": i, "channel": item, "field": sprintf("%s.recovery[%d]", [file.field, i])} if {
	some file in readable_files
	some i, item in object.get(file.config, "recovery", [])
	is_object(item)
	item.id != null
}

# An entry stands for a run-book channel when the ids agree (and the services,
# when the entry names one).
same_channel(entry, wanted) if {
	entry.channel.id == wanted.id
	not other_service(entry.channel, wanted)
}

other_service(channel, wanted) if {
	is_string(channel.service)
	channel.service != wanted.service
}

line_ports := {line.port |
	some wanted in runbook_channels
	some line in wanted.lines
}

# ---------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------

pod_template_field(pod, suffix) := sprintf("%s.%s", [pod.template, suffix]) if {
	is_string(pod.template)
	pod.template != ""
} else := suffix

networks_on(pod, interface) := [network | some network in object.get(pod, "networks", []); network.interface == interface]

# The same attachment written twice still names one NAD.
network_key(network) := network.nad if {
	is_string(network.nad)
} else := sprintf("%v/%v", [object.get(network, "namespace", ""), network.name])

nad_field(nad_id) := field if {
	some nad in input.networks
	nad.id == nad_id
	is_string(nad.field)
	field := nad.field
} else := "spec.config"

# NICs the platform file dedicates to feed lines; empty when it names none.
platform_feed_masters := {line.master | some line in object.get(lib.platform, "multicast", {}); is_string(line.master)}

# ---------------------------------------------------------------------------
# multicast-lines-attached
# ---------------------------------------------------------------------------

# rule: multicast-lines-attached
deny contains result if {
	lib.is_overlay
	some finding in line_findings
	result := lib.finding("multicast-lines-attached", finding.object, finding.field, finding.problem, finding.fix)
}

line_findings contains {
	"object": pod.id, "field": pod_template_field(pod, "spec.containers"),
	"problem": sprintf("the run book gives %d channel(s) in %s but no channels.json reaches the gateway: gateway.json names no channelsFile the pod mounts", [count(runbook_channels), lib.environment]),
	"fix": "compose the multicast component and regenerate (make generate), so gateway.json names the mounted channels.json",
} if {
	count(runbook_channels) > 0
	count(channel_files) == 0
	some pod in lib.gateway_pods
}

line_findings contains {
	"object": file.object, "field": file.field,
	"problem": sprintf("%v is not a valid channel file (no channels list), so the engine joins no line", [file.path]),
	"fix": "regenerate the feed-channels ConfigMap from the run book (make generate)",
} if {
	count(runbook_channels) > 0
	some file in channel_files
	not is_array(object.get(file, ["config", "channels"], null))
}

line_findings contains {
	"object": file.object, "field": sprintf("%s.channels", [file.field]),
	"problem": sprintf("run-book channel %v (%s, %s) is missing from channels.json, so the engine never joins it", [wanted.id, wanted.service, wanted.origin]),
	"fix": "regenerate the feed-channels ConfigMap from the run book (make generate)",
} if {
	some wanted in runbook_channels
	count(readable_files) > 0
	not some_entry_for(wanted)
	file := readable_files[0]
}

some_entry_for(wanted) if {
	some entry in file_entries
	same_channel(entry, wanted)
}

line_findings contains {
	"object": entry.file.object, "field": sprintf("%s.%s", [entry.field, line]),
	"problem": sprintf("channel %v has no line %s, but the run book gives it (%s.lines.%s): one fault now loses the channel", [wanted.id, upper(line), wanted.origin, line]),
	"fix": sprintf("restore line %s of the channel (make generate)", [upper(line)]),
} if {
	some wanted in runbook_channels
	some entry in file_entries
	same_channel(entry, wanted)
	some line in line_names
	is_object(wanted.lines[line])
	not is_object(object.get(entry.channel, line, null))
}

line_findings contains {
	"object": entry.file.object, "field": sprintf("%s.%s.%s", [entry.field, line, attribute]),
	"problem": sprintf("channel %v line %s has %s %v, the run book says %v (%s.lines.%s.%s)", [wanted.id, upper(line), attribute, object.get(entry.channel[line], attribute, null), wanted.lines[line][attribute], wanted.origin, line, attribute]),
	"fix": "regenerate the feed-channels ConfigMap from the run book (make generate)",
} if {
	some wanted in runbook_channels
	some entry in file_entries
	same_channel(entry, wanted)
	some line in line_names
	is_object(entry.channel[line])
	some attribute in ["group", "port"]
	expected := wanted.lines[line][attribute]
	object.get(entry.channel[line], attribute, null) != expected
}

# The interface a line names must be a network the gateway pod attaches, backed
# by a NAD of the overlay; otherwise the join goes nowhere.
line_findings contains {
	"object": entry.file.object, "field": sprintf("%s.%s.interface", [entry.field, line]),
	"problem": sprintf("channel %v line %s arrives on interface %v, which %s does not attach (its networks: %v)", [entry.channel.id, upper(line), interface, pod.id, attached_interfaces(pod)]),
	"fix": sprintf("attach the line's NAD to the gateway pod as interface %v (k8s.v1.cni.cncf.io/networks), or name an attached interface", [interface]),
} if {
	some entry in file_entries
	some line in line_names
	is_object(entry.channel[line])
	interface := object.get(entry.channel[line], "interface", null)
	some pod in lib.gateway_pods
	count(networks_on(pod, interface)) == 0
}

line_findings contains {
	"object": pod.id, "field": network.field,
	"problem": sprintf("channel %v line %s arrives on interface %v, attached from network %v, but the overlay has no NetworkAttachmentDefinition %v: the pod cannot start", [entry.channel.id, upper(line), interface, network.name, network.name]),
	"fix": "add the NetworkAttachmentDefinition (multicast component) or fix the name in k8s.v1.cni.cncf.io/networks",
} if {
	some entry in file_entries
	some line in line_names
	is_object(entry.channel[line])
	interface := object.get(entry.channel[line], "interface", null)
	some pod in lib.gateway_pods
	some network in networks_on(pod, interface)
	network.nad == null
}

attached_interfaces(pod) := [network.interface | some network in object.get(pod, "networks", [])]

# ---------------------------------------------------------------------------
# multicast-ab-separate
# ---------------------------------------------------------------------------

# rule: multicast-ab-separate
deny contains result if {
	lib.is_overlay
	some finding in separation_findings
	result := lib.finding("multicast-ab-separate", finding.object, finding.field, finding.problem, finding.fix)
}

separation_findings contains {
	"object": entry.file.object, "field": sprintf("%s.b.interface", [entry.field]),
	"problem": sprintf("channel %v lines A and B both arrive on interface %v, so one NIC or cable fault loses both", [entry.channel.id, entry.channel.a.interface]),
	"fix": "give line B its own interface (feedb) backed by its own NAD",
} if {
	some entry in file_entries
	is_object(entry.channel.a)
	is_object(entry.channel.b)
	entry.channel.a.interface == entry.channel.b.interface
}

separation_findings contains {
	"object": pod.id, "field": b_net.field,
	"problem": sprintf("channel %v lines A (%v) and B (%v) are both attached from NAD %v, so they share one network and NIC", [entry.channel.id, entry.channel.a.interface, entry.channel.b.interface, b_net.nad]),
	"fix": "attach line B's interface from the feed-b NAD",
} if {
	some entry in file_entries
	some pod in lib.gateway_pods
	entry.channel.a.interface != entry.channel.b.interface
	some a_net in networks_on(pod, entry.channel.a.interface)
	some b_net in networks_on(pod, entry.channel.b.interface)
	is_string(a_net.nad)
	a_net.nad == b_net.nad
}

separation_findings contains {
	"object": b_net.nad, "field": nad_field(b_net.nad),
	"problem": sprintf("channel %v lines A (%v via %v) and B (%v via %v) both use master NIC %v, so one NIC, cable or switch port fault loses both", [entry.channel.id, entry.channel.a.interface, a_net.nad, entry.channel.b.interface, b_net.nad, b_net.master]),
	"fix": "give each feed NAD its own master NIC (platform environments.<env>.multicast.a/b.master)",
} if {
	some entry in file_entries
	some pod in lib.gateway_pods
	some a_net in networks_on(pod, entry.channel.a.interface)
	some b_net in networks_on(pod, entry.channel.b.interface)
	is_string(a_net.nad)
	is_string(b_net.nad)
	a_net.nad != b_net.nad
	is_string(b_net.master)
	a_net.master == b_net.master
}

# A second attachment of the same NAD gives the pod two interfaces on one
# network: whatever runs on it is not independent of the first.
separation_findings contains {
	"object": pod.id, "field": second.field,
	"problem": sprintf("network %v is attached twice (interfaces %v and %v): both are one network on one NIC", [network_key(second), first.interface, second.interface]),
	"fix": "attach each feed NAD once; line B needs its own NAD",
} if {
	some pod in input.pods
	networks := object.get(pod, "networks", [])
	some i, first in networks
	some j, second in networks
	i < j
	network_key(first) == network_key(second)
}

separation_findings contains {
	"object": pod.id, "field": network.field,
	"problem": sprintf("network %v is attached but no NetworkAttachmentDefinition %v exists in the overlay, so its NIC cannot be resolved", [network.name, network.name]),
	"fix": "add the NAD to the overlay (multicast component) or remove the attachment",
} if {
	some pod in input.pods
	some network in object.get(pod, "networks", [])
	network.nad == null
}

separation_findings contains {
	"object": network.nad, "field": nad_field(network.nad),
	"problem": sprintf("the CNI config of %v names no master NIC, so nothing shows which physical NIC the line uses", [network.nad]),
	"fix": "name the feed NIC in the macvlan plugin's master (platform environments.<env>.multicast)",
} if {
	some pod in input.pods
	some network in object.get(pod, "networks", [])
	is_string(network.nad)
	not is_string(object.get(network, "master", null))
}

separation_findings contains {
	"object": network.nad, "field": nad_field(network.nad),
	"problem": sprintf("%v uses master NIC %v, which the platform does not dedicate to feed lines (%v)", [network.nad, network.master, sort(platform_feed_masters)]),
	"fix": "use the feed NIC the platform file names for the line (environments.<env>.multicast.a/b.master)",
} if {
	count(platform_feed_masters) > 0
	some pod in input.pods
	some network in object.get(pod, "networks", [])
	is_string(network.nad)
	is_string(network.master)
	not network.master in platform_feed_masters
}

# ---------------------------------------------------------------------------
# multicast-multinetworkpolicy
# ---------------------------------------------------------------------------

# `policy-for` entries are "name" (the policy's namespace) or "namespace/name".
policy_for_names(policy, network) if {
	some entry in object.get(policy, "policyFor", [])
	policy_for_entry_matches(trim_space(entry), network)
}

policy_for_entry_matches(entry, network) if entry == network.name

policy_for_entry_matches(entry, network) if {
	entry == sprintf("%v/%v", [object.get(network, "namespace", ""), network.name])
}

policy_for_entry_matches(entry, network) if {
	parts := split(entry, "/")
	count(parts) == 2
	parts[1] == network.name
	object.get(network, "namespace", null) in {null, ""}
}

fencing(pod, network) := [policy |
	some policy in object.get(pod, "multiNetworkPolicies", [])
	policy_for_names(policy, network)
]

filters_ingress(policy) if "Ingress" in object.get(policy, "policyTypes", [])

rule_field(policy, i, rule) := rule.field if {
	is_string(rule.field)
} else := sprintf("spec.ingress[%d]", [i])

# Rules come as the model's rule shape or as written; either way a missing or
# empty `ports`, a port without a number or protocol `any` admits every port.
admits_every_port(rule) if count(object.get(rule, "ports", [])) == 0

admits_every_port(rule) if {
	some port in rule.ports
	object.get(port, "protocol", "TCP") == "any"
}

admits_every_port(rule) if {
	some port in rule.ports
	object.get(port, "port", "any") == "any"
}

port_end(port) := end if {
	end := object.get(port, "endPort", null)
	is_number(end)
} else := object.get(port, "port", null)

admits(rule, port_number) if admits_every_port(rule)

admits(rule, port_number) if {
	some port in rule.ports
	object.get(port, "protocol", "TCP") == "UDP"
	is_number(port.port)
	port.port <= port_number
	port_number <= port_end(port)
}

# rule: multicast-multinetworkpolicy
deny contains result if {
	lib.is_overlay
	some finding in fence_findings
	result := lib.finding("multicast-multinetworkpolicy", finding.object, finding.field, finding.problem, finding.fix)
}

fence_findings contains {
	"object": pod.id, "field": network.field,
	"problem": sprintf("network %v (interface %v) is named by no MultiNetworkPolicy selecting the pod, so any sender on the feed VLAN reaches it (NetworkPolicy does not cover secondary interfaces)", [network.name, network.interface]),
	"fix": sprintf("name %v in k8s.v1.cni.cncf.io/policy-for of a MultiNetworkPolicy selecting the pod", [network.name]),
} if {
	some pod in input.pods
	some network in object.get(pod, "networks", [])
	count(fencing(pod, network)) == 0
}

fence_findings contains {
	"object": policy.object, "field": "spec.policyTypes",
	"problem": sprintf("MultiNetworkPolicy names network %v but does not filter Ingress on it", [network.name]),
	"fix": "list Ingress in spec.policyTypes with rules for the channel ports only",
} if {
	some pod in input.pods
	some network in object.get(pod, "networks", [])
	policies := fencing(pod, network)
	count(policies) > 0
	not some_filters_ingress(policies)
	some policy in policies
}

some_filters_ingress(policies) if {
	some policy in policies
	filters_ingress(policy)
}

fence_findings contains {
	"object": policy.object, "field": rule_field(policy, i, rule),
	"problem": sprintf("MultiNetworkPolicy admits every port on network %v; only the run book's line ports %v are needed", [network.name, sort(line_ports)]),
	"fix": "give every ingress rule ports: the channel line ports, protocol UDP",
} if {
	some pod in input.pods
	some network in object.get(pod, "networks", [])
	some policy in fencing(pod, network)
	filters_ingress(policy)
	some i, rule in object.get(policy, "ingress", [])
	admits_every_port(rule)
}

fence_findings contains {
	"object": policy.object, "field": rule_field(policy, i, rule),
	"problem": sprintf("MultiNetworkPolicy admits %v/%v on network %v, which no run-book line uses (line ports %v, UDP)", [object.get(port, "port", null), object.get(port, "protocol", "TCP"), network.name, sort(line_ports)]),
	"fix": "admit only the channel line ports, protocol UDP",
} if {
	some pod in input.pods
	some network in object.get(pod, "networks", [])
	some policy in fencing(pod, network)
	filters_ingress(policy)
	some i, rule in object.get(policy, "ingress", [])
	not admits_every_port(rule)
	some port in rule.ports
	not line_port(port)
}

line_port(port) if {
	object.get(port, "protocol", "TCP") == "UDP"
	port.port in line_ports
	port_end(port) == port.port
}

# A fence that drops a line is as bad as no line: the line's port must be admitted
# on the network that carries it.
fence_findings contains {
	"object": min({p.object | some p in policies}), "field": "spec.ingress",
	"problem": sprintf("no MultiNetworkPolicy rule admits channel %v line %s (UDP %v) on network %v, so the line is dropped", [entry.channel.id, upper(line), entry.channel[line].port, network.name]),
	"fix": sprintf("add an ingress rule for UDP port %v to the feed MultiNetworkPolicy", [entry.channel[line].port]),
} if {
	some entry in file_entries
	some line in line_names
	is_number(entry.channel[line].port)
	some pod in lib.gateway_pods
	some network in networks_on(pod, entry.channel[line].interface)
	policies := [p | some p in fencing(pod, network); filters_ingress(p)]
	count(policies) > 0
	not line_admitted(policies, entry.channel[line].port)
}

line_admitted(policies, port_number) if {
	some policy in policies
	some rule in object.get(policy, "ingress", [])
	admits(rule, port_number)
}

# ---------------------------------------------------------------------------
# multicast-ab-anti-affinity
# ---------------------------------------------------------------------------

# The library receives both lines in one gateway pod, so A/B independence is a
# matter of NADs and NICs (multicast-ab-separate). What remains of "A/B handlers
# on different nodes" is the node: when more than one pod receiving feeds can run
# at once (hot standby, or a schedule that scales up), they must not share one,
# or a single node failure loses every copy of every line.
feed_pods contains pod if {
	some pod in input.pods
	count(object.get(pod, "networks", [])) > 0
	object.get(pod, ["replicas", "max"], 1) > 1
}

spread_by_node(pod) if {
	some term in object.get(pod, ["scheduling", "antiAffinity"], [])
	term.topologyKey == hostname_key
	term.required == true
	term.matchesSelf == true
}

# rule: multicast-ab-anti-affinity
deny contains result if {
	lib.is_overlay
	some pod in feed_pods
	not spread_by_node(pod)
	result := lib.finding(
		"multicast-ab-anti-affinity", pod.id,
		pod_template_field(pod, "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution"),
		sprintf("up to %v pods receive the feed lines (%v) but no required pod anti-affinity on %s matching these pods keeps them on different nodes", [pod.replicas.max, scaled_text(pod), hostname_key]),
		sprintf("add a required podAntiAffinity term with topologyKey %s and a labelSelector matching the pod's own labels (failover component)", [hostname_key]),
	)
}

scaled_text(pod) := sprintf("declared %v, raised by %v", [pod.replicas.declared, [s.object | some s in pod.replicas.scaledBy]]) if {
	count(object.get(pod, ["replicas", "scaledBy"], [])) > 0
} else := sprintf("declared %v", [object.get(pod, ["replicas", "declared"], null)])
