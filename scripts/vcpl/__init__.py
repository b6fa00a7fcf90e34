"""vcpl: tooling of the Venue Connectivity Pattern Library."""
