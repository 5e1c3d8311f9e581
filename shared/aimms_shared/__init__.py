"""Event contracts and the plumbing every AIMMS service is built on."""
