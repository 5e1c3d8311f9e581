"""Registration: where medical schools' portals send people who want to join a programme."""
