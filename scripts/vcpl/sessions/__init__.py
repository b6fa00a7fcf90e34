"""Session rehearsal: venue simulators derived from the run books, and a reference client that
logs on with exactly what an overlay renders (`vcpl simulate`, `make rehearse-sessions`)."""
