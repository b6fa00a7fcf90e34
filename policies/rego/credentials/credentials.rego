# Credentials: no credential is written into the rendered overlay. The model
# builder finds suspects by value as well as by name (PEM blocks, well-known
# token formats, high-entropy strings, `password=` or `secret:` assignments in
# any ConfigMap value, whether INI, properties or JSON, and literal env values),
# so this rule only reports each one where it sits, with the secret masked.
package vcpl.credentials

import data.vcpl.lib

suspect_kind_text := {
	"pem": "a PEM block (private key or certificate bundle)",
	"token-format": "a value in a well-known token format",
	"assignment": "a credential assignment (password=, secret:, token:)",
	"high-entropy": "a high-entropy string",
	"literal-env": "a literal credential in an environment variable",
}

kind_text(kind) := object.get(suspect_kind_text, kind, sprintf("a credential-like value (%s)", [kind]))

# rule: credentials-no-literal
deny contains result if {
	lib.is_overlay
	some suspect in input.credentials
	result := lib.finding(
		"credentials-no-literal", suspect.object, suspect.field,
		sprintf("%s is written in the rendered overlay (%s): anyone who reads the manifests or the git history holds it; expected a reference to the secret store", [kind_text(suspect.kind), suspect.evidence]),
		"move the value to the secret store and reference it by key (ExternalSecret, mounted as a file or env valueFrom secretKeyRef)",
	)
}
